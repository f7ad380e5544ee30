//! PDP's reporting API v2.1 (MaPS' C&A stub, `specs/V1.1/reporting-api-v2_1.yaml`): the bodies of
//! the six daily submissions, the `202` answer, the problem details, and the stub's scripted
//! faults (`specs/V1.1/configuration v1_1.yaml`).
//!
//! Spelled to the letter: snake_case fields except `holdernameGuid`, `eriCalculationData` and
//! `accruedCalculationData`; `submission_id` always present, `null` only for a null submission;
//! date-times as `YYYY-MM-DDTHH:MM:SS.mmmZ`, which the stub's pattern
//! `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$` accepts.
//! `holdernameGuid` is top-level on the four view-response reports; service availability keys it
//! inside `items`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::model::{ReportKind, SubmissionReason, SubmissionStatus};

/// Item limits of the yaml: `items` of response-time.
pub const MAX_RESPONSE_TIMES: usize = 1400;
/// Items of each calculation array.
pub const MAX_CALCULATIONS: usize = 1300;
/// Holdername maps in a service-availability `items` (and GUIDs in a null submission's).
pub const MAX_HOLDER_MAPS: usize = 667;
/// Periods per holdername in one map.
pub const MAX_PERIODS: usize = 100;
/// The stub's body limit: larger bodies get `413 CONTENT_TOO_LARGE`.
pub const MAX_BODY_BYTES: usize = 1_048_576;
/// `unavail_reason`'s pattern in the yaml (`^[a-zA-Z0-9_ .-]*$`), 1 to 255 characters.
pub fn reason_ok(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '.' | '-'))
}

/// The stub's date-time pattern.
pub fn datetime_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        b"Z" => true,
        [s, h1, h2, b':', m1, m2] => {
            matches!(s, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

/// A date-time as the reporting API writes it, from µs since the epoch.
pub fn datetime(micros: i64) -> String {
    crate::datetimestamp(micros)
}

/// The fields every submission carries, in the order every body spells them (after
/// `holdernameGuid` where it has one); each body flattens them in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// This record.
    pub record_id: Uuid,
    /// The batch; null only for a null submission.
    pub submission_id: Option<Uuid>,
    /// On time, correction, late.
    pub submission_status: SubmissionStatus,
    /// The day's start.
    pub reporting_period_start: String,
    /// Initial, resubmission or null.
    pub submission_reason: SubmissionReason,
}

/// `POST /view-response/request-number`: never a null submission (a day without views reports
/// `req_count` 0, with a `submission_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestNumber {
    /// The scheme.
    #[serde(rename = "holdernameGuid")]
    pub holdername_guid: Uuid,
    /// What every submission carries.
    #[serde(flatten)]
    pub submission: Submission,
    /// Views received.
    pub req_count: u32,
}

/// One slow view: request received and response returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDetails {
    /// Received.
    pub req_date_ts: String,
    /// Answered.
    pub resp_date_ts: String,
}

/// `POST /view-response/response-time`: views over 10 s; a null submission has no `items`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTime {
    /// The scheme.
    #[serde(rename = "holdernameGuid")]
    pub holdername_guid: Uuid,
    /// What every submission carries.
    #[serde(flatten)]
    pub submission: Submission,
    /// 1 to 1,400 slow views; absent for a null submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<RequestDetails>>,
}

/// One calculation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalculationObject {
    /// `DBC` or `DCC`.
    pub value_code: String,
    /// Started.
    pub calculation_start_date: String,
    /// Ended.
    pub calculation_end_date: String,
}

/// Up to 1,300 calculations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalculationDataArray {
    /// The calculations.
    pub items: Vec<CalculationObject>,
}

/// `multiple_calculation`: ERI and accrued calculations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipleCalculation {
    /// ERI calculations.
    #[serde(rename = "eriCalculationData")]
    pub eri: CalculationDataArray,
    /// Accrued calculations.
    #[serde(rename = "accruedCalculationData")]
    pub accrued: CalculationDataArray,
}

/// `POST /view-response/calculations`: we always report `multiple` (ERI and accrued apart); a
/// null submission has neither `calculation_type` nor calculation data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calculations {
    /// `multiple`, or absent for a null submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculation_type: Option<String>,
    /// The scheme.
    #[serde(rename = "holdernameGuid")]
    pub holdername_guid: Uuid,
    /// What every submission carries.
    #[serde(flatten)]
    pub submission: Submission,
    /// The calculations, absent for a null submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_calculation: Option<MultipleCalculation>,
}

/// `POST /view-response/unavailable`: never a null submission (the yaml's
/// `GenericReportingPropertiesWithoutNull`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unavailable {
    /// The scheme.
    #[serde(rename = "holdernameGuid")]
    pub holdername_guid: Uuid,
    /// What every submission carries.
    #[serde(flatten)]
    pub submission: Submission,
    /// `contactScheme` true.
    pub contact_count: u32,
    /// `administrativeDetailsNotAvailable` true.
    pub missingadmin_count: u32,
    /// `temporarySystemError` true.
    pub temperror_count: u32,
    /// ERI unavailable `ANO`.
    pub eri_unavail_ano_count: u32,
    /// ERI unavailable `PPF`.
    pub eri_unavail_ppf_count: u32,
    /// ERI unavailable `TRN`.
    pub eri_unavail_trn_count: u32,
    /// Accrued unavailable `ANO`.
    pub accrued_unavail_ano_count: u32,
    /// Accrued unavailable `PPF`.
    pub accrued_unavail_ppf_count: u32,
    /// Accrued unavailable `TRN`.
    pub accrued_unavail_trn_count: u32,
}

