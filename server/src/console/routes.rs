//! The console's routes, written once in [`ROUTES`]: each route's method and path, the action
//! the user's roles must allow, its entry in the navigation, and its handler. Dispatch and the
//! navigation both read the table.
//!
//! A request goes: the stylesheet and sign-in (before any session); the form read (a `POST`
//! from the console's own origin, bounded); the session; [`prologue`] (a `POST`'s CSRF token,
//! then the route's roles); then the route's handler, which gets a [`Page`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::page::{audit, forbidden, Form, Page};
use super::pages::{
    audit as audit_export, calculations, certificates, downtime, finds, matches, organisation,
    peis, reports, schemes, sla, testing, users,
};
use super::respond::{plain, redirect, secure, with_type, Resp};
use super::roles::{self, Action};
use super::{session, sign_in, templates, Console, ConsoleError};
use crate::store::console::ConsoleUser;

/// What a handler's answer will be.
type Answer<'a> = Pin<Box<dyn Future<Output = Result<Resp, ConsoleError>> + Send + 'a>>;

/// A route's handler.
type Handler = for<'a> fn(&'a Page<'a>) -> Answer<'a>;

/// One route of a signed-in user.
pub(super) struct Route {
    /// `GET` (a page) or `POST` (an action).
    method: Method,
    /// The path, exactly.
    path: &'static str,
    /// What the user's roles must allow; `None`: every signed-in user.
    action: Option<Action>,
    /// Its navigation entry, for the pages listed there: (label, what it is for).
    nav: Option<(&'static str, &'static str)>,
    /// What answers it.
    handler: Handler,
}

