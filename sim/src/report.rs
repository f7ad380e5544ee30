//! The CAS simulator's reporting API v2.1, answering as MaPS' stub (pdp-test-harness:
//! `ViewResponseApiController` at 405ea60, `ServiceAvailabilityApiController` and
//! `specs/V1.1/reporting-api-v2_1.yaml` at cb1b635) does, and its scripted faults (`POST
//! /configuration`, `ConfigurationService`).
//!
//! Order, as the stub's: Spring first, with its default error body (`timestamp`, `status`,
//! `error`, `path`; no problem details): a `Content-Type` other than `application/json` is
//! `415`; a missing `X-Request-ID`, or one that is not a hyphenated UUID, `400`; a body that is
//! not JSON `400`. Then each controller's checks in its own order (null-submission rules,
//! required fields, formats, unknown fields, Jackson's typed reading: a date-time matching the
//! pattern but with hour 25 is refused as its field, or as `INVALID_REQUEST` on service
//! availability); the first fault is `400` problem details with one code `INVALID_<FIELD>`.
//! `submission_id: null` is accepted outside null submissions (`nullable: true`).
//!
//! At least as strict as the stub's code, stricter only by the yaml's rules its code leaves
//! unchecked (each in the table test): the `@Min` and `@Size` constraints (item limits, counts
//! at least 0, a reason of at least one character), which its bean validation would apply but
//! never does (it throws on `@Size` over an enum and the controllers treat the body as valid);
//! date-times that are times where it checks only the pattern; no null submission on
//! `unavailable`; a null submission's `submission_id` null; UUIDs hyphenated; no unknown fields
//! on a null submission (the stub reads those no further). Only a valid body meets a scripted
//! fault (the next `count` calls answered with its status and codes); otherwise `202
//! {"message": "ACCEPTED", "datetimestamp"}`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Map, Value};

use pdp_provider::wire::report::{
    datetime_ok, reason_ok, ProblemDetails, ProblemError, ReportKind, StubConfiguration,
    MAX_BODY_BYTES, MAX_CALCULATIONS, MAX_HOLDER_MAPS, MAX_PERIODS, MAX_RESPONSE_TIMES,
};

/// A submission the simulator accepted.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Received {
    /// Which endpoint.
    pub kind: ReportKind,
    /// The X-Request-ID it carried.
    pub x_request_id: String,
    /// The body.
    pub body: Value,
    /// What the simulator answered.
    pub status: u16,
}

/// Reporting state: what was received, and the scripted faults.
#[derive(Default)]
pub struct ReportState {
    received: Mutex<Vec<Received>>,
    faults: Mutex<HashMap<ReportKind, StubConfiguration>>,
    /// How long each answer is held after the call is received (a slow CAS; or, for a test, the
    /// moment to kill the caller between its send and its record of the answer).
    hold: Mutex<std::time::Duration>,
}

// === impl ReportState ===

impl ReportState {
    /// Every call received, in order (valid or not, faulted or not).
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Holds every answer this long after its call is received (zero: answer at once).
    pub fn hold_answers(&self, hold: std::time::Duration) {
        *self.hold.lock().unwrap_or_else(|e| e.into_inner()) = hold;
    }