/// One period of unavailability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceUnavailability {
    /// From.
    pub start_date_ts: String,
    /// To.
    pub end_date_ts: String,
    /// Planned (announced with notice) or not.
    pub unavail_scheduled: bool,
    /// Why.
    pub unavail_reason: String,
}

/// `POST /service-availability/{find,view}` items: a holdername's periods, or (null
/// submission) holdernames with none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AvailabilityItems {
    /// Each item maps holdername GUIDs to 1 to 100 periods.
    Periods(Vec<std::collections::BTreeMap<Uuid, Vec<ServiceUnavailability>>>),
    /// Holdernames with nothing to report.
    Holdernames(Vec<Uuid>),
}

/// `POST /service-availability/find` and `/service-availability/view`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAvailability {
    /// What every submission carries.
    #[serde(flatten)]
    pub submission: Submission,
    /// Periods by holdername, or the holdernames of a null submission.
    pub items: AvailabilityItems,
}

/// The `202` answer: `{"message": "ACCEPTED", "datetimestamp"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultResponse {
    /// `ACCEPTED`.
    pub message: String,
    /// When the CAS took it.
    pub datetimestamp: String,
}

/// One error of a problem details body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemError {
    /// e.g. `INVALID_RECORD_ID`.
    pub code: String,
}

/// The reporting API's problem details (RFC 9457 with `errors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemDetails {
    /// A URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Title.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetimestamp: Option<String>,
    /// Codes.
    #[serde(default)]
    pub errors: Vec<ProblemError>,
}

