//! The closed loop's HTTP client: HTTP/1.1 over mutual TLS on hyper's connection API, one
//! connection per sending task ([`Slot`]), polled by the task that sends on it.
//!
//! A closed loop measures the most the endpoint sustains only while the client costs little
//! next to it (on a shared machine they compete for the same CPUs). So a task owns its
//! connection outright: the request is written and the answer read in the task's own polls, and
//! a find costs one write and one read on the socket and no hand-over between tasks. Rejected
//! option: reqwest (the open loop's client), through which every request parses its URL, goes
//! through the redirect and retry layers and a pool look-up, and wakes the separate task that
//! owns the connection, and is woken by it in turn.
//!
//! What reqwest does that matters is done here too: the PFS identity and only the configured CA,
//! TLS 1.2 or 1.3, ALPN `http/1.1`, `TCP_NODELAY`, a connect time-out of 10 s, one time-out over
//! the whole request (connecting included), the answer read to its end so the connection is
//! kept, and a request that a kept connection closed before it was written sent again once on a
//! new one. A connection that failed or timed out is dropped, and the next request opens another.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::failure::{Outcome, Transport};
use super::LoadError;

/// Time to open a connection (TCP and the TLS handshake), as reqwest's `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper's half of a connection: polled to read and write.
type Driver = http1::Connection<TokioIo<TlsStream<TcpStream>>, Full<Bytes>>;

/// Opens connections to one URL with the PFS identity, and builds the requests sent on them.
pub struct Connector {
    tls: TlsConnector,
    addrs: Vec<SocketAddr>,
    server_name: ServerName<'static>,
    host: HeaderValue,
    path: Uri,
    timeout: Duration,
}

// === impl Connector ===

impl Connector {
    /// A connector for `url` (`https://host[:port]/path`), presenting `cert`/`key` and trusting
    /// only `ca`; `timeout` bounds each request, connecting included. The host is resolved
    /// once, here.
    pub async fn new(
        url: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
        timeout: Duration,
    ) -> Result<Self, LoadError> {
        let bad = |reason: &str| LoadError::Client(format!("{url}: {reason}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("not an https:// URL"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| bad(&format!("resolving {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(bad(&format!("{host} resolves to no address")));
        }
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| bad("the host is not a DNS name or an IP address"))?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| bad("not a path"))?;
        Ok(Self {
            tls: TlsConnector::from(Arc::new(tls_config(ca, cert, key)?)),
            addrs,
            server_name,
            host: HeaderValue::from_str(authority.as_str()).map_err(|_| bad("bad host"))?,
            path,
            timeout,
        })
    }

    /// A new connection, or why not.
    async fn connect(&self) -> std::io::Result<Open> {
        tokio::time::timeout(CONNECT_TIMEOUT, async {
            let tcp = TcpStream::connect(&self.addrs[..]).await?;
            tcp.set_nodelay(true)?;
            let tls = self.tls.connect(self.server_name.clone(), tcp).await?;
            let (sender, driver) = http1::handshake(TokioIo::new(tls))
                .await
                .map_err(std::io::Error::other)?;
            Ok(Open {
                sender,
                driver: Some(Box::pin(driver)),
                used: false,
            })
        })
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
    }

    /// A find request: `POST` with the body, `Content-Type` and `X-Request-ID`.
    fn request(&self, request_id: &str, body: Bytes) -> Result<Request<Full<Bytes>>, http::Error> {
        Request::post(self.path.clone())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("x-request-id", request_id)
            .body(Full::new(body))
    }
}

