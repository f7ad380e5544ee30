//! Signing in and out, and the session a request belongs to ([`session`] keeps them).
//!
//! Sign-in is two steps: the password ([`sign_in`]), then a code ([`code`]): a TOTP code, or a
//! recovery code; a user without a second factor enrols one at that step first, from a QR code
//! ([`super::mfa`]). Before any session, the password form carries a CSRF token also set in a
//! short-lived cookie (double submit), and the code form the pending sign-in's own token.
//!
//! Every attempt (a password or a code) is counted in the store before it is checked, so that
//! attempts sent at once cannot share one count: per source address, and per user under a
//! keyed digest of the name typed. A refused attempt is audited under the user's name when the
//! user exists, and under `console:(unknown)` when not: the text typed is never stored.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, StatusCode};
use minijinja::context;

use super::mfa;
use super::page::{audit, Form, Me, Page};
use super::respond::{header_value, html, plain, redirect, Resp};
use super::session::{self, LOGIN_COOKIE, PENDING_COOKIE, SESSION_COOKIE};
use super::{templates, Console, ConsoleError};
use crate::store::console::{ConsoleMfa, ConsoleUser};
use crate::store::StoreError;

/// The sign-in page's path (`GET` shows it, `POST` checks the password).
pub(super) const PATH: &str = "/sign-in";

/// The second step's path (`GET` shows the code form or the enrolment, `POST` checks a code).
pub(super) const CODE_PATH: &str = "/sign-in/code";

/// The longest username a user may have.
pub(super) const MAX_USERNAME: usize = 64;

/// The party of a refused sign-in whose username is not a user's.
const UNKNOWN: &str = "(unknown)";

/// The address a connection came from, set on each request by the listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) Option<IpAddr>);

/// The user whose session the request's cookie names, as stored now; `None` when there is no
/// session, or when its user is gone, suspended, or has another password or second factor
/// since (then the session ends).
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
    // The user as stored now: a role removed, a suspension, a new password or a reset second
    // factor (set on any instance) applies at the next request.
    let user = console
        .store
        .console_users()
        .await?
        .into_iter()
        .find(|u| u.id == s.user_id && !u.suspended);
    let enrolled_at = match &user {
        Some(u) => console.store.console_mfa(u.id).await?.enrolled_at,
        None => None,
    };
    let Some(user) = user.filter(|u| {
        enrolled_at.is_some()
            && s.signed_in_with(&session::credential(&u.password_hash, enrolled_at))
    }) else {
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

/// The source address attempts are counted by: an IPv4 address, or an IPv6 address's /64 (one
/// host commonly holds a whole /64).
fn source(parts: &http::request::Parts) -> String {
    match parts.extensions.get::<Peer>().and_then(|p| p.0) {
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".into(),
    }
}

/// The key a user's attempts are counted under: a keyed digest (HMAC-SHA256, with the console's
/// sealed secret) of the name typed, so that the store never holds what was typed.
async fn user_key(console: &Console, username: &str) -> Result<String, ConsoleError> {
    use hmac::Mac;
    let key = console
        .sign_in_key
        .get_or_try_init(|| console.store.console_secret("sign_in_key"))
        .await?;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| StoreError::Corrupt("secrets.sign_in_key"))?;
    mac.update(username.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Why an attempt may not be checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Throttled {
    /// Too many failures in a row from this source address.
    Source,
    /// Too many failures in a row for this user.
    User,
}

/// Counts an attempt for the user `key` names, before it is checked; a password attempt from
/// `source` (`Some`) is counted for the address too. A code is counted for the user alone: the
/// password before it was right.
async fn count(
    console: &Console,
    source: Option<&str>,
    key: &str,
) -> Result<Option<Throttled>, ConsoleError> {
    let store = &console.store;
    if let Some(source) = source {
        if !store
            .sign_in_source_attempt(source, session::MAX_SOURCE_FAILURES, session::LOCKOUT)
            .await?
        {
            return Ok(Some(Throttled::Source));
        }
    }
    if !store
        .sign_in_attempt(key, session::MAX_FAILURES, session::LOCKOUT)
        .await?
    {
        return Ok(Some(Throttled::User));
    }
    Ok(None)
}

/// What the page says of a throttled attempt.
fn throttled_text(t: Throttled) -> &'static str {
    match t {
        Throttled::Source => "Too many failed sign-ins from your address: try again in 15 minutes.",
        Throttled::User => "Too many failed sign-ins: try again in 15 minutes.",
    }
}

/// The password step: the form's CSRF token against its cookie, the attempt counted, the
/// password checked; then a pending sign-in, whose code is asked for at [`CODE_PATH`].
pub(super) async fn sign_in(
    console: &Arc<Console>,
    parts: &http::request::Parts,
    form: &Form,
    started: i64,
) -> Result<Resp, ConsoleError> {
    let headers = &parts.headers;
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
    let user = if username.len() > MAX_USERNAME {
        None
    } else {
        console.store.console_user(&username).await?
    };
    // A refused sign-in: audited under the user's name, or as unknown; the page again.
    let party = user
        .as_ref()
        .map_or_else(|| UNKNOWN.to_owned(), |u| u.username.clone());
    let party = party.as_str();
    let refuse = async |status: StatusCode, outcome: &str, why: &str| {
        let code = status.as_u16();
        audit(
            console,
            party,
            "POST /sign-in",
            code,
            outcome,
            None,
            started,
        )
        .await;
        page(console, headers, Some(why), status)
    };
    let refused = "Username or password not recognised.";
    // A name longer than any user's is refused as any unknown one, and never counted.
    if username.len() > MAX_USERNAME {
        return refuse(StatusCode::UNAUTHORIZED, "sign_in_refused", refused).await;
    }
    let src = source(parts);
    let key = user_key(console, &username).await?;
    if let Some(t) = count(console, Some(&src), &key).await? {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "locked_out",
            throttled_text(t),
        )
        .await;
    }
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| console.dummy_hash.clone());
    let verified = crate::store::blocking(move || Ok(session::verify_password(&password, &phc)))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|u| verified && !u.suspended) else {
        return refuse(StatusCode::UNAUTHORIZED, "sign_in_refused", refused).await;
    };
    let token = console.pending.start(user.id, &user.password_hash);
    audit(
        console,
        &user.username,
        "POST /sign-in",
        303,
        "password_accepted",
        None,
        started,
    )
    .await;
    let mut r = redirect(CODE_PATH);
    r.headers_mut().append(
        header::SET_COOKIE,
        header_value(session::set_cookie(
            PENDING_COOKIE,
            &token,
            Some(session::PENDING_FOR),
        )),
    );
    Ok(r)
}