    /// How long answers are held.
    pub fn held_for(&self) -> std::time::Duration {
        *self.hold.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `POST /configuration`: each entry replaces its endpoint's; an empty list clears all.
    pub fn configure(&self, stubs: Vec<StubConfiguration>) {
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        if stubs.is_empty() {
            f.clear();
        }
        for s in stubs {
            f.insert(s.endpoint, s);
        }
    }

    /// The scripted fault for `kind`, counted down (`getAndDecrementConfiguration`).
    fn take_fault(&self, kind: ReportKind) -> Option<StubConfiguration> {
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let c = f.get_mut(&kind)?;
        if c.count == 0 {
            f.remove(&kind);
            return None;
        }
        c.count -= 1;
        let out = c.clone();
        if c.count == 0 {
            f.remove(&kind);
        }
        Some(out)
    }

    /// Answers one reporting call as the stub's Spring application does: a `Content-Type` other
    /// than `application/json` is `415`, a missing or malformed `X-Request-ID` (not a hyphenated
    /// UUID) `400`, both with Spring's default error body, not problem details; then
    /// [`ReportState::handle`].
    pub fn answer(&self, call: Call<'_>) -> (u16, Value) {
        let refused = if !call.content_type.is_some_and(json_media_type) {
            Some(415)
        } else if !call.x_request_id.is_some_and(|x| uuid_ok(&Value::from(x))) {
            Some(400)
        } else {
            None
        };
        match refused {
            Some(status) => {
                let answer = spring_error(status, call.kind.as_str());
                self.record(
                    call.kind,
                    call.x_request_id.unwrap_or_default(),
                    Value::Null,
                    status,
                );
                (status, answer)
            }
            None => self.handle(call.kind, call.x_request_id.unwrap_or_default(), call.body),
        }
    }

    /// Answers one reporting call's body: `(status, body)`. A body that is no JSON (or JSON
    /// `null`) is Spring's `400` with its default body; then, as the controllers do, a body
    /// over 1 MiB is `413`, the validation's first fault `400` with problem details, a scripted
    /// fault its status, and else `202`.
    pub fn handle(&self, kind: ReportKind, x_request_id: &str, body: &[u8]) -> (u16, Value) {
        let parsed: Option<Value> = serde_json::from_slice(body)
            .ok()
            .filter(|v: &Value| !v.is_null());
        let (status, answer) = match &parsed {
            None => (400, spring_error(400, kind.as_str())),
            Some(_) if body.len() > MAX_BODY_BYTES => {
                problem(413, "Payload Too Large", "CONTENT_TOO_LARGE")
            }
            Some(v) => match validate(kind, v) {
                Err(field) => problem(400, "Bad Request", &format!("INVALID_{field}")),
                Ok(()) => self.valid(kind),
            },
        };
        self.record(kind, x_request_id, parsed.unwrap_or(Value::Null), status);
        (status, answer)
    }

    /// A valid body's answer: the scripted fault, or `202`.
    fn valid(&self, kind: ReportKind) -> (u16, Value) {
        let Some(f) = self.take_fault(kind) else {
            return (202, json!({"message": "ACCEPTED", "datetimestamp": now()}));
        };
        let title = f
            .code
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map_or_else(String::new, |first| {
                    first.to_string() + &c.as_str().to_lowercase()
                })
            })
            .collect::<Vec<_>>()
            .join(" ");
        (
            f.status,
            problem_details(
                format!("https://example.com/errors/{}", f.code),
                &title,
                f.status,
                f.errors,
            ),
        )
    }

    fn record(&self, kind: ReportKind, x_request_id: &str, body: Value, status: u16) {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Received {
                kind,
                x_request_id: x_request_id.to_owned(),
                body,
                status,
            });
    }
}

/// One reporting call as received.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Which endpoint.
    pub kind: ReportKind,
    /// Its `Content-Type`, if any.
    pub content_type: Option<&'a str>,
    /// Its `X-Request-ID`, if any.
    pub x_request_id: Option<&'a str>,
    /// Its body.
    pub body: &'a [u8],
}

/// Whether Spring takes `content_type` for `consumes = "application/json"`: that type, any
/// parameters (a charset) aside, in any case.
fn json_media_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Spring Boot's default error body (`BasicErrorController`), which the stub answers when a
/// call does not reach its controller: no problem details, no error code.
pub fn spring_error(status: u16, path: &str) -> Value {
    let error = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    json!({"timestamp": now(), "status": status, "error": error, "path": path})
}

fn now() -> String {
    pdp_provider::datetimestamp(pdp_provider::now_micros())
}

