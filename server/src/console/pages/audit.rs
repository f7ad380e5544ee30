//! The audit trail's export ([`Action::AuditExport`](crate::console::roles::Action)): every
//! record from `?from=` to `?to=` (days, `YYYY-MM-DD`; the last 30 days by default) as CSV,
//! itself audited.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

use crate::console::page::Page;
use crate::console::respond::{with_type, Resp};
use crate::console::ConsoleError;

/// The CSV's header line.
const HEADER: &str =
    "transaction_id,request_id,direction,party,endpoint,received_at,responded_at,status,outcome\n";

/// The records, as an attachment `audit.csv`.
pub(crate) async fn export(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let day = |k: &str| {
        p.query(k)
            .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
    };
    let today = chrono::Utc::now().date_naive();
    let to = day("to").unwrap_or(today) + chrono::Days::new(1);
    let from = day("from").unwrap_or(today - chrono::Days::new(30));
    let records = p
        .console
        .store
        .audit_records(
            crate::report::day_start(from),
            crate::report::day_start(to),
            None,
        )
        .await?;
    let mut out = String::from(HEADER);
    for r in &records {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.transaction_id,
            r.request_id.as_deref().unwrap_or(""),
            r.direction.as_str(),
            csv_cell(&r.party),
            csv_cell(&r.endpoint),
            crate::datetimestamp(r.received_at),
            crate::datetimestamp(r.responded_at),
            r.status,
            csv_cell(&r.outcome),
        ));
    }
    p.audit(200, "audit_exported", None).await;
    let mut r = with_type(StatusCode::OK, Bytes::from(out), "text/csv; charset=utf-8");
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit.csv\""),
    );
    Ok(r)
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
