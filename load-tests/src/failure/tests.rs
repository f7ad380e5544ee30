//! Unit tests of the parent module: each failure's reason, from the errors the clients give.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use super::*;
use pdp_sim::dashboard::{DashboardError, Leg, TokenFault, ViewOutcome};

fn io(kind: ErrorKind) -> io::Error {
    io::Error::from(kind)
}

/// As tokio-rustls hands over a TLS failure: an I/O error wrapping rustls's.
fn tls_io(e: rustls::Error) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, e)
}

#[test]
fn transport_reasons_are_short_and_stable() {
    let cases = [
        (Transport::Timeout, "time-out", "timeout"),
        (
            Transport::Connect(Connect::Refused),
            "connect: refused",
            "connect",
        ),
        (
            Transport::Connect(Connect::Unreachable),
            "connect: unreachable",
            "connect",
        ),
        (
            Transport::Connect(Connect::TimedOut),
            "connect: time-out",
            "connect",
        ),
        (
            Transport::Connect(Connect::Failed),
            "connect: failed",
            "connect",
        ),
        (
            Transport::Tls(Tls::UnknownIssuer),
            "tls: unknown issuer",
            "connect",
        ),
        (
            Transport::Tls(Tls::Alert("unknown_ca")),
            "tls: alert unknown_ca",
            "connect",
        ),
        (
            Transport::Tls(Tls::Other),
            "tls: handshake failed",
            "connect",
        ),
        (Transport::Reset, "connection reset", "other"),
        (Transport::Closed, "connection closed", "other"),
        (Transport::Other, "other", "other"),
    ];
    for (t, reason, coarse) in cases {
        assert_eq!(t.reason(), reason, "{t:?}");
        assert_eq!(t.coarse(), coarse, "{t:?}");
    }
}

#[test]
fn io_errors_are_sorted_by_kind_and_stage() {
    let of = |e: io::Error, connecting| Transport::of_error(&e, connecting).reason();
    assert_eq!(
        of(io(ErrorKind::ConnectionRefused), true),
        "connect: refused"
    );
    assert_eq!(
        of(io(ErrorKind::HostUnreachable), true),
        "connect: unreachable"
    );
    assert_eq!(of(io(ErrorKind::TimedOut), true), "connect: time-out");
    assert_eq!(of(io(ErrorKind::TimedOut), false), "time-out");
    assert_eq!(
        of(io(ErrorKind::ConnectionReset), false),
        "connection reset"
    );
    assert_eq!(of(io(ErrorKind::BrokenPipe), false), "connection reset");
    assert_eq!(of(io(ErrorKind::UnexpectedEof), false), "connection closed");
    assert_eq!(of(io(ErrorKind::Other), true), "connect: failed");
    assert_eq!(of(io(ErrorKind::Other), false), "other");
}

#[test]
fn tls_failures_are_found_inside_io_errors() {
    let of = |e: rustls::Error| Transport::of_error(&tls_io(e), true).reason();
    assert_eq!(
        of(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "tls: unknown issuer"
    );
    assert_eq!(
        of(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired
        )),
        "tls: certificate expired"
    );
    assert_eq!(
        of(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
        )),
        "tls: certificate not valid for name"
    );
    assert_eq!(
        of(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature
        )),
        "tls: unknown issuer"
    );
    assert_eq!(
        of(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnhandledCriticalExtension
        )),
        "tls: bad certificate"
    );
    assert_eq!(
        of(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
        )),
        "tls: alert certificate_required"
    );
    assert_eq!(
        of(rustls::Error::AlertReceived(
            rustls::AlertDescription::Unknown(0xfe)
        )),
        "tls: alert unknown"
    );
    assert_eq!(
        of(rustls::Error::General("x".into())),
        "tls: handshake failed"
    );
    // Wrapped once more (as the closed loop's connect wraps hyper's errors), and a TLS failure
    // after the handshake is still one.
    let twice = io::Error::other(tls_io(rustls::Error::AlertReceived(
        rustls::AlertDescription::UnknownCA,
    )));
    assert_eq!(
        Transport::of_error(&twice, false).reason(),
        "tls: alert unknown_ca"
    );
}

#[test]
fn find_statuses_fail_unless_acked_or_shed_as_expected() {
    assert_eq!(find_status(202, false), None);
    assert_eq!(find_status(503, true), None);
    assert_eq!(find_status(503, false).as_deref(), Some("status 503"));
    assert_eq!(find_status(400, true).as_deref(), Some("status 400"));
}