fn problem(status: u16, title: &str, code: &str) -> (u16, Value) {
    let errors = vec![ProblemError { code: code.into() }];
    (
        status,
        problem_details("about:blank".into(), title, status, errors),
    )
}

/// A problem details body, as the stub answers a refusal.
fn problem_details(kind: String, title: &str, status: u16, errors: Vec<ProblemError>) -> Value {
    serde_json::to_value(ProblemDetails {
        kind,
        title: title.to_owned(),
        status,
        datetimestamp: Some(now()),
        errors,
    })
    .unwrap_or_default()
}

type Check = Result<(), String>;

fn bad(field: &str) -> Check {
    Err(field.to_owned())
}

/// A UUID as the yaml's `format: uuid` has it: 36 characters, hyphenated (Java's
/// `UUID.fromString` also takes `1-2-3-4-5`; Jackson refuses 32 digits without dashes).
fn uuid_ok(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok())
}

/// A date-time as the stub's pattern has it and as Jackson's `OffsetDateTime` reads it: hour
/// 25 matches the pattern but is no time.
fn instant_ok(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| datetime_ok(s) && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

fn one_of(v: &Value, values: &[&str]) -> bool {
    v.as_str().is_some_and(|s| values.contains(&s))
}

/// An `int32` at least 0 (the stub's `Number` and `intValue() >= 0`, the yaml's integer).
fn count_ok(v: &Value) -> bool {
    v.as_i64()
        .is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
}

/// `m`'s `key`, or null.
fn at<'a>(m: &'a Map<String, Value>, key: &str) -> &'a Value {
    m.get(key).unwrap_or(&Value::Null)
}

fn missing(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).is_none_or(Value::is_null)
}

const REASONS: [&str; 3] = ["initial submission", "resubmission", "null submission"];
const STATUSES: [&str; 3] = ["on time", "correction", "late"];
const NULL_SUBMISSION: &str = "null submission";

fn is_null_submission(m: &Map<String, Value>) -> bool {
    m.get("submission_reason").and_then(Value::as_str) == Some(NULL_SUBMISSION)
}

/// The type of a field as the stub's generated model reads it (Jackson).
#[derive(Clone, Copy)]
enum Ty {
    Uuid,
    Count,
    Status,
    Reason,
    Instant,
    CalculationType,
    /// Read by the manual checks before; Jackson only refuses unknown fields in it.
    Checked,
}

fn ty_ok(ty: Ty, v: &Value) -> bool {
    match ty {
        Ty::Uuid => uuid_ok(v),
        Ty::Count => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        Ty::Status => one_of(v, &STATUSES),
        Ty::Reason => one_of(v, &REASONS),
        Ty::Instant => instant_ok(v),
        Ty::CalculationType => one_of(v, &["single", "multiple"]),
        Ty::Checked => true,
    }
}

/// The common fields' types in the generated models.
const COMMON_TYPES: [(&str, Ty, &str); 6] = [
    ("holdernameGuid", Ty::Uuid, "HOLDERNAMEGUID"),
    ("record_id", Ty::Uuid, "RECORD_ID"),
    ("submission_id", Ty::Uuid, "SUBMISSION_ID"),
    ("submission_status", Ty::Status, "SUBMISSION_STATUS"),
    (
        "reporting_period_start",
        Ty::Instant,
        "REPORTING_PERIOD_START",
    ),
    ("submission_reason", Ty::Reason, "SUBMISSION_REASON"),
];

/// Jackson's conversion to a generated model with `FAIL_ON_UNKNOWN_PROPERTIES`: an unknown
/// field is `UNEXPECTED_FIELD`, a value of the wrong type is its field's code.
fn typed(m: &Map<String, Value>, fields: &[(&str, Ty, &str)]) -> Check {
    for (k, v) in m {
        let Some((_, ty, code)) = fields.iter().find(|(name, ..)| name == k) else {
            return bad("UNEXPECTED_FIELD");
        };
        if !v.is_null() && !ty_ok(*ty, v) {
            return bad(code);
        }
    }
    Ok(())
}

