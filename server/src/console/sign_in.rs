//! Signing in and out, and the session a request belongs to ([`session`] keeps them).
//!
//! Sign-in, before any session, carries a CSRF token that is also set in a short-lived cookie
//! (double submit). Every attempt is counted in the store before the password is checked, so
//! attempts sent at once cannot share one count; a refused one is audited under the name given.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, StatusCode};
use minijinja::context;

use super::page::{audit, Form, Me, Page};
use super::respond::{header_value, html, plain, redirect, Resp};
use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE};
use super::{templates, Console, ConsoleError};

/// The sign-in page's path (`GET` shows it, `POST` signs in).
pub(super) const PATH: &str = "/sign-in";

/// The longest username a user may have.
pub(super) const MAX_USERNAME: usize = 64;

/// The user whose session the request's cookie names, as stored now; `None` when there is no
/// session, or when its user is gone, suspended or has another password since (then the
/// session ends).
pub(super) async fn signed_in(
    console: &Console,
    headers: &HeaderMap,
) -> Result<Option<Me>, ConsoleError> {
    let Some(token) = session::cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(s) = console.sessions.get(&token) else {
        return Ok(None);
    };
    // The user as stored now: a role removed, a suspension or a new password (set on any
    // instance) applies at the next request.
    let user = console
        .store
        .console_users()
        .await?
        .into_iter()
        .find(|u| u.id == s.user_id && !u.suspended);
    let Some(user) = user.filter(|u| s.signed_in_with(&u.password_hash)) else {
        console.sessions.end(&token);
        return Ok(None);
    };
    Ok(Some(Me {
        user,
        csrf: s.csrf,
        token,
    }))
}

/// The sign-in page, with `error` above the form.
pub(super) fn page(
    console: &Console,
    headers: &HeaderMap,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    // The same token for every sign-in page of this browser while its cookie lasts: a second
    // page load (a favicon request redirected here) must not break the first page's form.
    let t = session::cookie_value(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(session::token);
    let body = templates::render(
        console,
        "sign_in.html",
        context! { login_csrf => t, error => error },
    );
    let mut r = html(status, body);
    r.headers_mut().insert(
        header::SET_COOKIE,
        header_value(session::set_cookie(
            LOGIN_COOKIE,
            &t,
            Some(Duration::from_secs(600)),
        )),
    );
    Ok(r)
}

/// Signs in: the form's CSRF token against its cookie, the lock-out count, the password; then
/// a new session, audited.
pub(super) async fn sign_in(
    console: &Arc<Console>,
    headers: &HeaderMap,
    form: &Form,
    started: i64,
) -> Result<Resp, ConsoleError> {
    let csrf_ok = match (
        session::cookie_value(headers, LOGIN_COOKIE),
        form.get("csrf"),
    ) {
        (Some(c), Some(f)) => session::same(&c, f),
        _ => false,
    };
    if !csrf_ok {
        return Ok(plain(
            StatusCode::FORBIDDEN,
            "CSRF token missing or wrong\n",
        ));
    }
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("").to_owned();
    // A refused sign-in: audited under the name given, and the page again saying why.
    let refuse = async |status: StatusCode, outcome: &str, why: &str| {
        let code = status.as_u16();
        audit(
            console,
            &username,
            "POST /sign-in",
            code,
            outcome,
            None,
            started,
        )
        .await;
        page(console, headers, Some(why), status)
    };
    // A name longer than any user's is refused as any unknown one, and never counted.
    if username.len() > MAX_USERNAME {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "sign_in_refused",
            "Username or password not recognised.",
        )
        .await;
    }
    // Counted before the password is checked: attempts sent at once cannot share one count.
    if !console
        .store
        .sign_in_attempt(&username, session::MAX_FAILURES, session::LOCKOUT)
        .await?
    {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "locked_out",
            "Too many failed sign-ins: try again in 15 minutes.",
        )
        .await;
    }
    let user = console.store.console_user(&username).await?;
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| console.dummy_hash.clone());
    let verified = crate::store::blocking(move || Ok(session::verify_password(&password, &phc)))
        .await
        .unwrap_or(false);
    let user = user.filter(|u| verified && !u.suspended);
    if user.is_some() {
        console.store.sign_in_succeeded(&username).await?;
    }
    let Some(user) = user else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "sign_in_refused",
            "Username or password not recognised.",
        )
        .await;
    };
    let token = console.sessions.start(user.id, &user.password_hash);
    audit(
        console,
        &user.username,
        "POST /sign-in",
        303,
        "signed_in",
        None,
        started,
    )
    .await;
    let mut r = redirect("/");
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        header_value(session::set_cookie(SESSION_COOKIE, &token, None)),
    );
    h.append(
        header::SET_COOKIE,
        header_value(session::set_cookie(LOGIN_COOKIE, "", Some(Duration::ZERO))),
    );
    Ok(r)
}

/// Ends the session, audited, and clears its cookie.
pub(super) async fn sign_out(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    p.console.sessions.end(&p.me.token);
    audit(
        p.console,
        &p.me.user.username,
        "POST /sign-out",
        303,
        "signed_out",
        None,
        p.started,
    )
    .await;
    let mut r = redirect(PATH);
    r.headers_mut().insert(
        header::SET_COOKIE,
        header_value(session::set_cookie(
            SESSION_COOKIE,
            "",
            Some(Duration::ZERO),
        )),
    );
    Ok(r)
}