#[test]
fn failures_count_by_reason_and_serialize_as_a_map() {
    let mut f = Failures::new();
    assert!(f.is_empty());
    f.add("status 503");
    f.add_n("time-out", 3);
    f.add_n("status 400", 0);
    f.add("status 503");
    assert_eq!(f.get("status 503"), 2);
    assert_eq!(f.get("status 400"), 0);
    assert_eq!(f.total(), 5);
    assert_eq!(f.ranked(), vec![("time-out", 3), ("status 503", 2)]);
    assert_eq!(f.brief(), "time-out 3, status 503 2");
    assert_eq!(
        serde_json::to_value(&f).unwrap(),
        serde_json::json!({"status 503": 2, "time-out": 3})
    );
}

fn outcome(first: u16, retry: Option<u16>, verified: bool) -> ViewOutcome {
    ViewOutcome {
        first_status: first,
        retry_status: retry,
        challenge: None,
        challenge_headers: usize::from(first == 401),
        view_data: verified.then(|| serde_json::json!({})),
        claims: None,
        retry_after: None,
    }
}

#[test]
fn view_outcomes_give_their_reason() {
    let reason = |o: ViewOutcome| view(&Ok(o));
    assert_eq!(reason(outcome(401, Some(200), true)), None);
    assert_eq!(
        reason(outcome(401, Some(401), false)).unwrap(),
        "401 on retry"
    );
    assert_eq!(
        reason(outcome(401, Some(503), false)).unwrap(),
        "503 on retry"
    );
    assert_eq!(reason(outcome(503, None, false)).unwrap(), "503");
    assert_eq!(reason(outcome(404, None, false)).unwrap(), "404");
    assert_eq!(
        reason(outcome(200, None, false)).unwrap(),
        "200 without a challenge"
    );
}

#[test]
fn view_errors_give_their_reason() {
    let reason = |e: DashboardError| view(&Err(e)).unwrap();
    assert_eq!(reason(DashboardError::NoChallenge), "no challenge");
    assert_eq!(reason(DashboardError::TokenRefused(503)), "CAS token 503");
    assert_eq!(
        reason(DashboardError::TokenRefused(200)),
        "CAS token: no access_token"
    );
    assert_eq!(reason(DashboardError::NoJwkSet(503)), "jwk_uri 503");
    assert_eq!(
        reason(DashboardError::NoJwkSet(200)),
        "jwk_uri: not a JWK set"
    );
    let cases = [
        (TokenFault::NoToken, "no view_data_token"),
        (TokenFault::Malformed, "jws: malformed"),
        (TokenFault::NoKid, "jws: no kid"),
        (TokenFault::KidNotPublished, "jws: kid not published"),
        (TokenFault::UnusableJwk, "jws: unusable jwk"),
        (TokenFault::BadSignature, "jws: bad signature"),
        (TokenFault::Expired, "jws: expired"),
        (TokenFault::NotYetValid, "jws: not yet valid"),
        (
            TokenFault::AlgorithmNotAllowed,
            "jws: algorithm not allowed",
        ),
        (TokenFault::Invalid, "jws: invalid"),
        (TokenFault::ViewDataNotString, "view_data: not a string"),
        (TokenFault::ViewDataNotJson, "view_data: not JSON"),
    ];
    for (fault, want) in cases {
        assert_eq!(reason(DashboardError::BadToken(fault)), want);
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn reqwest_failures_name_the_leg_that_failed() {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let refused = || async { client.get(&url).send().await.unwrap_err() };
    assert_eq!(
        Transport::of_reqwest(&refused().await).reason(),
        "connect: refused"
    );
    for (leg, want) in [
        (Leg::Provider, "connect: refused"),
        (Leg::Token, "CAS token: connect: refused"),
        (Leg::JwkSet, "jwk_uri: connect: refused"),
    ] {
        let e = DashboardError::Transport {
            leg,
            source: refused().await,
        };
        assert_eq!(view(&Err(e)).unwrap(), want);
    }

    // A server that reads the request and never answers: the client's time-out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = silent.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let e = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(Transport::of_reqwest(&e).reason(), "time-out");
}

/// A plain-HTTP listener that answers every request with `answer`.
async fn answering(answer: &'static str) -> String {
    let addr = crate::testing::http_listener(move |_| answer.to_owned()).await;
    format!("http://{addr}")
}

#[tokio::test]
async fn control_poll_failures_say_what_the_control_listener_did() {
    let poll = |base: String| async move {
        let e = reqwest::get(format!("{base}/__sim/registrations"))
            .await
            .and_then(reqwest::Response::error_for_status);
        let e = match e {
            Ok(r) => r.json::<serde_json::Value>().await.unwrap_err(),
            Err(e) => e,
        };
        control(&e)
    };
    assert_eq!(
        poll(format!("http://127.0.0.1:{}", closed_port())).await,
        "CAS control unreachable"
    );
    let failing = answering(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(poll(failing.await).await, "CAS control status 500");
    let not_json =
        answering("HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope");
    assert_eq!(poll(not_json.await).await, "CAS control: not JSON");
}
