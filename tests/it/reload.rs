//! Keys and certificates replaced while the endpoint serves: the server certificate and the
//! client CA swapped under load with no failed request, a bad file refused while the old
//! material keeps serving.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pdp_provider::tls::pki::files;

use crate::harness::{find_body, post_find, Env, Server};

/// Replaces `to` with `from`'s bytes in one step (write aside, then rename), as a deployment
/// tool would.
fn replace(from: &std::path::Path, to: &std::path::Path) {
    let aside = to.with_extension("new");
    std::fs::copy(from, &aside).unwrap();
    std::fs::rename(&aside, to).unwrap();
}

/// A second PKI beside the environment's (the next CA and certificates it issued), and a CA
/// bundle trusting both, as clients hold during a planned rotation.
fn second_pki(env: &Env) -> (std::path::PathBuf, std::path::PathBuf) {
    let next = env.dir.path().join("next");
    pdp_provider::keys::init_dev(&next).unwrap();
    let both = env.dir.path().join("both-cas.pem");
    std::fs::write(
        &both,
        [
            std::fs::read(env.cert(files::CA)).unwrap(),
            std::fs::read(next.join(files::CA)).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    (next, both)
}

/// The DER of the certificate the listener at `addr` presents to a new handshake from a client
/// trusting `trust`, with `identity` (certificate, key) when the listener asks for one.
async fn presented_at(
    addr: std::net::SocketAddr,
    trust: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in pdp_provider::tls::load_certs(trust).unwrap() {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(pdp_provider::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((cert, key)) => cfg
            .with_client_auth_cert(
                pdp_provider::tls::load_certs(cert).unwrap(),
                pdp_provider::tls::load_key(key).unwrap(),
            )
            .unwrap(),
        None => cfg.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// The DER of the certificate the ecosystem listener presents to the PFS.
async fn presented(env: &Env, server: &Server, trust: &std::path::Path) -> Vec<u8> {
    let (cert, key) = (env.cert(files::PFS), env.cert(files::PFS_KEY));
    presented_at(server.addr, trust, Some((&cert, &key))).await
}

/// The DER of the certificate the operator console presents to a browser (no client
/// certificate).
async fn console_presented(addr: std::net::SocketAddr, trust: &std::path::Path) -> Vec<u8> {
    presented_at(addr, trust, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_and_client_ca_are_swapped_under_load_without_a_failure() {
    let env = Env::new();
    // A second PKI: the new CA, the new server certificate, a PFS certificate from the new CA.
    let (next, both) = second_pki(&env);
    // The files the server reads, in a directory of their own.
    let live = env.dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    for f in [files::SERVER, files::SERVER_KEY, files::CA] {
        std::fs::copy(env.cert(f), live.join(f)).unwrap();
    }
    let mut config = env.config();
    config.tls.cert = live.join(files::SERVER);
    config.tls.key = live.join(files::SERVER_KEY);
    config.tls.client_ca = live.join(files::CA);
    config.server.reload_poll_ms = 100;
    let server = Server::start(config).await;
    let old_cert = presented(&env, &server, &both).await;

    // Load throughout: the PFS trusts both CAs, as it would during a planned rotation.
    let pfs = pdp_provider::tls::client::mtls_client(
        pdp_provider::tls::client::Identity {
            ca: &both,
            cert: &env.cert(files::PFS),
            key: &env.cert(files::PFS_KEY),
        },
        |b| b,
    )
    .unwrap();
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (pfs, url, ok, failed, stop) = (
            pfs.clone(),
            server.url("/find-requests"),
            ok.clone(),
            failed.clone(),
            stop.clone(),
        );
        load.spawn(async move {
            while !stop.is_cancelled() {
                let r = pfs
                    .post(&url)
                    .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
                    .json(&find_body())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 202 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The rotation: the client CA bundle gains the new CA, then the server certificate changes.
    replace(&both, &live.join(files::CA));
    replace(&next.join(files::SERVER_KEY), &live.join(files::SERVER_KEY));
    replace(&next.join(files::SERVER), &live.join(files::SERVER));
    let new_cert = std::fs::read(next.join(files::SERVER)).unwrap();
    let new_der = pdp_provider::tls::load_certs(&next.join(files::SERVER)).unwrap()[0].to_vec();
    assert!(!new_cert.is_empty());
    let mut swapped = false;
    for _ in 0..100 {
        if presented(&env, &server, &both).await == new_der {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(swapped, "new handshakes still get the old certificate");
    assert_ne!(old_cert, new_der);
    // A PFS certificate from the new CA is now accepted.
    let pfs_next = pdp_provider::tls::client::mtls_client(
        pdp_provider::tls::client::Identity {
            ca: &both,
            cert: &next.join(files::PFS),
            key: &next.join(files::PFS_KEY),
        },
        |b| b,
    )
    .unwrap();
    let resp = post_find(
        &pfs_next,
        &server.url("/find-requests"),
        &uuid::Uuid::new_v4().to_string(),
        &find_body(),
    )
    .await;
    assert_eq!(resp.status(), 202);

    // A broken certificate file is refused; the new material keeps serving.
    std::fs::write(
        live.join(files::SERVER),
        b"-----BEGIN CERTIFICATE-----\nnot one\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(presented(&env, &server, &both).await, new_der);
    assert!(server
        .metrics()
        .await
        .contains("pdp_reloads_total{part=\"listener\",outcome=\"refused\"}"));

    stop.cancel();
    while load.join_next().await.is_some() {}
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 20, "only {ok} requests went through");
    assert_eq!(failed, 0, "{failed} requests failed during the rotation");
    server.stop().await;
}

#[tokio::test]
async fn the_console_certificate_is_swapped_without_a_restart_and_watched_for_expiry() {
    let env = Env::new();
    let (next, both) = second_pki(&env);
    let live = env.dir.path().join("console");
    std::fs::create_dir_all(&live).unwrap();
    for f in [files::SERVER, files::SERVER_KEY] {
        std::fs::copy(env.cert(f), live.join(f)).unwrap();
    }
    let mut config = env.config();
    config.console.enabled = true;
    config.console.listen = "127.0.0.1:0".parse().unwrap();
    config.console.cert = Some(live.join(files::SERVER));
    config.console.key = Some(live.join(files::SERVER_KEY));
    config.server.reload_poll_ms = 100;
    let server = Server::start(config).await;
    let console = server.console_addr.unwrap();
    let der = |p: &std::path::Path| pdp_provider::tls::load_certs(p).unwrap()[0].to_vec();
    assert_eq!(
        console_presented(console, &both).await,
        der(&env.cert(files::SERVER))
    );
    // The console's own certificate is watched for expiry (upkeep's first round, just started).
    let mut watched = false;
    for _ in 0..100 {
        let m = server.metrics().await;
        if m.contains("pdp_certificate_expiry_seconds{certificate=\"console\"}") {
            watched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(watched, "no expiry gauge for the console's certificate");

    replace(&next.join(files::SERVER_KEY), &live.join(files::SERVER_KEY));
    replace(&next.join(files::SERVER), &live.join(files::SERVER));
    let new_der = der(&next.join(files::SERVER));
    let mut swapped = false;
    for _ in 0..100 {
        if console_presented(console, &both).await == new_der {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        swapped,
        "new console handshakes still get the old certificate"
    );
    assert!(server
        .metrics()
        .await
        .contains("pdp_reloads_total{part=\"console\",outcome=\"reloaded\"}"));
    // The ecosystem listener kept its own certificate.
    assert_eq!(
        presented(&env, &server, &both).await,
        der(&env.cert(files::SERVER))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_the_console_shares_with_the_listener_is_reloaded_for_both() {
    let env = Env::new();
    let (next, both) = second_pki(&env);
    let live = env.dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    for f in [files::SERVER, files::SERVER_KEY] {
        std::fs::copy(env.cert(f), live.join(f)).unwrap();
    }
    let mut config = env.config();
    config.tls.cert = live.join(files::SERVER);
    config.tls.key = live.join(files::SERVER_KEY);
    // No console.cert/key: the console serves the listener's certificate.
    config.console.enabled = true;
    config.console.listen = "127.0.0.1:0".parse().unwrap();
    config.server.reload_poll_ms = 100;
    let server = Server::start(config).await;
    let console = server.console_addr.unwrap();

    replace(&next.join(files::SERVER_KEY), &live.join(files::SERVER_KEY));
    replace(&next.join(files::SERVER), &live.join(files::SERVER));
    let new_der = pdp_provider::tls::load_certs(&next.join(files::SERVER)).unwrap()[0].to_vec();
    let mut swapped = (false, false);
    for _ in 0..100 {
        swapped = (
            presented(&env, &server, &both).await == new_der,
            console_presented(console, &both).await == new_der,
        );
        if swapped == (true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        swapped,
        (true, true),
        "(listener, console) on the new certificate"
    );
    server.stop().await;
}