/// Every route of a signed-in user, in the navigation's order.
pub(super) static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/",
        action: None,
        nav: None,
        handler: |p| Box::pin(super::pages::overview(p)),
    },
    Route {
        method: Method::POST,
        path: "/sign-out",
        action: None,
        nav: None,
        handler: |p| Box::pin(sign_in::sign_out(p)),
    },
    Route {
        method: Method::GET,
        path: "/possible-matches",
        action: Some(Action::ReviewMatches),
        nav: Some((
            "Possible matches",
            "review within the window, resolve yes or no",
        )),
        handler: |p| Box::pin(matches::list(p)),
    },
    Route {
        method: Method::POST,
        path: "/possible-matches/resolve",
        action: Some(Action::ReviewMatches),
        nav: None,
        handler: |p| Box::pin(matches::resolve(p)),
    },
    Route {
        method: Method::POST,
        path: "/possible-matches/reveal",
        action: Some(Action::ReviewMatches),
        nav: None,
        handler: |p| Box::pin(matches::reveal(p)),
    },
    Route {
        method: Method::GET,
        path: "/flagged",
        action: Some(Action::Deregister),
        nav: Some(("Flagged PeIs", "de-registration pending: notify PDP")),
        handler: |p| Box::pin(peis::flagged(p)),
    },
    Route {
        method: Method::GET,
        path: "/downtime",
        action: Some(Action::Service),
        nav: Some((
            "Planned downtime",
            "announce a window (5 working days' notice, CoCo2.2.1)",
        )),
        handler: |p| Box::pin(downtime::page(p, None, StatusCode::OK)),
    },
    Route {
        method: Method::POST,
        path: "/downtime",
        action: Some(Action::Service),
        nav: None,
        handler: |p| Box::pin(downtime::announce(p)),
    },
    Route {
        method: Method::POST,
        path: "/downtime/cancel",
        action: Some(Action::Service),
        nav: None,
        handler: |p| Box::pin(downtime::cancel(p)),
    },
    Route {
        method: Method::GET,
        path: "/testing",
        action: Some(Action::Testing),
        nav: Some((
            "Load and simulator runs",
            "the load tool's recorded runs against each CoCo limit",
        )),
        handler: |p| Box::pin(testing::runs(p)),
    },
    Route {
        method: Method::GET,
        path: "/deregister",
        action: Some(Action::Deregister),
        nav: Some(("De-register", "stop serving a PeI and tell the CAS why")),
        handler: |p| Box::pin(peis::deregister_form(p, None, StatusCode::OK)),
    },
    Route {
        method: Method::POST,
        path: "/deregister",
        action: Some(Action::Deregister),
        nav: None,
        handler: |p| Box::pin(peis::deregister(p)),
    },
    Route {
        method: Method::GET,
        path: "/schemes",
        action: Some(Action::Deregister),
        nav: Some((
            "Schemes",
            "each holdername's scheme, state and counts; suspend, resume, sever",
        )),
        handler: |p| Box::pin(schemes::list(p, None, StatusCode::OK)),
    },
    Route {
        method: Method::POST,
        path: "/schemes",
        action: Some(Action::Deregister),
        nav: None,
        handler: |p| Box::pin(schemes::change(p)),
    },
    Route {
        method: Method::GET,
        path: "/calculations",
        action: Some(Action::Service),
        nav: Some(("Calculations", "value calculations due and overdue")),
        handler: |p| Box::pin(calculations::page(p)),
    },
    Route {
        method: Method::GET,
        path: "/failed-finds",
        action: Some(Action::Service),
        nav: Some(("Failed finds", "failed find requests and why")),
        handler: |p| Box::pin(finds::failed(p)),
    },
    Route {
        method: Method::GET,
        path: "/sla",
        action: Some(Action::Service),
        nav: Some(("SLA", "the month's service levels against each CoCo limit")),
        handler: |p| Box::pin(sla::page(p)),
    },
    Route {
        method: Method::GET,
        path: "/certificates",
        action: Some(Action::Certificates),
        nav: Some(("Certificates", "certificate and key expiry")),
        handler: |p| Box::pin(certificates::page(p)),
    },
    Route {
        method: Method::GET,
        path: "/reports",
        action: Some(Action::Service),
        nav: Some(("PDP reports", "daily report submissions")),
        handler: |p| Box::pin(reports::page(p)),
    },
    Route {
        method: Method::GET,
        path: "/users",
        action: Some(Action::ManageUsers),
        nav: Some(("Users and roles", "add users, assign roles, suspend")),
        handler: |p| Box::pin(users::list(p, None, StatusCode::OK)),
    },
    Route {
        method: Method::POST,
        path: "/users",
        action: Some(Action::ManageUsers),
        nav: None,
        handler: |p| Box::pin(users::save(p)),
    },
    Route {
        method: Method::GET,
        path: "/users/edit",
        action: Some(Action::ManageUsers),
        nav: None,
        handler: |p| Box::pin(users::edit_page(p)),
    },
    Route {
        method: Method::POST,
        path: "/users/suspend",
        action: Some(Action::ManageUsers),
        nav: None,
        handler: |p| Box::pin(users::set_suspended(p, true)),
    },
    Route {
        method: Method::POST,
        path: "/users/unsuspend",
        action: Some(Action::ManageUsers),
        nav: None,
        handler: |p| Box::pin(users::set_suspended(p, false)),
    },
    Route {
        method: Method::POST,
        path: "/users/reset-mfa",
        action: Some(Action::ManageUsers),
        nav: None,
        handler: |p| Box::pin(users::reset_mfa(p)),
    },
    Route {
        method: Method::GET,
        path: "/account",
        action: None,
        nav: Some(("My account", "your password and recovery codes")),
        handler: |p| Box::pin(users::account(p, None, StatusCode::OK)),
    },
    Route {
        method: Method::POST,
        path: "/account/password",
        action: None,
        nav: None,
        handler: |p| Box::pin(users::change_password(p)),
    },
    Route {
        method: Method::POST,
        path: "/account/recovery-codes",
        action: None,
        nav: None,
        handler: |p| Box::pin(users::new_recovery_codes(p)),
    },
    Route {
        method: Method::GET,
        path: "/audit",
        action: Some(Action::AuditExport),
        nav: Some((
            "Audit export",
            "the audit trail as CSV, by days and request ID",
        )),
        handler: |p| Box::pin(audit_export::form(p)),
    },
    Route {
        method: Method::GET,
        path: "/audit.csv",
        action: Some(Action::AuditExport),
        nav: None,
        handler: |p| Box::pin(audit_export::export(p)),
    },
    Route {
        method: Method::GET,
        path: "/organisation",
        action: None,
        nav: Some(("Organisation", "key contacts and PDP registration data")),
        handler: |p| Box::pin(organisation::page(p)),
    },
    Route {
        method: Method::POST,
        path: "/organisation",
        action: Some(Action::ManageUsers),
        nav: None,
        handler: |p| Box::pin(organisation::set_detail(p)),
    },
    Route {
        method: Method::POST,
        path: "/organisation/confirm-contacts",
        action: Some(Action::ManageUsers),
        nav: None,
        handler: |p| Box::pin(organisation::confirm_contacts(p)),
    },
];

/// A navigation entry, as the templates show it.
#[derive(serde::Serialize)]
pub(super) struct Nav {
    href: &'static str,
    label: &'static str,
    what: &'static str,
}

/// The navigation of `user`: the pages their roles open, in the table's order.
pub(super) fn nav(user: &ConsoleUser) -> Vec<Nav> {
    ROUTES
        .iter()
        .filter(|r| r.action.is_none_or(|a| roles::may(user, a)))
        .filter_map(|r| {
            let (label, what) = r.nav?;
            Some(Nav {
                href: r.path,
                label,
                what,
            })
        })
        .collect()
}

