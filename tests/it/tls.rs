use std::time::Duration;

use pdp_provider::tls::pki::files;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Env, Server};

const REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

use crate::harness::{connect, connect_as_pfs};

/// Handshakes with `config`, sends a request, and returns what came back, or the error.
async fn exchange(
    server: &Server,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<String, std::io::Error> {
    let mut tls = connect(server, config).await?;
    tls.write_all(REQUEST).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .expect("server answered or closed")?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn accepts_a_client_certificate_from_the_ecosystem_ca_on_tls12_and_tls13() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let cfg = env.rustls_client(Some((files::PFS, files::PFS_KEY)), &[version]);
        let answer = exchange(&server, cfg).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn refuses_a_client_without_a_certificate() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let cfg = env.rustls_client(None, &[version]);
        let err = exchange(&server, cfg).await.unwrap_err();
        assert!(
            err.to_string().contains("CertificateRequired")
                || err.to_string().contains("HandshakeFailure"),
            "{err}"
        );
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("reason=\"no_client_certificate\""),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn refuses_a_client_certificate_from_another_ca() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let cfg = env.rustls_client(
        Some((files::ROGUE_CLIENT, files::ROGUE_CLIENT_KEY)),
        &[&rustls::version::TLS13],
    );
    let err = exchange(&server, cfg).await.unwrap_err();
    assert!(
        err.to_string().contains("UnknownCA") || err.to_string().contains("BadCertificate"),
        "{err}"
    );
    server.stop().await;
}

/// A minimal TLS 1.1 ClientHello: legacy version 3.2, no supported_versions extension.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two CBC suites
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend(hs);
    rec
}

#[tokio::test]
async fn refuses_a_tls11_only_client_with_a_protocol_version_alert() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    // No ServerHello: the first and only record is a fatal (2) alert (21), protocol_version (70)
    // or handshake_failure (40) depending on which check rustls reaches first.
    assert_eq!(out.first(), Some(&0x15), "{out:?}");
    assert_eq!(out[5], 2, "{out:?}");
    assert!(matches!(out[6], 40 | 70), "{out:?}");
    assert_eq!(out.len(), 7, "{out:?}");
    server.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_no_http_answer() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(REQUEST).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .unwrap();
    assert!(
        !out.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("pdp_tls_handshake_failures_total"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_sends_headers_is_cut_off() {
    let env = Env::new();
    let mut config = env.config();
    config.server.header_read_timeout_ms = 200;
    let server = Server::start(config).await;
    let mut tls = connect_as_pfs(&env, &server).await;
    tls.write_all(b"POST /find-requests HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    // The server closes the connection by itself; the client never finishes its headers.
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "server held a slow client open");
    assert!(!String::from_utf8_lossy(&out).contains("202"));
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let env = Env::new();
    let mut config = env.config();
    config.server.idle_timeout_ms = 300;
    let server = Server::start(config).await;
    let mut tls = connect_as_pfs(&env, &server).await;
    tls.write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "idle connection was not closed");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 404"));
    server.stop().await;
}
