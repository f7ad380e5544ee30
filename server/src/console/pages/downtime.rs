//! Planned downtime ([`Action::Service`](crate::console::roles::Action)): the windows of the
//! last 30 days and ahead, and a window announced under CoCo2.2.1's notice rule, as
//! `pdp-provider report downtime` does. A window's holdername is one of this connection's
//! schemes (chosen by name) or every scheme. Before it is saved, the page shows the windows it
//! overlaps and each month's planned downtime with it against the 0.5% the month allows
//! ([`crate::report::downtime::effect`]). A window yet to start can be changed or cancelled.
//! Each save, change and cancellation is audited with the window.

use http::StatusCode;
use minijinja::{context, Value};
use uuid::Uuid;

use crate::console::page::Page;
use crate::console::respond::{redirect, Resp};
use crate::console::ConsoleError;
use crate::model::{Service, Unavailability};
use crate::report::downtime::{self as planned, Announcement, DowntimeError};
use crate::report::ReportError;

/// The form's fields, as sent (to show them again).
fn fields(p: &Page<'_>) -> Value {
    let f = |k: &str| p.form.get(k).unwrap_or("").to_owned();
    context! {
        id => f("id"), service => f("service"), from => f("from"), to => f("to"),
        reason => f("reason"), holdername => f("holdername"),
        emergency => p.form.get("emergency") == Some("on"),
    }
}

/// A stored window as the form holds it.
fn window_fields(u: &Unavailability) -> Value {
    let t = |m: i64| {
        chrono::DateTime::from_timestamp_micros(m)
            .map(|d| d.format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default()
    };
    let w = &u.window;
    context! {
        id => u.id.to_string(), service => w.service.as_str(), from => t(w.starts_at),
        to => t(w.ends_at), reason => w.reason,
        holdername => w.holdername.map(|h| h.to_string()).unwrap_or_default(),
        emergency => w.emergency,
    }
}

/// The windows, and the form to announce one (or change the one `?edit=` names), with `error`
/// above it and `preview` (what the form's window would do) when there is one.
pub(crate) async fn page(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    render(p, error, status, None).await
}

async fn render(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
    preview: Option<Value>,
) -> Result<Resp, ConsoleError> {
    let now = crate::now_micros();
    let names = super::scheme_names(p).await?;
    let windows = p
        .console
        .store
        .unavailability(now - 30 * 86_400_000_000, i64::MAX)
        .await?;
    let edit = p.query("edit").and_then(|id| id.parse::<i64>().ok());
    let form = match windows
        .iter()
        .find(|u| Some(u.id) == edit && u.window.starts_at > now)
    {
        Some(u) => window_fields(u),
        None if p.form.0.is_empty() => Value::from(()),
        None => fields(p),
    };
    let rows: Vec<Value> = windows
        .iter()
        .map(|u| {
            let w = &u.window;
            context! {
                id => u.id,
                from => crate::wire::report::datetime(w.starts_at),
                to => crate::wire::report::datetime(w.ends_at),
                service => w.service.as_str(),
                holdername => w.holdername.map_or_else(|| "every scheme".into(), |h| super::named(&names, h)),
                reason => w.reason,
                reported => if w.emergency { "unscheduled (emergency)" } else { "scheduled" },
                ahead => w.starts_at > now,
            }
        })
        .collect();
    let mut schemes: Vec<Value> = names
        .iter()
        .map(|(h, n)| context! { holdername => h.to_string(), name => super::named(&names, *h), sort => n.clone() })
        .collect();
    schemes.sort_by_key(|v| {
        v.get_attr("name")
            .map(|n| n.to_string())
            .unwrap_or_default()
    });
    p.render_status(
        "downtime.html",
        "/downtime",
        context! { rows, schemes, form, preview },
        status,
        error,
    )
}

/// The window the form describes, checked; or why it is refused.
async fn announcement(p: &Page<'_>) -> Result<Result<Announcement, String>, ConsoleError> {
    let form = p.form;
    let Some(service) = form.get("service").and_then(Service::parse) else {
        return Ok(Err("service: find, view or both".into()));
    };
    let time = |k: &str| {
        form.get(k).and_then(|v| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
                .ok()
                .map(|t| t.and_utc().timestamp_micros())
        })
    };
    let (Some(from), Some(to)) = (time("from"), time("to")) else {
        return Ok(Err("from, to: a date and time (UTC)".into()));
    };
    let holdername = match form
        .get("holdername")
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        None => None,
        Some(h) => {
            let Ok(g) = Uuid::try_parse(h) else {
                return Ok(Err("holdername: one of the schemes, or every scheme".into()));
            };
            let known = p.console.store.scheme_names().await?;
            if !known.iter().any(|(h, _)| *h == g) {
                return Ok(Err(DowntimeError::UnknownHoldername(g).to_string()));
            }
            Some(g)
        }
    };
    let a = Announcement {
        service,
        holdername,
        from,
        to,
        reason: form.get("reason").unwrap_or("").trim().to_owned(),
        emergency: form.get("emergency") == Some("on"),
    };
    let config = &p.console.config;
    let nation = config.view.nation_of(holdername);
    Ok(
        planned::check(&planned::calendar(config), nation, &a, crate::now_micros())
            .map(|()| a)
            .map_err(|e| e.to_string()),
    )
}

