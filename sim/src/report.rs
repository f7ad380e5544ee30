//! The CAS simulator's reporting API v2.1, validating as MaPS' stub does
//! (`ViewResponseApiController`, `ServiceAvailabilityApiController`), and its scripted faults
//! (`POST /configuration`, `specs/V1.1/configuration v1_1.yaml`, `ConfigurationService`).
//!
//! Order, as the stub's: a body over 1 MiB is `413 CONTENT_TOO_LARGE`; then the body is
//! validated (unknown fields, required fields, UUIDs, enums, the date-time pattern, counts,
//! item limits, null-submission rules): the first fault found is `400` with one error code
//! `INVALID_<FIELD>` (e.g. `INVALID_RECORD_ID`, `INVALID_HOLDERNAMEGUID`,
//! `INVALID_UNEXPECTED_FIELD`); only a valid body meets a scripted fault (the next `count`
//! calls answered with its status and codes); otherwise `202 {"message": "ACCEPTED",
//! "datetimestamp"}`. Stricter than the stub in one point, as the yaml says: `unavailable`
//! refuses a null submission (the stub's controller lets the spelling through).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Map, Value};

use pdp_provider::wire::report::{
    datetime_ok, reason_ok, ProblemDetails, ProblemError, ReportKind, StubConfiguration,
    MAX_BODY_BYTES, MAX_CALCULATIONS, MAX_HOLDER_MAPS, MAX_PERIODS, MAX_RESPONSE_TIMES,
};

/// A submission the simulator accepted.
#[derive(Debug, Clone, Serialize)]
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

    /// Answers one reporting call: `(status, body)`.
    pub fn handle(&self, kind: ReportKind, x_request_id: &str, body: &[u8]) -> (u16, Value) {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let (status, answer) = if body.len() > MAX_BODY_BYTES {
            problem(413, "Payload Too Large", "CONTENT_TOO_LARGE")
        } else if let Err(field) = validate(kind, &parsed) {
            problem(400, "Bad Request", &format!("INVALID_{field}"))
        } else if let Some(f) = self.take_fault(kind) {
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
        } else {
            (202, json!({"message": "ACCEPTED", "datetimestamp": now()}))
        };
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Received {
                kind,
                x_request_id: x_request_id.to_owned(),
                body: parsed,
                status,
            });
        (status, answer)
    }
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

fn uuid_ok(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::try_parse(s).is_ok())
}

fn only(m: &Map<String, Value>, allowed: &[&str]) -> Check {
    if m.keys().any(|k| !allowed.contains(&k.as_str())) {
        return bad("UNEXPECTED_FIELD");
    }
    Ok(())
}

/// Refuses the first of `fields` (key, error code) that is not a date-time as the stub's pattern
/// has it.
fn datetimes_ok(m: &Map<String, Value>, fields: &[(&str, &str)]) -> Check {
    for (k, code) in fields {
        if !m.get(*k).and_then(Value::as_str).is_some_and(datetime_ok) {
            return bad(code);
        }
    }
    Ok(())
}

fn count(m: &Map<String, Value>, key: &str, code: &str) -> Check {
    match m.get(key).and_then(Value::as_i64) {
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(()),
        _ => bad(code),
    }
}

const COMMON: [&str; 6] = [
    "holdernameGuid",
    "record_id",
    "submission_id",
    "submission_status",
    "reporting_period_start",
    "submission_reason",
];

/// The stub's checks of the fields every view-response report has. `null_allowed`: whether
/// `null submission` is a valid reason here.
fn common(m: &Map<String, Value>, null_allowed: bool) -> Result<bool, String> {
    let reason = m.get("submission_reason").and_then(Value::as_str);
    let is_null = null_allowed && reason == Some("null submission");
    if m.get("holdernameGuid").is_none_or(Value::is_null) {
        return Err("HOLDERNAMEGUID".into());
    }
    if m.get("record_id").is_none_or(Value::is_null) {
        return Err("RECORD_ID".into());
    }
    if reason.is_none() {
        return Err("SUBMISSION_REASON".into());
    }
    if m.get("submission_status").is_none_or(Value::is_null) {
        return Err("SUBMISSION_STATUS".into());
    }
    if m.get("reporting_period_start").is_none_or(Value::is_null) {
        return Err("REPORTING_PERIOD_START".into());
    }
    let reasons: &[&str] = if null_allowed {
        &["initial submission", "resubmission", "null submission"]
    } else {
        &["initial submission", "resubmission"]
    };
    if !reasons.contains(&reason.unwrap_or_default()) {
        return Err("SUBMISSION_REASON".into());
    }
    // The key is required; its value is null exactly for a null submission.
    match m.get("submission_id") {
        None => return Err("SUBMISSION_ID".into()),
        Some(Value::Null) if !is_null => return Err("SUBMISSION_ID".into()),
        Some(v) if !v.is_null() && (is_null || !uuid_ok(v)) => return Err("SUBMISSION_ID".into()),
        _ => {}
    }
    if !uuid_ok(&m["holdernameGuid"]) {
        return Err("HOLDERNAMEGUID".into());
    }
    if !uuid_ok(&m["record_id"]) {
        return Err("RECORD_ID".into());
    }
    if !m["submission_status"]
        .as_str()
        .is_some_and(|s| ["on time", "correction", "late"].contains(&s))
    {
        return Err("SUBMISSION_STATUS".into());
    }
    if !m["reporting_period_start"]
        .as_str()
        .is_some_and(datetime_ok)
    {
        return Err("REPORTING_PERIOD_START".into());
    }
    Ok(is_null)
}

