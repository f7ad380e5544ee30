use rcgen::{date_time_ymd, CertificateParams, KeyPair};

use super::*;

/// A self-signed certificate valid from 2024-01-01 to 2024-01-31 (00:00 UTC each).
fn dated() -> CertificateDer<'static> {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2024, 1, 31);
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

#[test]
fn a_certificate_is_valid_from_not_before_to_not_after_inclusive() {
    let cert = dated();
    let path = Path::new("server.pem");
    let (from, until) = (1_704_067_200, 1_706_659_200);
    for now in [from, from + 1, until - 1, until] {
        assert!(check_valid_at(path, &cert, now).is_ok(), "{now}");
    }
    let refused = |now| match check_valid_at(path, &cert, now) {
        Err(TlsError::NotValidNow(e)) => e,
        other => panic!("{now}: {other:?}"),
    };
    let early = refused(from - 1);
    assert_eq!(early.state, "not yet valid");
    let late = refused(until + 1);
    assert_eq!(late.state, "expired");
    let text = TlsError::NotValidNow(late).to_string();
    assert!(text.starts_with("server.pem: certificate "), "{text}");
    assert!(
        text.contains("valid from 2024-01-01T00:00:00Z to 2024-01-31T00:00:00Z"),
        "{text}"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path()).unwrap();
    let cert = dir.path().join(pki::files::SERVER);
    let own = dir.path().join(pki::files::SERVER_KEY);
    assert!(load_served(&cert, &own).is_ok());
    let other = dir.path().join(pki::files::PFS_KEY);
    match load_served(&cert, &other) {
        Err(e @ TlsError::KeyMismatch { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&cert.display().to_string()), "{text}");
            assert!(text.contains(&other.display().to_string()), "{text}");
            assert!(std::error::Error::source(&e).is_none());
        }
        other => panic!("{other:?}"),
    }
}
