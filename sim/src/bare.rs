//! `pdp-provider sim bare`: the stack the endpoint is built on and nothing else. hyper and
//! tokio-rustls over the same mutual TLS as the endpoint (its server certificate, client
//! certificates verified against the same CA, the same rustls configuration), reading each
//! request's body whole and answering `202` with no body. `load-tests/ceiling.sh` measures the
//! durable ACK against it with the same client: the share of the bare stack's rate the endpoint
//! keeps is what parsing, matching, sealing, committing and auditing a find cost.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cas::SimError;

/// A running bare server.
pub struct Bare {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Bare {
    /// Starts on `listen` with the dev PKI in `certs`.
    pub async fn start(listen: SocketAddr, certs: &std::path::Path) -> Result<Bare, SimError> {
        let acceptor = TlsAcceptor::from(pdp_provider::tls::server::server_config(
            &crate::tls::sim_tls(certs),
        )?);
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().expect("bound");
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, acceptor, stop.clone()));
        Ok(Bare { addr, stop })
    }

    /// Stops accepting.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Serves on `listen` with the dev PKI in `certs` until SIGTERM or Ctrl-C.
pub async fn serve(listen: SocketAddr, certs: &std::path::Path) -> Result<(), SimError> {
    let bare = Bare::start(listen, certs).await?;
    eprintln!("bare hyper + tokio-rustls: https://{}", bare.addr);
    let signal = CancellationToken::new();
    pdp_provider::shutdown::on_signal(signal).await;
    bare.stop();
    Ok(())
}

async fn accept(listener: TcpListener, acceptor: TlsAcceptor, stop: CancellationToken) {
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r { Ok((t, _)) => t, Err(_) => continue },
            _ = stop.cancelled() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = hyper::service::service_fn(answer);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// Reads the body whole, then `202`.
async fn answer(req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Empty::new());
    *resp.status_mut() = StatusCode::ACCEPTED;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pdp_provider::tls::client::{mtls_client, Identity};
    use pdp_provider::tls::pki::files;

    /// It answers a client with the PFS's certificate `202`, and one without a certificate
    /// nothing: the same mutual TLS as the endpoint.
    #[tokio::test]
    async fn it_answers_202_over_mutual_tls_and_refuses_a_client_without_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        pdp_provider::tls::pki::init(dir.path()).unwrap();
        let bare = Bare::start("127.0.0.1:0".parse().unwrap(), dir.path())
            .await
            .unwrap();
        let url = format!("https://127.0.0.1:{}/find-requests", bare.addr.port());
        let (ca, cert, key) = (
            dir.path().join(files::CA),
            dir.path().join(files::PFS),
            dir.path().join(files::PFS_KEY),
        );
        let pfs = mtls_client(
            Identity {
                ca: &ca,
                cert: &cert,
                key: &key,
            },
            |b| b,
        )
        .unwrap();
        let resp = pfs.post(&url).body("{}").send().await.unwrap();
        assert_eq!(resp.status(), 202);
        let anonymous = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        assert!(anonymous.post(&url).body("{}").send().await.is_err());
        bare.stop();
    }
}