/// Answers one request.
pub async fn route(console: &Arc<Console>, req: Request<Incoming>) -> Resp {
    let started = crate::now_micros();
    secure(match dispatch(console, req, started).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "console request failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    })
}

async fn dispatch(
    console: &Arc<Console>,
    req: Request<Incoming>,
    started: i64,
) -> Result<Resp, ConsoleError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    // Before any session: the stylesheet, and signing in.
    if parts.method == Method::GET && path == "/static/console.css" {
        let css = Bytes::from_static(templates::CSS.as_bytes());
        return Ok(with_type(StatusCode::OK, css, "text/css; charset=utf-8"));
    }
    let form = match read_form(console, &parts, body).await {
        Ok(f) => f,
        Err(refused) => return Ok(refused),
    };
    if path == sign_in::PATH {
        return if parts.method == Method::GET {
            sign_in::page(console, &parts.headers, None, StatusCode::OK)
        } else {
            sign_in::sign_in(console, &parts, &form, started).await
        };
    }
    if path == sign_in::CODE_PATH {
        return if parts.method == Method::GET {
            sign_in::code_page(console, &parts.headers, None, StatusCode::OK).await
        } else {
            sign_in::code(console, &parts, &form, started).await
        };
    }
    // Everything else needs a session.
    let Some(me) = sign_in::signed_in(console, &parts.headers).await? else {
        return Ok(if parts.method == Method::GET {
            redirect(sign_in::PATH)
        } else {
            plain(StatusCode::UNAUTHORIZED, "sign in first\n")
        });
    };
    let page = Page {
        console,
        me: &me,
        method: &parts.method,
        path: &path,
        query: &query,
        form: &form,
        notice: page_notice(&query),
        started,
    };
    let route = ROUTES
        .iter()
        .find(|r| r.method == parts.method && r.path == path);
    if let Some(refused) = prologue(&page, route).await {
        return Ok(refused);
    }
    match route {
        Some(route) => (route.handler)(&page).await,
        None => Ok(plain(StatusCode::NOT_FOUND, "not found\n")),
    }
}

/// What every signed-in request meets before its handler, in order:
///
/// 1. a `POST` (to any path) must carry the session's CSRF token; refused with `403` and
///    audited (`csrf_refused`) otherwise;
/// 2. the user's roles must allow the route's action; refused with `403` otherwise, and a
///    refused `POST` is audited (`forbidden`).
///
/// `None`: the handler may answer.
async fn prologue(page: &Page<'_>, route: Option<&Route>) -> Option<Resp> {
    let post = *page.method == Method::POST;
    if post {
        let csrf = page.form.get("csrf");
        if !csrf.is_some_and(|t| session::same(t, &page.me.csrf)) {
            let endpoint = format!("POST {}", page.path);
            let (console, user) = (page.console, &page.me.user.username);
            audit(
                console,
                user,
                &endpoint,
                403,
                "csrf_refused",
                None,
                page.started,
            )
            .await;
            return Some(plain(
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong\n",
            ));
        }
    }
    let action = route?.action?;
    if roles::may(&page.me.user, action) {
        return None;
    }
    if post {
        page.audit(403, "forbidden", None).await;
    }
    Some(forbidden())
}

/// The form of a POST (same origin only, bounded), empty for a GET; or the response refusing
/// the request.
async fn read_form(
    console: &Console,
    parts: &http::request::Parts,
    body: Incoming,
) -> Result<Form, Resp> {
    if parts.method == Method::POST {
        // Same origin only (the browser says so in Origin); SameSite=Strict cookies as well.
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            let want = host.map(|h| format!("https://{h}"));
            if want.as_deref() != origin.to_str().ok() {
                return Err(plain(StatusCode::FORBIDDEN, "cross-origin form refused\n"));
            }
        }
        let limit = console.config.console.max_form_bytes;
        match Limited::new(body, limit).collect().await {
            Ok(b) => match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&b.to_bytes()) {
                Ok(f) => Ok(Form(f)),
                Err(_) => Err(plain(StatusCode::BAD_REQUEST, "malformed form\n")),
            },
            Err(_) => Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n")),
        }
    } else if parts.method == Method::GET {
        Ok(Form(Vec::new()))
    } else {
        Err(plain(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n"))
    }
}

/// The notice for what the last action did (`?done=` after its redirect).
fn page_notice(query: &str) -> Option<String> {
    let done = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "done")?
        .1;
    let text = match done.as_str() {
        "resolved-yes" => "Resolved as theirs: the PeI is now a definite match (match-yes).",
        "resolved-no" => "Resolved as not theirs: the PeI is de-registered (match-no).",
        "flagged" => "The CAS refused the PAT: the PeI is flagged; PDP must be told (CoCo2.2.4).",
        "saved" => "Saved.",
        "password" => "Your password is changed: your other sessions have ended.",
        "recovery" => "Signed in with a recovery code: it cannot be used again.",
        "deregistered" => "De-registered: no longer served, and the CAS was told.",
        "announced" => "Announced: it will be reported to PDP with the day's service availability.",
        "changed" => "Changed: the window as it now stands will be reported to PDP.",
        "cancelled" => "Cancelled: the window will not be reported to PDP.",
        "confirmed" => "Recorded as confirmed to PDP today.",
        _ => return None,
    };
    Some(text.to_owned())
}

#[cfg(test)]
mod tests;
