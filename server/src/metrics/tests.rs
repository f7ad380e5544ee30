use super::*;
use crate::cas::CasError;
use crate::http::respond::ApiError;
use crate::wire::problem::ErrorCode;

#[test]
fn every_failure_reason_the_pipeline_stores_has_its_own_class() {
    let cas = [
        CasError::Unavailable {
            status: 503,
            retry_after: None,
        },
        CasError::Refused { status: 400 },
        CasError::Conflict,
        CasError::Unreachable("reset".into()),
        CasError::Malformed,
        CasError::BudgetSpent,
    ];
    let mut seen = Vec::new();
    for e in &cas {
        for step in ["token", "register"] {
            let class = FindFailure::of(&format!("{step}: {}", e.reason()));
            assert_ne!(class, FindFailure::Other, "{e:?}");
            seen.push(class);
        }
    }
    for reason in ["find_data_unreadable", "find_data_invalid", "uat_no_sub"] {
        let class = FindFailure::of(reason);
        assert_ne!(class, FindFailure::Other, "{reason}");
        seen.push(class);
    }
    assert_eq!(
        FindFailure::of("token: cas_unavailable_429"),
        FindFailure::CasUnavailable
    );
    assert_eq!(
        FindFailure::of("register: cas_refused_403"),
        FindFailure::CasRefused
    );
    assert_eq!(FindFailure::of("something new"), FindFailure::Other);
    // Every class but `Other` is reachable from a real reason.
    for v in FindFailure::VARIANTS {
        assert!(*v == FindFailure::Other || seen.contains(v), "{v:?}");
    }
}

#[test]
fn view_outcomes_fall_into_four_classes_by_what_the_client_got() {
    let answers = [
        ApiError::challenge("UMA as_uri=\"x\", ticket=\"t\"".into()),
        ApiError::unavailable("CAS down", 2),
        ApiError::internal(),
        ApiError::not_found("no such PeI"),
        ApiError::method_not_allowed("GET"),
        ApiError::bad_request(ErrorCode::InvalidXRequestId, "X-Request-ID"),
        ApiError::bad_request(ErrorCode::InvalidRequest, "scope"),
    ];
    for a in answers {
        let want = match a.status.as_u16() {
            401 => ViewOutcome::Challenge,
            500..=599 => ViewOutcome::Unavailable,
            _ => ViewOutcome::Refused,
        };
        assert_eq!(ViewOutcome::of(a.outcome()), want, "{}", a.outcome());
    }
    // A response that is not an error is a view served.
    assert_eq!(ViewOutcome::of("ok"), ViewOutcome::Served);
    let labels: Vec<&str> = ViewOutcome::VARIANTS.iter().map(|v| v.into()).collect();
    assert_eq!(labels, ["served", "challenge", "refused", "unavailable"]);
}

#[test]
fn label_sets_are_spelled_as_prometheus_shows_them() {
    let standards: Vec<&str> = Standard::VARIANTS.iter().map(|v| v.into()).collect();
    assert_eq!(standards, ["CoCo2.1.1", "CoCo2.1.2", "CoCo2.1.3"]);
    assert_eq!(TlsRefusal::of("timeout"), TlsRefusal::Timeout);
    assert_eq!(
        TlsRefusal::of("untrusted_client_certificate"),
        TlsRefusal::UntrustedClientCertificate
    );
    assert_eq!(TlsRefusal::of("anything"), TlsRefusal::Other);
}