fn with_common(
    extra: &[(&'static str, Ty, &'static str)],
) -> Vec<(&'static str, Ty, &'static str)> {
    let mut out = COMMON_TYPES.to_vec();
    out.extend_from_slice(extra);
    out
}

/// `validateCommonRequiredFields`: present and not null, in the stub's order; `submission_id`
/// present (null allowed: the yaml's `nullable: true`) unless it is a null submission.
fn common_required(m: &Map<String, Value>, is_null: bool) -> Check {
    for (k, code) in [
        ("holdernameGuid", "HOLDERNAMEGUID"),
        ("record_id", "RECORD_ID"),
        ("submission_reason", "SUBMISSION_REASON"),
        ("submission_status", "SUBMISSION_STATUS"),
        ("reporting_period_start", "REPORTING_PERIOD_START"),
    ] {
        if missing(m, k) {
            return bad(code);
        }
    }
    if !is_null && !m.contains_key("submission_id") {
        return bad("SUBMISSION_ID");
    }
    Ok(())
}

/// `validateCommonFormats`: UUIDs, the reason and status enums, the date-time.
fn common_formats(m: &Map<String, Value>) -> Check {
    for (k, ok, code) in [
        (
            "holdernameGuid",
            uuid_ok as fn(&Value) -> bool,
            "HOLDERNAMEGUID",
        ),
        ("record_id", uuid_ok, "RECORD_ID"),
        (
            "submission_reason",
            |v: &Value| one_of(v, &REASONS),
            "SUBMISSION_REASON",
        ),
        ("submission_id", uuid_ok, "SUBMISSION_ID"),
        (
            "submission_status",
            |v: &Value| one_of(v, &STATUSES),
            "SUBMISSION_STATUS",
        ),
        (
            "reporting_period_start",
            instant_ok,
            "REPORTING_PERIOD_START",
        ),
    ] {
        if m.get(k).is_some_and(|v| !v.is_null() && !ok(v)) {
            return bad(code);
        }
    }
    Ok(())
}

/// The yaml's rule the stub leaves to its bean validation (which never runs): a null
/// submission's `submission_id` is null ("When submission_reason is \"null submission\" ...
/// submission_id should be null").
fn null_submission_id(m: &Map<String, Value>) -> Check {
    if is_null_submission(m) && m.get("submission_id").is_some_and(|v| !v.is_null()) {
        return bad("SUBMISSION_ID");
    }
    Ok(())
}

/// Validates a body as the stub's code does, then by the yaml's rules the stub's code leaves
/// unchecked; `Err` names the field of the first fault (`INVALID_<it>`).
pub fn validate(kind: ReportKind, body: &Value) -> Check {
    match kind {
        ReportKind::RequestNumber => request_number_ok(body),
        ReportKind::ResponseTime => response_time_ok(body),
        ReportKind::Calculations => calculations_ok(body),
        ReportKind::Unavailable => unavailable_ok(body),
        ReportKind::FindAvailability | ReportKind::ViewAvailability => availability_ok(body),
    }
}

/// `viewResponseNumber`: Jackson first (a body that is no object is `INVALID_REQUEST`), then
/// the empty body, `submission_id`'s key, the required fields.
fn request_number_ok(body: &Value) -> Check {
    let Some(m) = body.as_object() else {
        return bad("REQUEST");
    };
    typed(m, &with_common(&[("req_count", Ty::Count, "REQ_COUNT")]))?;
    if m.is_empty() {
        return bad("REQUEST_BODY");
    }
    if !m.contains_key("submission_id") {
        return bad("SUBMISSION_ID");
    }
    for (k, code) in [
        ("holdernameGuid", "HOLDERNAMEGUID"),
        ("record_id", "RECORD_ID"),
        ("submission_status", "SUBMISSION_STATUS"),
        ("reporting_period_start", "REPORTING_PERIOD_START"),
        ("submission_reason", "SUBMISSION_REASON"),
        ("req_count", "REQ_COUNT"),
    ] {
        if missing(m, k) {
            return bad(code);
        }
    }
    // The yaml's, past the stub's bean validation: `minimum: 0`.
    if !count_ok(at(m, "req_count")) {
        return bad("REQ_COUNT");
    }
    null_submission_id(m)
}