/// A pending sign-in with its user as stored now: `None` when there is none, or its user is
/// gone, suspended or has another password since.
async fn pending(
    console: &Console,
    headers: &HeaderMap,
) -> Result<Option<(String, session::Pending, ConsoleUser, ConsoleMfa)>, ConsoleError> {
    let Some(token) = session::cookie_value(headers, PENDING_COOKIE) else {
        return Ok(None);
    };
    let Some(p) = console.pending.get(&token) else {
        return Ok(None);
    };
    let user = console
        .store
        .console_users()
        .await?
        .into_iter()
        .find(|u| u.id == p.user_id && !u.suspended && u.password_hash == p.password_hash);
    let Some(user) = user else {
        console.pending.end(&token);
        return Ok(None);
    };
    let mfa = console.store.console_mfa(user.id).await?;
    Ok(Some((token, p, user, mfa)))
}

/// The second step's page: the code form, or (a user without a second factor) the enrolment
/// with its QR code; `error` above it.
pub(super) async fn code_page(
    console: &Console,
    headers: &HeaderMap,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let Some((token, p, user, mfa)) = pending(console, headers).await? else {
        return Ok(redirect(PATH));
    };
    let body = if mfa.enrolled_at.is_some() {
        // A secret no data key opens: only a recovery code (or a reset) lets the user in.
        let unreadable = mfa.unreadable.then_some(
            "Your authenticator's key cannot be read here: use a recovery code, or ask a \
             primary business contact to reset your second factor.",
        );
        templates::render(
            console,
            "mfa_code.html",
            context! { csrf => p.csrf, error => error.or(unreadable) },
        )
    } else {
        let secret = console
            .pending
            .offer(&token, mfa::new_secret())
            .unwrap_or_default();
        let totp = mfa::totp(&secret, &user.username)?;
        let (qr, text) = mfa::enrolment(&totp)?;
        templates::render(
            console,
            "mfa_enrol.html",
            context! {
                csrf => p.csrf, error => error, qr => qr, secret => text,
                issuer => mfa::ISSUER, account => user.username,
            },
        )
    };
    Ok(html(status, body))
}

/// What a code typed proved.
enum Proved {
    /// A TOTP code of an enrolled user.
    Totp,
    /// A TOTP code confirming an enrolment: the recovery codes made for it.
    Enrolled(Vec<String>),
    /// A recovery code (this many left).
    Recovery(usize),
}

