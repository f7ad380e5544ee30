//! The audit trail's export ([`Action::AuditExport`](crate::console::roles::Action)): a form for
//! the days (`YYYY-MM-DD`, from and to inclusive; the last 30 days by default) and a transaction
//! or find request ID, and the matching records as CSV, streamed a page at a time from the
//! store (a forensic request, CoCo3.2.4, is exactly this). A date that is not one, or a range
//! that ends before it starts, is refused saying so. Every export is audited with its filter.

use bytes::Bytes;
use chrono::NaiveDate;
use http::{header, HeaderValue, StatusCode};
use minijinja::context;

use crate::console::page::Page;
use crate::console::respond::{stream, Resp};
use crate::console::ConsoleError;
use crate::store::review::AuditPage;
use crate::store::Store;

/// The CSV's columns.
const HEADER: [&str; 9] = [
    "transaction_id",
    "request_id",
    "direction",
    "party",
    "endpoint",
    "received_at",
    "responded_at",
    "status",
    "outcome",
];

/// Records read from the store per page of the stream.
const PAGE: usize = 1_000;

/// Longest transaction or request ID accepted in the filter.
const MAX_ID: usize = 200;

/// An export's filter, as the form gives it.
struct Filter {
    from: NaiveDate,
    to: NaiveDate,
    request_id: Option<String>,
}

/// The export's form, with `error` above it.
pub(crate) async fn form(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    form_status(p, None, StatusCode::OK)
}

fn form_status(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let today = chrono::Utc::now().date_naive();
    let value = |k: &str, default: NaiveDate| p.query(k).unwrap_or_else(|| default.to_string());
    p.render_status(
        "audit.html",
        "/audit",
        context! {
            from => value("from", today - chrono::Days::new(30)),
            to => value("to", today),
            request_id => p.query("request_id").unwrap_or_default(),
        },
        status,
        error,
    )
}

/// The records the query's filter names, as an attachment `audit.csv`; or the form again saying
/// what is wrong with the filter.
pub(crate) async fn export(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let f = match filter(p) {
        Ok(f) => f,
        Err(msg) => {
            p.audit(422, "refused", None).await;
            return form_status(p, Some(msg), StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let (from, to) = (f.from.to_string(), f.to.to_string());
    let id = f.request_id.clone().unwrap_or_default();
    p.audit_on(
        200,
        "audit_exported",
        None,
        &[("from", &from), ("to", &to), ("request_id", &id)],
    )
    .await;
    let page = AuditPage {
        from: crate::report::day_start(f.from),
        to: crate::report::day_start(f.to + chrono::Days::new(1)),
        request_id: f.request_id,
        after: None,
        limit: PAGE,
    };
    let mut r = stream(
        StatusCode::OK,
        pages(p.console.store.clone(), page),
        "text/csv; charset=utf-8",
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit.csv\""),
    );
    Ok(r)
}

/// The filter in the query, or what is wrong with it.
fn filter(p: &Page<'_>) -> Result<Filter, String> {
    let today = chrono::Utc::now().date_naive();
    let day = |k: &str, default: NaiveDate| match p.query(k).map(|v| v.trim().to_owned()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map_err(|_| format!("{k}: {v:?} is not a date; write it YYYY-MM-DD")),
    };
    let from = day("from", today - chrono::Days::new(30))?;
    let to = day("to", today)?;
    if to < from {
        return Err(format!("to ({to}) is before from ({from})"));
    }
    let request_id = p
        .query("request_id")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    if let Some(id) = &request_id {
        if id.len() > MAX_ID || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "request ID: up to {MAX_ID} letters, digits and punctuation, no spaces"
            ));
        }
    }
    Ok(Filter {
        from,
        to,
        request_id,
    })
}

/// Where the stream is: the next page to read, and whether the header has gone.
struct Cursor {
    store: Store,
    page: AuditPage,
    header_sent: bool,
    done: bool,
}

/// The CSV, a page of records at a time (the header first); a store failure midway ends the
/// body with an error, so the cut file is never taken for a whole one.
fn pages(
    store: Store,
    page: AuditPage,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let start = Cursor {
        store,
        page,
        header_sent: false,
        done: false,
    };
    futures_util::stream::try_unfold(start, |mut c| async move {
        if c.done {
            return Ok(None);
        }
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        if !c.header_sent {
            w.write_record(HEADER)?;
            c.header_sent = true;
        }
        let rows = c
            .store
            .audit_page(c.page.clone())
            .await
            .map_err(std::io::Error::other)?;
        c.done = rows.len() < c.page.limit;
        if let Some(last) = rows.last() {
            c.page.after = Some(last.at);
        }
        for at in rows {
            let r = at.record;
            w.write_record([
                r.transaction_id.as_str(),
                r.request_id.as_deref().unwrap_or(""),
                r.direction.as_str(),
                &r.party,
                &r.endpoint,
                &crate::datetimestamp(r.received_at),
                &crate::datetimestamp(r.responded_at),
                &r.status.to_string(),
                &r.outcome,
            ])?;
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(Some((Bytes::from(bytes), c)))
    })
}