/// The PFS's client config: its certificate and key, only `ca` trusted, TLS 1.2 or 1.3,
/// ALPN `http/1.1`.
fn tls_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ClientConfig, LoadError> {
    let mut config = pdp_provider::tls::client::rustls_client(ca, Some((cert, key)))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One request at a time on a connection of its own, opened on first use and again after a
/// failure. Owned by one task; the connection is only read and written while that task sends.
#[derive(Default)]
pub struct Slot {
    open: Option<Open>,
    /// Fires at the latest when the request under way is due to time out.
    timer: Option<Pin<Box<Sleep>>>,
}

/// An open connection.
struct Open {
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended.
    driver: Option<Pin<Box<Driver>>>,
    /// A request was sent on it before.
    used: bool,
}

// === impl Slot ===

impl Slot {
    /// An empty slot: it connects on the first request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends one find request and reads the answer to its end; past the connector's time-out
    /// (connecting included) it is abandoned as [`Transport::Timeout`].
    pub async fn send(&mut self, c: &Connector, request_id: &str, body: Vec<u8>) -> Outcome {
        let Ok(request) = c.request(request_id, Bytes::from(body)) else {
            return Outcome::Transport(Transport::Other);
        };
        let deadline = Instant::now() + c.timeout;
        let Slot { open, timer } = self;
        // One timer for all the slot's requests, moved on only when it fires before the
        // request under way is due (about once a time-out period), instead of a timer set and
        // cleared in the runtime's timer wheel for every request.
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        let result = {
            let exchange = exchange(open, c, request);
            tokio::pin!(exchange);
            loop {
                tokio::select! {
                    biased;
                    result = &mut exchange => break result,
                    () = timer.as_mut() => {
                        if Instant::now() >= deadline {
                            break Err(Transport::Timeout);
                        }
                        timer.as_mut().reset(deadline);
                    }
                }
            }
        };
        match result {
            Ok(status) => Outcome::Status(status),
            Err(t) => {
                // Whatever state it is in, the next request gets a new connection.
                *open = None;
                Outcome::Transport(t)
            }
        }
    }
}

/// Sends `request` on the slot's connection, opening one if there is none (or it has ended).
async fn exchange(
    open: &mut Option<Open>,
    c: &Connector,
    mut request: Request<Full<Bytes>>,
) -> Result<u16, Transport> {
    let mut retried = false;
    loop {
        if open
            .as_ref()
            .is_some_and(|o| o.driver.is_none() || o.sender.is_closed())
        {
            *open = None;
        }
        let conn = match open.take() {
            Some(o) => open.insert(o),
            None => open.insert(
                c.connect()
                    .await
                    .map_err(|e| Transport::of_error(&e, true))?,
            ),
        };
        let reused = std::mem::replace(&mut conn.used, true);
        match conn.round_trip(request).await {
            Ok(status) => return Ok(status),
            // The server closed a kept connection before the request was written: once more
            // on a new one, as reqwest does.
            Err(Failure::NotSent(unsent)) if reused && !retried => {
                *open = None;
                request = *unsent;
                retried = true;
            }
            Err(Failure::NotSent(_)) => return Err(Transport::Closed),
            Err(Failure::Failed(t)) => return Err(t),
        }
    }
}

/// Why a round trip failed.
#[derive(Debug)]
enum Failure {
    /// The connection ended before the request was written; here it is back.
    NotSent(Box<Request<Full<Bytes>>>),
    /// Written, but no whole answer came back, for this reason.
    Failed(Transport),
}

// === impl Open ===

impl Open {
    /// Sends `request` when the connection is ready and reads the answer's body to its end,
    /// polling the connection meanwhile.
    async fn round_trip(&mut self, request: Request<Full<Bytes>>) -> Result<u16, Failure> {
        let Open { sender, driver, .. } = self;
        drive(driver, async move {
            if sender.ready().await.is_err() {
                return Err(Failure::NotSent(Box::new(request)));
            }
            let response =
                sender
                    .try_send_request(request)
                    .await
                    .map_err(|mut e| match e.take_message() {
                        Some(r) => Failure::NotSent(Box::new(r)),
                        None => Failure::Failed(Transport::of_error(e.error(), false)),
                    })?;
            let status = response.status().as_u16();
            response
                .into_body()
                .collect()
                .await
                .map_err(|e| Failure::Failed(Transport::of_error(&e, false)))?;
            Ok(status)
        })
        .await
    }
}

/// Runs `fut` while polling the connection's `driver`; once the connection ends, the driver is
/// dropped (so whatever still waits on it fails) and `fut` runs alone.
async fn drive<F: Future>(driver: &mut Option<Pin<Box<Driver>>>, fut: F) -> F::Output {
    tokio::pin!(fut);
    loop {
        let Some(d) = driver.as_mut() else {
            return fut.await;
        };
        tokio::select! {
            biased;
            out = &mut fut => return out,
            _ = d.as_mut() => {}
        }
        *driver = None;
    }
}

#[cfg(test)]
mod tests;