/// `POST /configuration`: the next `count` calls to `endpoint` fail with `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StubConfiguration {
    /// One of the six paths.
    pub endpoint: ReportKind,
    /// 100 to 599.
    pub status: u16,
    /// The top-level code (the problem's `type` and `title`).
    pub code: String,
    /// How many calls fail.
    pub count: u32,
    /// The problem's `errors`, at least one.
    pub errors: Vec<ProblemError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_follow_the_stub_pattern() {
        assert!(datetime_ok("2025-11-25T14:24:01.248Z"));
        assert!(datetime_ok("2025-11-25T14:24:01Z"));
        assert!(datetime_ok("2025-11-25T14:24:01.2+01:00"));
        assert!(!datetime_ok("2025-11-25 14:24:01Z"));
        assert!(!datetime_ok("2025-11-25T14:24:01"));
        assert!(!datetime_ok("2025-11-25T14:24:01.Z"));
        assert!(datetime_ok(&datetime(1_764_000_000_123_456)));
    }

    #[test]
    fn null_submissions_keep_a_null_submission_id() {
        let body = ResponseTime {
            holdername_guid: Uuid::nil(),
            submission: Submission {
                record_id: Uuid::nil(),
                submission_id: None,
                submission_status: SubmissionStatus::OnTime,
                reporting_period_start: "2025-11-01T00:00:00.000Z".into(),
                submission_reason: SubmissionReason::Null,
            },
            items: None,
        };
        let v = serde_json::to_value(&body).unwrap();
        assert!(v.get("submission_id").unwrap().is_null());
        assert!(v.get("items").is_none());
        assert_eq!(v["submission_reason"], "null submission");
        assert_eq!(v["submission_status"], "on time");
    }

    /// One body of each kind (request number, response time, calculations, unavailable,
    /// availability) of the submission `sid` for `reason`.
    fn bodies(sid: Option<Uuid>, reason: SubmissionReason) -> Vec<String> {
        let (h, r) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let start = || "2025-11-01T00:00:00.000Z".to_owned();
        let status = SubmissionStatus::Correction;
        let calc = || CalculationDataArray {
            items: vec![CalculationObject {
                value_code: "DBC".into(),
                calculation_start_date: start(),
                calculation_end_date: start(),
            }],
        };
        let submission = || Submission {
            record_id: r,
            submission_id: sid,
            submission_status: status,
            reporting_period_start: start(),
            submission_reason: reason,
        };
        vec![
            serde_json::to_string(&RequestNumber {
                holdername_guid: h,
                submission: submission(),
                req_count: 7,
            })
            .unwrap(),
            serde_json::to_string(&ResponseTime {
                holdername_guid: h,
                submission: submission(),
                items: sid.map(|_| {
                    vec![RequestDetails {
                        req_date_ts: start(),
                        resp_date_ts: start(),
                    }]
                }),
            })
            .unwrap(),
            serde_json::to_string(&Calculations {
                calculation_type: sid.map(|_| "multiple".into()),
                holdername_guid: h,
                submission: submission(),
                multiple_calculation: sid.map(|_| MultipleCalculation {
                    eri: calc(),
                    accrued: calc(),
                }),
            })
            .unwrap(),
            serde_json::to_string(&Unavailable {
                holdername_guid: h,
                submission: submission(),
                contact_count: 1,
                missingadmin_count: 2,
                temperror_count: 3,
                eri_unavail_ano_count: 4,
                eri_unavail_ppf_count: 5,
                eri_unavail_trn_count: 6,
                accrued_unavail_ano_count: 7,
                accrued_unavail_ppf_count: 8,
                accrued_unavail_trn_count: 9,
            })
            .unwrap(),
            serde_json::to_string(&ServiceAvailability {
                submission: submission(),
                items: match sid {
                    None => AvailabilityItems::Holdernames(vec![h]),
                    Some(_) => {
                        AvailabilityItems::Periods(vec![std::collections::BTreeMap::from([(
                            h,
                            vec![ServiceUnavailability {
                                start_date_ts: start(),
                                end_date_ts: start(),
                                unavail_scheduled: true,
                                unavail_reason: "patch".into(),
                            }],
                        )])])
                    }
                },
            })
            .unwrap(),
        ]
    }

    /// The bodies to the byte: the stub's contract, field order included.
    #[test]
    fn bodies_are_spelled_to_the_byte() {
        const H: &str = "00000000-0000-0000-0000-000000000001";
        const R: &str = "00000000-0000-0000-0000-000000000002";
        const S: &str = "00000000-0000-0000-0000-000000000003";
        const T: &str = "2025-11-01T00:00:00.000Z";
        let head = |sid: &str, reason: &str| {
            format!(
                r#""record_id":"{R}","submission_id":{sid},"submission_status":"correction","reporting_period_start":"{T}","submission_reason":"{reason}""#
            )
        };
        let data = head(&format!("\"{S}\""), "resubmission");
        let null = head("null", "null submission");
        let calc = format!(
            r#"{{"items":[{{"value_code":"DBC","calculation_start_date":"{T}","calculation_end_date":"{T}"}}]}}"#
        );
        let counts = r#""contact_count":1,"missingadmin_count":2,"temperror_count":3,"eri_unavail_ano_count":4,"eri_unavail_ppf_count":5,"eri_unavail_trn_count":6,"accrued_unavail_ano_count":7,"accrued_unavail_ppf_count":8,"accrued_unavail_trn_count":9"#;
        let want_data = [
            format!(r#"{{"holdernameGuid":"{H}",{data},"req_count":7}}"#),
            format!(
                r#"{{"holdernameGuid":"{H}",{data},"items":[{{"req_date_ts":"{T}","resp_date_ts":"{T}"}}]}}"#
            ),
            format!(
                r#"{{"calculation_type":"multiple","holdernameGuid":"{H}",{data},"multiple_calculation":{{"eriCalculationData":{calc},"accruedCalculationData":{calc}}}}}"#
            ),
            format!(r#"{{"holdernameGuid":"{H}",{data},{counts}}}"#),
            format!(
                r#"{{{data},"items":[{{"{H}":[{{"start_date_ts":"{T}","end_date_ts":"{T}","unavail_scheduled":true,"unavail_reason":"patch"}}]}}]}}"#
            ),
        ];
        let want_null = [
            format!(r#"{{"holdernameGuid":"{H}",{null},"req_count":7}}"#),
            format!(r#"{{"holdernameGuid":"{H}",{null}}}"#),
            format!(r#"{{"holdernameGuid":"{H}",{null}}}"#),
            format!(r#"{{"holdernameGuid":"{H}",{null},{counts}}}"#),
            format!(r#"{{{null},"items":["{H}"]}}"#),
        ];
        let got_data = bodies(Some(Uuid::from_u128(3)), SubmissionReason::Resubmission);
        let got_null = bodies(None, SubmissionReason::Null);
        assert_eq!(got_data, want_data);
        assert_eq!(got_null, want_null);
    }

    /// Each body reads back as itself, and an unknown field is refused.
    #[test]
    fn bodies_read_back_and_refuse_unknown_fields() {
        fn check<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
            body: &str,
        ) {
            let v: T = serde_json::from_str(body).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), body);
            let extra = format!(r#"{},"surprise":1}}"#, &body[..body.len() - 1]);
            assert!(serde_json::from_str::<T>(&extra).is_err(), "{extra}");
        }
        for sid in [Some(Uuid::from_u128(3)), None] {
            let reason = sid.map_or(SubmissionReason::Null, |_| SubmissionReason::Initial);
            let b = bodies(sid, reason);
            check::<RequestNumber>(&b[0]);
            check::<ResponseTime>(&b[1]);
            check::<Calculations>(&b[2]);
            check::<Unavailable>(&b[3]);
            check::<ServiceAvailability>(&b[4]);
        }
    }

    #[test]
    fn reasons_follow_the_pattern() {
        assert!(reason_ok("Downtime for system update"));
        assert!(reason_ok("unplanned outage - heartbeat gap"));
        assert!(!reason_ok(""));
        assert!(!reason_ok("patch; reboot"));
    }
}