/// `viewResponseTime`.
fn response_time_ok(body: &Value) -> Check {
    let Some(m) = body.as_object().filter(|m| !m.is_empty()) else {
        return bad("REQUEST_BODY");
    };
    let is_null = is_null_submission(m);
    if is_null {
        null_submission_id(m)?;
        if m.get("items").is_some_and(|v| !v.is_null()) {
            return bad("UNEXPECTED_FIELD");
        }
    }
    common_required(m, is_null)?;
    if !is_null && missing(m, "items") {
        return bad("REQ_DATE_TS");
    }
    common_formats(m)?;
    if !is_null {
        time_items(at(m, "items"))?;
    }
    // The stub reads a null submission no further; stricter here, its fields are the yaml's.
    typed(m, &with_common(&[("items", Ty::Checked, "REQ_DATE_TS")]))?;
    // The yaml's `maxItems: 1400`, past the stub's bean validation.
    if at(m, "items")
        .as_array()
        .is_some_and(|i| i.len() > MAX_RESPONSE_TIMES)
    {
        return bad("REQ_DATE_TS");
    }
    Ok(())
}

/// `validateTimeItems`, then Jackson's reading of each item.
fn time_items(items: &Value) -> Check {
    let Some(items) = items.as_array().filter(|i| !i.is_empty()) else {
        return bad("REQ_DATE_TS");
    };
    for item in items {
        let Some(i) = item.as_object() else {
            return bad("REQ_DATE_TS");
        };
        if i.keys().any(|k| k != "req_date_ts" && k != "resp_date_ts") {
            return bad("UNEXPECTED_FIELD");
        }
        for (k, code) in [
            ("req_date_ts", "REQ_DATE_TS"),
            ("resp_date_ts", "RESP_DATE_TS"),
        ] {
            if missing(i, k) {
                return bad(code);
            }
        }
        for (k, code) in [
            ("req_date_ts", "REQ_DATE_TS"),
            ("resp_date_ts", "RESP_DATE_TS"),
        ] {
            if !instant_ok(at(i, k)) {
                return bad(code);
            }
        }
    }
    Ok(())
}

/// `viewResponseCalculation`.
fn calculations_ok(body: &Value) -> Check {
    let Some(m) = body.as_object().filter(|m| !m.is_empty()) else {
        return bad("REQUEST_BODY");
    };
    let is_null = is_null_submission(m);
    if is_null {
        null_submission_id(m)?;
        if m.contains_key("single_calculation") || m.contains_key("multiple_calculation") {
            return bad("UNEXPECTED_FIELD");
        }
    }
    common_required(m, is_null)?;
    if !is_null && missing(m, "calculation_type") {
        return bad("CALCULATION_TYPE");
    }
    common_formats(m)?;
    let calc_type = m.get("calculation_type").filter(|v| !v.is_null());
    if calc_type.is_some_and(|t| !one_of(t, &["single", "multiple"])) {
        return bad("CALCULATION_TYPE");
    }
    if !is_null {
        calc_data(m)?;
    }
    typed(
        m,
        &with_common(&[
            ("calculation_type", Ty::CalculationType, "CALCULATION_TYPE"),
            ("single_calculation", Ty::Checked, "SINGLE_CALCULATION"),
            ("multiple_calculation", Ty::Checked, "MULTIPLE_CALCULATION"),
        ]),
    )?;
    calc_typed(m)
}

