//! Unit tests of the parent module: what a view data token that does not verify is counted as.

use jsonwebtoken::errors::{Error, ErrorKind};

use super::*;

#[test]
fn jsonwebtoken_failures_are_sorted() {
    let of = |k: ErrorKind| TokenFault::of(&Error::from(k));
    assert_eq!(of(ErrorKind::InvalidSignature), TokenFault::BadSignature);
    assert_eq!(of(ErrorKind::ExpiredSignature), TokenFault::Expired);
    assert_eq!(of(ErrorKind::ImmatureSignature), TokenFault::NotYetValid);
    assert_eq!(
        of(ErrorKind::InvalidAlgorithm),
        TokenFault::AlgorithmNotAllowed
    );
    assert_eq!(of(ErrorKind::InvalidToken), TokenFault::Malformed);
    assert_eq!(of(ErrorKind::InvalidKeyFormat), TokenFault::UnusableJwk);
    assert_eq!(of(ErrorKind::InvalidIssuer), TokenFault::Invalid);
}

#[test]
fn errors_print_no_url() {
    let e = DashboardError::BadToken(TokenFault::KidNotPublished);
    assert_eq!(
        e.to_string(),
        "view data token: kid not published at jwk_uri"
    );
    assert_eq!(
        DashboardError::NoJwkSet(503).to_string(),
        "CAS jwk_uri answered 503 without a JWK set"
    );
}

#[tokio::test]
async fn a_transport_failure_keeps_its_cause_but_not_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = reqwest::get(format!("http://127.0.0.1:{port}/view-data/some-asset-guid"))
        .await
        .unwrap_err();
    let e = transport(Leg::Provider)(source);
    assert_eq!(e.to_string(), "view endpoint: no answer");
    let DashboardError::Transport { source, .. } = &e else {
        panic!("{e:?}");
    };
    assert!(source.is_connect());
    assert!(!format!("{source} {source:?}").contains("some-asset-guid"));
}