/// What a window would do: the windows it overlaps, each month's planned downtime with it.
async fn preview(
    p: &Page<'_>,
    a: &Announcement,
    except: Option<i64>,
) -> Result<Value, ConsoleError> {
    let effect = planned::effect(&p.console.store, a, except).await?;
    let hm = |m: i64| format!("{} h {:02} min", m / 60, m % 60);
    let months: Vec<Value> = effect
        .months
        .iter()
        .map(|m| {
            context! {
                month => m.month.format("%B %Y").to_string(),
                before => hm(m.minutes_before), with => hm(m.minutes_with),
                allowed => hm(m.minutes_allowed),
                availability => format!("{:.3}%", m.availability_at_most * 100.0),
                breaches => m.breaches(),
            }
        })
        .collect();
    let overlaps: Vec<Value> = effect
        .overlaps
        .iter()
        .map(|u| {
            context! {
                id => u.id,
                from => crate::wire::report::datetime(u.window.starts_at),
                to => crate::wire::report::datetime(u.window.ends_at),
                service => u.window.service.as_str(), reason => u.window.reason,
            }
        })
        .collect();
    Ok(context! { overlaps, months, breaches => effect.months.iter().any(|m| m.breaches()) })
}

/// Checks a window and shows what it would do; once confirmed, announces it (or changes the
/// window `id` names). A refusal shows the page again saying why.
pub(crate) async fn announce(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let refuse = |msg: String| async move {
        p.audit(422, "refused", None).await;
        render(p, Some(msg), StatusCode::UNPROCESSABLE_ENTITY, None).await
    };
    let a = match announcement(p).await? {
        Ok(a) => a,
        Err(msg) => return refuse(msg).await,
    };
    let id = p.form.get("id").and_then(|i| i.parse::<i64>().ok());
    if p.form.get("confirm") != Some("yes") {
        let shown = preview(p, &a, id).await?;
        return render(p, None, StatusCode::OK, Some(shown)).await;
    }
    let config = &p.console.config;
    let (calendar, nation, now) = (
        planned::calendar(config),
        config.view.nation_of(a.holdername),
        crate::now_micros(),
    );
    let what = |id: i64| {
        let h = a.holdername.map(|h| h.to_string()).unwrap_or_default();
        vec![
            ("window", id.to_string()),
            ("service", a.service.as_str().to_owned()),
            ("from", crate::wire::report::datetime(a.from)),
            ("to", crate::wire::report::datetime(a.to)),
            ("holdername", h),
        ]
    };
    let store = &p.console.store;
    let saved = match id {
        None => planned::announce(store, &calendar, nation, a.clone(), now)
            .await
            .map(|id| ("announced", "announced", id)),
        Some(id) => planned::change(store, &calendar, nation, id, a.clone(), now)
            .await
            .map(|()| ("changed", "downtime_changed", id)),
    };
    let (done, outcome, id) = match saved {
        Ok(saved) => saved,
        Err(ReportError::Downtime(e)) => return refuse(e.to_string()).await,
        Err(e) => return Err(e.into()),
    };
    let target = what(id);
    let target: Vec<(&str, &str)> = target.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.audit_on(303, outcome, None, &target).await;
    Ok(redirect(&format!("/downtime?done={done}")))
}

/// Cancels the window the form names (`id`), if it has not started.
pub(crate) async fn cancel(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let Some(id) = p.form.get("id").and_then(|i| i.parse::<i64>().ok()) else {
        p.audit(422, "refused", None).await;
        return render(
            p,
            Some("id: a window".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        )
        .await;
    };
    match planned::cancel(&p.console.store, id, crate::now_micros()).await {
        Ok(()) => {
            p.audit_on(
                303,
                "downtime_cancelled",
                None,
                &[("window", &id.to_string())],
            )
            .await;
            Ok(redirect("/downtime?done=cancelled"))
        }
        Err(ReportError::Downtime(e)) => {
            p.audit_on(422, "refused", None, &[("window", &id.to_string())])
                .await;
            render(
                p,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