/// `validateCalcTypeData`: the arrays `calculation_type` names.
fn calc_data(m: &Map<String, Value>) -> Check {
    if at(m, "calculation_type").as_str() == Some("single") {
        let Some(single) = m.get("single_calculation").filter(|v| !v.is_null()) else {
            return bad("CALCULATION_TYPE");
        };
        return single.as_object().map_or(Ok(()), calc_array);
    }
    let Some(multiple) = m.get("multiple_calculation").filter(|v| !v.is_null()) else {
        return bad("CALCULATION_TYPE");
    };
    let Some(multiple) = multiple.as_object() else {
        return Ok(());
    };
    for k in ["eriCalculationData", "accruedCalculationData"] {
        let Some(array) = multiple.get(k).filter(|v| !v.is_null()) else {
            return bad("CALCULATION_TYPE");
        };
        if let Some(array) = array.as_object() {
            calc_array(array)?;
        }
    }
    Ok(())
}

/// `validateCalcDataArray`: `items` a list of calculation objects.
fn calc_array(array: &Map<String, Value>) -> Check {
    let Some(items) = array.get("items").and_then(Value::as_array) else {
        return bad("VALUE_CODE");
    };
    for item in items {
        let Some(i) = item.as_object() else {
            return bad("VALUE_CODE");
        };
        let fields = [
            "value_code",
            "calculation_start_date",
            "calculation_end_date",
        ];
        if i.keys().any(|k| !fields.contains(&k.as_str())) {
            return bad("UNEXPECTED_FIELD");
        }
        for (k, code) in [
            ("value_code", "VALUE_CODE"),
            ("calculation_start_date", "CALCULATION_START_DATE"),
            ("calculation_end_date", "CALCULATION_END_DATE"),
        ] {
            if missing(i, k) {
                return bad(code);
            }
        }
        if !one_of(at(i, "value_code"), &["DBC", "DCC"]) {
            return bad("VALUE_CODE");
        }
        for (k, code) in [
            ("calculation_start_date", "CALCULATION_START_DATE"),
            ("calculation_end_date", "CALCULATION_END_DATE"),
        ] {
            if !instant_ok(at(i, k)) {
                return bad(code);
            }
        }
    }
    Ok(())
}

/// Jackson's reading of the calculation data (`additionalProperties: false` on the arrays and
/// on `multiple_calculation`), then the yaml's `maxItems: 1300`.
fn calc_typed(m: &Map<String, Value>) -> Check {
    let array = |v: &Value, code: &str| -> Check {
        let Some(o) = v.as_object() else {
            return bad(code);
        };
        if o.keys().any(|k| k != "items") {
            return bad("UNEXPECTED_FIELD");
        }
        if at(o, "items")
            .as_array()
            .is_some_and(|i| i.len() > MAX_CALCULATIONS)
        {
            return bad("VALUE_CODE");
        }
        Ok(())
    };
    if let Some(single) = m.get("single_calculation").filter(|v| !v.is_null()) {
        array(single, "SINGLE_CALCULATION")?;
    }
    if let Some(multiple) = m.get("multiple_calculation").filter(|v| !v.is_null()) {
        let Some(mc) = multiple.as_object() else {
            return bad("MULTIPLE_CALCULATION");
        };
        for (k, v) in mc {
            let code = match k.as_str() {
                "eriCalculationData" => "ERI_CALCULATION_DATA",
                "accruedCalculationData" => "ACCRUED_CALCULATION_DATA",
                _ => return bad("UNEXPECTED_FIELD"),
            };
            array(v, code)?;
        }
    }
    Ok(())
}