fn calc_array(v: Option<&Value>) -> Check {
    let Some(items) = v
        .and_then(Value::as_object)
        .filter(|o| o.keys().all(|k| k == "items"))
        .and_then(|o| o.get("items"))
        .and_then(Value::as_array)
    else {
        return bad("VALUE_CODE");
    };
    if items.len() > MAX_CALCULATIONS {
        return bad("VALUE_CODE");
    }
    for item in items {
        let Some(i) = item.as_object() else {
            return bad("VALUE_CODE");
        };
        only(
            i,
            &[
                "value_code",
                "calculation_start_date",
                "calculation_end_date",
            ],
        )?;
        if !i
            .get("value_code")
            .and_then(Value::as_str)
            .is_some_and(|c| c == "DBC" || c == "DCC")
        {
            return bad("VALUE_CODE");
        }
        datetimes_ok(
            i,
            &[
                ("calculation_start_date", "CALCULATION_START_DATE"),
                ("calculation_end_date", "CALCULATION_END_DATE"),
            ],
        )?;
    }
    Ok(())
}

fn periods_ok(items: &[Value]) -> Check {
    if items.is_empty() || items.len() > MAX_HOLDER_MAPS {
        return bad("HOLDERNAMEGUID");
    }
    for map in items {
        let Some(map) = map.as_object() else {
            return bad("HOLDERNAMEGUID");
        };
        for (h, periods) in map {
            if uuid::Uuid::try_parse(h).is_err() {
                return bad("HOLDERNAMEGUID");
            }
            let Some(periods) = periods
                .as_array()
                .filter(|p| (1..=MAX_PERIODS).contains(&p.len()))
            else {
                return bad("HOLDERNAMEGUID");
            };
            for p in periods {
                let Some(p) = p.as_object() else {
                    return bad("HOLDERNAMEGUID");
                };
                only(
                    p,
                    &[
                        "unavail_scheduled",
                        "unavail_reason",
                        "start_date_ts",
                        "end_date_ts",
                    ],
                )?;
                if !p.get("unavail_scheduled").is_some_and(Value::is_boolean) {
                    return bad("UNAVAIL_SCHEDULED");
                }
                if !p
                    .get("unavail_reason")
                    .and_then(Value::as_str)
                    .is_some_and(reason_ok)
                {
                    return bad("UNAVAIL_REASON");
                }
                datetimes_ok(
                    p,
                    &[
                        ("start_date_ts", "START_DATE_TS"),
                        ("end_date_ts", "END_DATE_TS"),
                    ],
                )?;
            }
        }
    }
    Ok(())
}

/// Validates a body as the stub does; `Err` names the field of the first fault.
pub fn validate(kind: ReportKind, body: &Value) -> Check {
    let Some(m) = body.as_object().filter(|m| !m.is_empty()) else {
        return bad("REQUEST_BODY");
    };
    match kind {
        ReportKind::RequestNumber => request_number_ok(m),
        ReportKind::ResponseTime => response_time_ok(m),
        ReportKind::Calculations => calculations_ok(m),
        ReportKind::Unavailable => unavailable_ok(m),
        ReportKind::FindAvailability | ReportKind::ViewAvailability => availability_ok(m),
    }
}

/// Refuses a field that is neither one of [`COMMON`] nor one of `extra`.
fn only_common_and(m: &Map<String, Value>, extra: &[&str]) -> Check {
    let mut allowed = COMMON.to_vec();
    allowed.extend(extra);
    only(m, &allowed)
}

/// A request-number report: the common fields and `req_count`; never a null submission.
fn request_number_ok(m: &Map<String, Value>) -> Check {
    only_common_and(m, &["req_count"])?;
    common(m, false)?;
    count(m, "req_count", "REQ_COUNT")
}