/// The second step: the pending sign-in's token, the attempt counted, the code checked (a
/// TOTP code, once per time step; or a recovery code, once); then the session. A user
/// enrolling is shown their recovery codes, once.
pub(super) async fn code(
    console: &Arc<Console>,
    parts: &http::request::Parts,
    form: &Form,
    started: i64,
) -> Result<Resp, ConsoleError> {
    let headers = &parts.headers;
    let Some((token, p, user, mfa)) = pending(console, headers).await? else {
        return Ok(plain(StatusCode::UNAUTHORIZED, "sign in first\n"));
    };
    if !form.get("csrf").is_some_and(|t| session::same(t, &p.csrf)) {
        return Ok(plain(
            StatusCode::FORBIDDEN,
            "CSRF token missing or wrong\n",
        ));
    }
    let endpoint = format!("POST {CODE_PATH}");
    let src = source(parts);
    let key = user_key(console, &user.username).await?;
    if let Some(t) = count(console, None, &key).await? {
        console.pending.end(&token);
        audit(
            console,
            &user.username,
            &endpoint,
            429,
            "locked_out",
            None,
            started,
        )
        .await;
        return page(
            console,
            headers,
            Some(throttled_text(t)),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let typed = form.get("code").unwrap_or("").to_owned();
    let proved = prove(console, &user, &mfa, p.enrolling.as_deref(), &typed).await?;
    let Some(proved) = proved else {
        audit(
            console,
            &user.username,
            &endpoint,
            401,
            "code_refused",
            None,
            started,
        )
        .await;
        return code_page(
            console,
            headers,
            Some("Code not recognised."),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    };
    // Signed in: the counts forgotten, the session started.
    console.store.sign_in_succeeded(&key).await?;
    console.store.sign_in_source_succeeded(&src).await?;
    console.pending.end(&token);
    let enrolled_at = console.store.console_mfa(user.id).await?.enrolled_at;
    let session = console.sessions.start(
        user.id,
        &session::credential(&user.password_hash, enrolled_at),
    );
    let (outcome, mut r) = match proved {
        Proved::Totp => ("signed_in".to_owned(), redirect("/")),
        Proved::Recovery(left) => (
            format!("signed_in recovery_code codes_left={left}"),
            redirect("/account?done=recovery"),
        ),
        Proved::Enrolled(codes) => (
            "signed_in mfa_enrolled".to_owned(),
            html(
                StatusCode::OK,
                templates::render(console, "mfa_recovery.html", context! { codes => codes }),
            ),
        ),
    };
    audit(
        console,
        &user.username,
        &endpoint,
        r.status().as_u16(),
        &outcome,
        None,
        started,
    )
    .await;
    let h = r.headers_mut();
    for (name, value, age) in [
        (SESSION_COOKIE, session.as_str(), None),
        (PENDING_COOKIE, "", Some(Duration::ZERO)),
        (LOGIN_COOKIE, "", Some(Duration::ZERO)),
    ] {
        h.append(
            header::SET_COOKIE,
            header_value(session::set_cookie(name, value, age)),
        );
    }
    Ok(r)
}

/// Checks a code typed at the second step; `None` when it proves nothing.
async fn prove(
    console: &Console,
    user: &ConsoleUser,
    mfa: &ConsoleMfa,
    enrolling: Option<&[u8]>,
    typed: &str,
) -> Result<Option<Proved>, ConsoleError> {
    let now_s = u64::try_from(crate::now_micros() / 1_000_000).unwrap_or(0);
    if mfa.enrolled_at.is_none() {
        // Enrolling: the code must come from the secret offered.
        let Some(secret) = enrolling else {
            return Ok(None);
        };
        let totp = mfa::totp(secret, &user.username)?;
        let Some(step) = mfa::check(&totp, typed, now_s) else {
            return Ok(None);
        };
        let codes = mfa::recovery_codes();
        let hashes = hash_codes(&codes).await?;
        let enrolled = console
            .store
            .enrol_console_mfa(user.id, &user.username, secret, step, hashes)
            .await?;
        return Ok(enrolled.then_some(Proved::Enrolled(codes)));
    }
    if mfa::is_recovery(typed) {
        let typed = mfa::normalise_recovery(typed);
        let hashes = mfa.recovery_hashes.clone();
        let found = crate::store::blocking(move || {
            Ok(hashes
                .into_iter()
                .find(|h| session::verify_password(&typed, h)))
        })
        .await?;
        let Some(hash) = found else {
            return Ok(None);
        };
        let used = console.store.use_recovery_code(user.id, hash).await?;
        let left = mfa.recovery_hashes.len().saturating_sub(1);
        return Ok(used.then_some(Proved::Recovery(left)));
    }
    let Some(secret) = &mfa.secret else {
        return Ok(None);
    };
    let totp = mfa::totp(secret, &user.username)?;
    let Some(step) = mfa::check(&totp, typed, now_s) else {
        return Ok(None);
    };
    let fresh = console.store.accept_totp_step(user.id, step).await?;
    Ok(fresh.then_some(Proved::Totp))
}

/// The argon2 hashes of recovery codes (as [`mfa::normalise_recovery`] spells them), hashed off
/// the runtime.
pub(super) async fn hash_codes(codes: &[String]) -> Result<Vec<String>, ConsoleError> {
    let codes: Vec<String> = codes.iter().map(|c| mfa::normalise_recovery(c)).collect();
    crate::store::blocking(move || {
        codes
            .iter()
            .map(|c| session::hash_password(c).map_err(|_| StoreError::Task("argon2".into())))
            .collect()
    })
    .await
    .map_err(|_| ConsoleError::Password("could not be hashed"))
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