/// The nine counts of an unavailable report, with their codes.
const UNAVAILABLE_COUNTS: [(&str, &str); 9] = [
    ("contact_count", "CONTACT_COUNT"),
    ("missingadmin_count", "MISSINGADMIN_COUNT"),
    ("temperror_count", "TEMPERROR_COUNT"),
    ("eri_unavail_ano_count", "ERI_UNAVAIL_ANO_COUNT"),
    ("eri_unavail_ppf_count", "ERI_UNAVAIL_PPF_COUNT"),
    ("eri_unavail_trn_count", "ERI_UNAVAIL_TRN_COUNT"),
    ("accrued_unavail_ano_count", "ACCRUED_UNAVAIL_ANO_COUNT"),
    ("accrued_unavail_ppf_count", "ACCRUED_UNAVAIL_PPF_COUNT"),
    ("accrued_unavail_trn_count", "ACCRUED_UNAVAIL_TRN_COUNT"),
];

/// `viewResponseUnavailable`: unknown fields first, the common fields, the nine counts; then
/// the yaml's `GenericReportingPropertiesWithoutNull` (no null submission), which the stub's
/// reason check does not apply.
fn unavailable_ok(body: &Value) -> Check {
    let Some(m) = body.as_object().filter(|m| !m.is_empty()) else {
        return bad("REQUEST_BODY");
    };
    let known = |k: &str| {
        COMMON_TYPES.iter().any(|(c, ..)| *c == k)
            || UNAVAILABLE_COUNTS.iter().any(|(c, _)| *c == k)
    };
    if m.keys().any(|k| !known(k)) {
        return bad("UNEXPECTED_FIELD");
    }
    common_required(m, false)?;
    common_formats(m)?;
    for (k, code) in UNAVAILABLE_COUNTS {
        if missing(m, k) || !count_ok(at(m, k)) {
            return bad(code);
        }
    }
    if is_null_submission(m) {
        return bad("SUBMISSION_REASON");
    }
    Ok(())
}

const AVAILABILITY_FIELDS: [&str; 6] = [
    "record_id",
    "submission_status",
    "reporting_period_start",
    "submission_id",
    "submission_reason",
    "items",
];
const PERIOD_FIELDS: [&str; 4] = [
    "unavail_scheduled",
    "unavail_reason",
    "start_date_ts",
    "end_date_ts",
];

/// Every period object of a service-availability body's `items` (as the stub walks them:
/// objects in lists in objects in the list).
fn periods_of(items: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|holders| holders.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_object)
}

/// `findServiceUnavailabilityData` and `viewServiceUnavailabilityData` (one validation):
/// null-submission rules, required fields, formats, unknown fields, period fields, then the
/// reading as `GeneralReportingProperties` (a date-time that is no time is `INVALID_REQUEST`).
fn availability_ok(body: &Value) -> Check {
    let Some(m) = body.as_object() else {
        return bad("REQUEST");
    };
    if m.is_empty() {
        return bad("REQUEST_BODY");
    }
    let is_null = is_null_submission(m);
    if is_null {
        null_submission_id(m)?;
        let first = m
            .get("items")
            .and_then(Value::as_array)
            .and_then(|i| i.first());
        if first.is_some_and(|f| !f.is_string()) {
            return bad("UNEXPECTED_FIELD");
        }
    }
    for k in AVAILABILITY_FIELDS {
        let code = match k {
            "items" => "HOLDERNAMEGUID".to_owned(),
            _ => k.to_uppercase(),
        };
        match m.get(k) {
            None => return bad(&code),
            Some(Value::Null) if !(is_null && k == "submission_id") => return bad(&code),
            _ => {}
        }
    }
    availability_formats(m, is_null)?;
    if m.keys().any(|k| !AVAILABILITY_FIELDS.contains(&k.as_str())) {
        return bad("UNEXPECTED_FIELD");
    }
    let periods: Vec<_> = periods_of(at(m, "items")).collect();
    if periods
        .iter()
        .any(|p| p.keys().any(|k| !PERIOD_FIELDS.contains(&k.as_str())))
    {
        return bad("UNEXPECTED_FIELD");
    }
    for p in &periods {
        for k in PERIOD_FIELDS {
            if missing(p, k) {
                return bad(&k.to_uppercase());
            }
        }
    }
    if !instant_ok(at(m, "reporting_period_start")) {
        return bad("REQUEST");
    }
    availability_yaml(m, is_null)
}