/// A response-time report: the common fields and, unless it is a null submission, its items.
fn response_time_ok(m: &Map<String, Value>) -> Check {
    only_common_and(m, &["items"])?;
    let is_null = common(m, true)?;
    match (is_null, m.get("items")) {
        (true, None | Some(Value::Null)) => Ok(()),
        (true, Some(_)) => bad("UNEXPECTED_FIELD"),
        (false, items) => {
            let Some(items) = items
                .and_then(Value::as_array)
                .filter(|i| (1..=MAX_RESPONSE_TIMES).contains(&i.len()))
            else {
                return bad("REQ_DATE_TS");
            };
            for item in items {
                let Some(i) = item.as_object() else {
                    return bad("REQ_DATE_TS");
                };
                only(i, &["req_date_ts", "resp_date_ts"])?;
                datetimes_ok(
                    i,
                    &[
                        ("req_date_ts", "REQ_DATE_TS"),
                        ("resp_date_ts", "RESP_DATE_TS"),
                    ],
                )?;
            }
            Ok(())
        }
    }
}

/// A calculations report: the common fields and, unless it is a null submission, its
/// calculations, single or multiple as `calculation_type` says.
fn calculations_ok(m: &Map<String, Value>) -> Check {
    only_common_and(
        m,
        &[
            "calculation_type",
            "single_calculation",
            "multiple_calculation",
        ],
    )?;
    let has_data = m.contains_key("single_calculation") || m.contains_key("multiple_calculation");
    let is_null = common(m, true)?;
    if is_null {
        return if has_data {
            bad("UNEXPECTED_FIELD")
        } else {
            Ok(())
        };
    }
    match m.get("calculation_type").and_then(Value::as_str) {
        Some("single") => calc_array(m.get("single_calculation")),
        Some("multiple") => {
            let Some(mc) = m.get("multiple_calculation").and_then(Value::as_object) else {
                return bad("CALCULATION_TYPE");
            };
            only(mc, &["eriCalculationData", "accruedCalculationData"])?;
            calc_array(mc.get("eriCalculationData"))?;
            calc_array(mc.get("accruedCalculationData"))
        }
        _ => bad("CALCULATION_TYPE"),
    }
}

/// An unavailable report: the common fields and its nine counts; never a null submission.
fn unavailable_ok(m: &Map<String, Value>) -> Check {
    let counts = [
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
    let keys: Vec<&str> = counts.iter().map(|(k, _)| *k).collect();
    only_common_and(m, &keys)?;
    common(m, false)?;
    for (k, code) in counts {
        count(m, k, code)?;
    }
    Ok(())
}

/// A find- or view-availability report: its own envelope (no `holdernameGuid`), then the
/// holdernames (a null submission) or their unavailable periods.
fn availability_ok(m: &Map<String, Value>) -> Check {
    let is_null = m.get("submission_reason").and_then(Value::as_str) == Some("null submission");
    if is_null && m.get("submission_id").is_some_and(|v| !v.is_null()) {
        return bad("SUBMISSION_ID");
    }
    for (k, code) in [
        ("record_id", "RECORD_ID"),
        ("submission_status", "SUBMISSION_STATUS"),
        ("reporting_period_start", "REPORTING_PERIOD_START"),
        ("submission_reason", "SUBMISSION_REASON"),
        ("submission_id", "SUBMISSION_ID"),
        ("items", "HOLDERNAMEGUID"),
    ] {
        match m.get(k) {
            None => return bad(code),
            Some(Value::Null) if !(is_null && k == "submission_id") => return bad(code),
            _ => {}
        }
    }
    if !uuid_ok(&m["record_id"]) {
        return bad("RECORD_ID");
    }
    if !m["submission_id"].is_null() && !uuid_ok(&m["submission_id"]) {
        return bad("SUBMISSION_ID");
    }
    if !m["submission_reason"]
        .as_str()
        .is_some_and(|s| ["initial submission", "resubmission", "null submission"].contains(&s))
    {
        return bad("SUBMISSION_REASON");
    }
    if !m["submission_status"]
        .as_str()
        .is_some_and(|s| ["on time", "correction", "late"].contains(&s))
    {
        return bad("SUBMISSION_STATUS");
    }
    if !m["reporting_period_start"]
        .as_str()
        .is_some_and(datetime_ok)
    {
        return bad("REPORTING_PERIOD_START");
    }
    only(
        m,
        &[
            "record_id",
            "submission_status",
            "reporting_period_start",
            "submission_id",
            "submission_reason",
            "items",
        ],
    )?;
    let Some(items) = m["items"].as_array() else {
        return bad("HOLDERNAMEGUID");
    };
    if is_null {
        if items.is_empty() || items.len() > MAX_HOLDER_MAPS {
            return bad("HOLDERNAMEGUID");
        }
        if !items.iter().all(uuid_ok) {
            return bad("UNEXPECTED_FIELD");
        }
        return Ok(());
    }
    periods_ok(items)
}

#[cfg(test)]
mod tests;
