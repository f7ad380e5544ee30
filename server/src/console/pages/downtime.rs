//! Planned downtime ([`Action::Service`](crate::console::roles::Action)): the windows of the
//! last 30 days and ahead, and a new one announced under CoCo2.2.1's notice rule, as
//! `pdp-provider report downtime` does.

use http::StatusCode;
use minijinja::context;
use uuid::Uuid;

use crate::console::page::Page;
use crate::console::respond::{redirect, Resp};
use crate::console::ConsoleError;
use crate::model::Service;
use crate::report::downtime::{self as planned, Announcement};
use crate::report::ReportError;

/// The windows, and the form to announce one, with `error` above it.
pub(crate) async fn page(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let now = crate::now_micros();
    let rows: Vec<Vec<String>> = p
        .console
        .store
        .unavailability(now - 30 * 86_400_000_000, i64::MAX)
        .await?
        .into_iter()
        .map(|u| {
            let w = u.window;
            vec![
                crate::wire::report::datetime(w.starts_at),
                crate::wire::report::datetime(w.ends_at),
                w.service.as_str().to_owned(),
                w.holdername
                    .map_or_else(|| "every scheme".into(), |h| h.to_string()),
                w.reason,
                if w.emergency {
                    "unscheduled (emergency)"
                } else {
                    "scheduled"
                }
                .into(),
            ]
        })
        .collect();
    let head = [
        "From",
        "To",
        "Service",
        "Holdername",
        "Reason",
        "Reported as",
    ];
    p.render_status(
        "downtime.html",
        "/downtime",
        context! { rows, head },
        status,
        error,
    )
}

/// Announces a window; a refusal (the notice rule, a field) shows the page again saying why.
pub(crate) async fn announce(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let refuse = |msg: String| async move {
        p.audit(422, "refused", None).await;
        page(p, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await
    };
    let form = p.form;
    let Some(service) = form.get("service").and_then(Service::parse) else {
        return refuse("service: find, view or both".into()).await;
    };
    let time = |k: &str| {
        form.get(k).and_then(|v| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
                .ok()
                .map(|t| t.and_utc().timestamp_micros())
        })
    };
    let (Some(from), Some(to)) = (time("from"), time("to")) else {
        return refuse("from, to: a date and time (UTC)".into()).await;
    };
    let holdername = match form
        .get("holdername")
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        None => None,
        Some(h) => match Uuid::try_parse(h) {
            Ok(g) => Some(g),
            Err(_) => return refuse("holdername: a GUID, or blank".into()).await,
        },
    };
    let config = &p.console.config;
    let announced = planned::announce(
        &p.console.store,
        &planned::calendar(config),
        config.view.nation_of(holdername),
        Announcement {
            service,
            holdername,
            from,
            to,
            reason: form.get("reason").unwrap_or("").trim().to_owned(),
            emergency: form.get("emergency") == Some("on"),
        },
        crate::now_micros(),
    )
    .await;
    match announced {
        Ok(_) => {
            p.audit(303, "announced", None).await;
            Ok(redirect("/downtime?done=announced"))
        }
        Err(ReportError::Downtime(e)) => refuse(e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}