/// `checkFieldFormats` of a service-availability body.
fn availability_formats(m: &Map<String, Value>, is_null: bool) -> Check {
    if !uuid_ok(at(m, "record_id")) {
        return bad("RECORD_ID");
    }
    if !at(m, "submission_id").is_null() && !uuid_ok(at(m, "submission_id")) {
        return bad("SUBMISSION_ID");
    }
    if !one_of(at(m, "submission_reason"), &REASONS) {
        return bad("SUBMISSION_REASON");
    }
    if !one_of(at(m, "submission_status"), &STATUSES) {
        return bad("SUBMISSION_STATUS");
    }
    if !at(m, "reporting_period_start")
        .as_str()
        .is_some_and(datetime_ok)
    {
        return bad("REPORTING_PERIOD_START");
    }
    if is_null {
        return Ok(());
    }
    let Some(items) = at(m, "items").as_array().filter(|i| !i.is_empty()) else {
        return bad("HOLDERNAMEGUID");
    };
    for holders in items {
        let Some(holders) = holders.as_object() else {
            return bad("HOLDERNAMEGUID");
        };
        for periods in holders.values() {
            let Some(periods) = periods.as_array() else {
                return bad("HOLDERNAMEGUID");
            };
            for p in periods.iter().filter_map(Value::as_object) {
                period_formats(p)?;
            }
        }
    }
    Ok(())
}

/// `checkPeriodFieldFormats`: the stub's reason pattern admits the empty string.
fn period_formats(p: &Map<String, Value>) -> Check {
    let present = |k: &str| p.get(k).filter(|v| !v.is_null());
    if present("unavail_scheduled").is_some_and(|v| !v.is_boolean()) {
        return bad("UNAVAIL_SCHEDULED");
    }
    if present("unavail_reason")
        .is_some_and(|v| !v.as_str().is_some_and(|s| s.is_empty() || reason_ok(s)))
    {
        return bad("UNAVAIL_REASON");
    }
    for (k, code) in [
        ("start_date_ts", "START_DATE_TS"),
        ("end_date_ts", "END_DATE_TS"),
    ] {
        if present(k).is_some_and(|v| !v.as_str().is_some_and(datetime_ok)) {
            return bad(code);
        }
    }
    Ok(())
}

/// The yaml's rules for service availability that the stub's code does not apply: item
/// counts, holdername keys and null-submission items as UUIDs, a reason of 1 to 255
/// characters, date-times that are times.
fn availability_yaml(m: &Map<String, Value>, is_null: bool) -> Check {
    let Some(items) = at(m, "items").as_array() else {
        return bad("HOLDERNAMEGUID");
    };
    if items.is_empty() || items.len() > MAX_HOLDER_MAPS {
        return bad("HOLDERNAMEGUID");
    }
    if is_null {
        return if items.iter().all(uuid_ok) {
            Ok(())
        } else {
            bad("UNEXPECTED_FIELD")
        };
    }
    for map in items.iter().filter_map(Value::as_object) {
        for (h, periods) in map {
            let n = periods.as_array().map_or(0, Vec::len);
            if uuid::Uuid::try_parse(h).is_err() || !(1..=MAX_PERIODS).contains(&n) {
                return bad("HOLDERNAMEGUID");
            }
            for p in periods.as_array().into_iter().flatten() {
                let Some(p) = p.as_object() else {
                    return bad("HOLDERNAMEGUID");
                };
                if !at(p, "unavail_reason").as_str().is_some_and(reason_ok) {
                    return bad("UNAVAIL_REASON");
                }
                for (k, code) in [
                    ("start_date_ts", "START_DATE_TS"),
                    ("end_date_ts", "END_DATE_TS"),
                ] {
                    if !instant_ok(at(p, k)) {
                        return bad(code);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
