//! The console's routes: sign-in, the pages, and the actions behind their forms. Every
//! response carries the security headers ([`secure`]); every action is audited before it is
//! answered ([`audit`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use minijinja::{context, Value};
use uuid::Uuid;

use super::roles::{self, Action};
use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE};
use super::{Console, ConsoleError};
use crate::audit::{AuditRecord, Direction};
use crate::store::console::{ConsoleUser, Role};
use crate::store::MatchStatus;

type Resp = Response<Full<Bytes>>;

/// The templates, compiled into the binary.
pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, text) in [
        ("base.html", include_str!("templates/base.html")),
        ("sign_in.html", include_str!("templates/sign_in.html")),
        ("overview.html", include_str!("templates/overview.html")),
        (
            "possible_matches.html",
            include_str!("templates/possible_matches.html"),
        ),
        ("reveal.html", include_str!("templates/reveal.html")),
        ("deregister.html", include_str!("templates/deregister.html")),
        ("downtime.html", include_str!("templates/downtime.html")),
        ("table.html", include_str!("templates/table.html")),
        ("users.html", include_str!("templates/users.html")),
        (
            "organisation.html",
            include_str!("templates/organisation.html"),
        ),
    ] {
        env.add_template(name, text)
            .expect("console template parses");
    }
    env
}

const CSS: &str = include_str!("templates/console.css");

/// Adds the security headers every answer carries.
fn secure(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    for (k, v) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn plain(status: StatusCode, text: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn html(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn redirect(to: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
    );
    r
}

/// A signed-in request: the user as stored now, and the session's CSRF token.
struct Me {
    user: ConsoleUser,
    csrf: String,
    token: String,
}

/// A parsed form: every field, repeated ones kept.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn all<'a>(&'a self, k: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Routes one request.
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
    if parts.method == Method::GET && path == "/static/console.css" {
        let mut r = Response::new(Full::new(Bytes::from_static(CSS.as_bytes())));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        );
        return Ok(r);
    }
    let form = match read_form(console, &parts, body).await {
        Ok(f) => f,
        Err(refused) => return Ok(refused),
    };
    if path == "/sign-in" {
        return if parts.method == Method::GET {
            sign_in_page(console, &parts.headers, None, StatusCode::OK)
        } else {
            sign_in(console, &parts.headers, &form, started).await
        };
    }
    // Everything else needs a session.
    let Some(me) = signed_in(console, &parts.headers).await? else {
        return Ok(if parts.method == Method::GET {
            redirect("/sign-in")
        } else {
            plain(StatusCode::UNAUTHORIZED, "sign in first\n")
        });
    };
    if parts.method == Method::POST {
        let ok = form.get("csrf").is_some_and(|t| session::same(t, &me.csrf));
        if !ok {
            audit(
                console,
                &me.user.username,
                &format!("POST {path}"),
                403,
                "csrf_refused",
                None,
                started,
            )
            .await;
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong\n",
            ));
        }
    }
    let notice = serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
        .ok()
        .and_then(|q| q.into_iter().find(|(k, _)| k == "done").map(|(_, v)| v))
        .and_then(|d| notice_for(&d));
    let page = Page {
        console,
        me: &me,
        notice,
        started,
    };
    match (parts.method.clone(), path.as_str()) {
        (Method::GET, "/") => page.overview(),
        (Method::POST, "/sign-out") => Ok(sign_out(console, &me, started).await),
        (Method::GET, "/possible-matches") => page.possible_matches().await,
        (Method::POST, "/possible-matches/resolve") => page.resolve(&form).await,
        (Method::POST, "/possible-matches/reveal") => page.reveal(&form).await,
        (Method::GET, "/flagged") => page.flagged().await,
        (Method::GET, "/downtime") => page.downtime(None, StatusCode::OK).await,
        (Method::POST, "/downtime") => page.announce(&form).await,
        (Method::GET, "/testing") => page.testing().await,
        (Method::GET, "/deregister") => page.deregister_form(None, StatusCode::OK),
        (Method::POST, "/deregister") => page.deregister(&form).await,
        (Method::GET, "/calculations") => page.calculations().await,
        (Method::GET, "/failed-finds") => page.failed_finds().await,
        (Method::GET, "/sla") => page.sla(&query).await,
        (Method::GET, "/certificates") => page.certificates(),
        (Method::GET, "/reports") => page.reports().await,
        (Method::GET, "/organisation") => page.organisation().await,
        (Method::POST, "/organisation") => page.set_org(&form).await,
        (Method::POST, "/organisation/confirm-contacts") => page.confirm_contacts().await,
        (Method::GET, "/users") => page.users(None, StatusCode::OK).await,
        (Method::POST, "/users") => page.save_user(&form).await,
        (Method::GET, "/audit.csv") => page.audit_export(&query).await,
        _ => Ok(plain(StatusCode::NOT_FOUND, "not found\n")),
    }
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

/// Ends the session, audited, and clears its cookie.
async fn sign_out(console: &Arc<Console>, me: &Me, started: i64) -> Resp {
    console.sessions.end(&me.token);
    audit(
        console,
        &me.user.username,
        "POST /sign-out",
        303,
        "signed_out",
        None,
        started,
    )
    .await;
    let mut r = redirect("/sign-in");
    r.headers_mut().insert(
        header::SET_COOKIE,
        hv(session::set_cookie(
            SESSION_COOKIE,
            "",
            Some(std::time::Duration::ZERO),
        )),
    );
    r
}

fn hv(s: String) -> HeaderValue {
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""))
}

fn notice_for(done: &str) -> Option<String> {
    Some(
        match done {
            "resolved-yes" => "Resolved as theirs: the PeI is now a definite match (match-yes).",
            "resolved-no" => "Resolved as not theirs: the PeI is de-registered (match-no).",
            "flagged" => {
                "The CAS refused the PAT: the PeI is flagged; PDP must be told (CoCo2.2.4)."
            }
            "saved" => "Saved.",
            "deregistered" => "De-registered: no longer served, and the CAS was told.",
            "announced" => {
                "Announced: it will be reported to PDP with the day's service availability."
            }
            "confirmed" => "Recorded as confirmed to PDP today.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Audits a console action (party `console:<username>`) and waits for its commit.
async fn audit(
    console: &Console,
    username: &str,
    endpoint: &str,
    status: u16,
    outcome: &str,
    request_id: Option<String>,
    started: i64,
) {
    console.store.audit(AuditRecord {
        transaction_id: Uuid::new_v4().to_string(),
        request_id,
        direction: Direction::Operator,
        party: format!("console:{username}"),
        endpoint: endpoint.to_owned(),
        received_at: started,
        responded_at: crate::now_micros(),
        status,
        outcome: outcome.to_owned(),
    });
    console.store.flush().await;
}

/// The longest username a user may have.
const MAX_USERNAME: usize = 64;

async fn signed_in(
    console: &Console,
    headers: &http::HeaderMap,
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

fn sign_in_page(
    console: &Console,
    headers: &http::HeaderMap,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    // The same token for every sign-in page of this browser while its cookie lasts: a second
    // page load (a favicon request redirected here) must not break the first page's form.
    let t = session::cookie_value(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(session::token);
    let body = render(
        console,
        "sign_in.html",
        context! { login_csrf => t, error => error },
    );
    let mut r = html(status, body);
    r.headers_mut().insert(
        header::SET_COOKIE,
        hv(session::set_cookie(
            LOGIN_COOKIE,
            &t,
            Some(std::time::Duration::from_secs(600)),
        )),
    );
    Ok(r)
}

async fn sign_in(
    console: &Arc<Console>,
    headers: &http::HeaderMap,
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
        sign_in_page(console, headers, Some(why), status)
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
        hv(session::set_cookie(SESSION_COOKIE, &token, None)),
    );
    h.append(
        header::SET_COOKIE,
        hv(session::set_cookie(
            LOGIN_COOKIE,
            "",
            Some(std::time::Duration::ZERO),
        )),
    );
    Ok(r)
}

fn render(console: &Console, name: &str, ctx: Value) -> String {
    match console
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(template = name, error = %e, "console template failed");
            "<!doctype html><title>error</title><p>The page could not be shown.</p>".into()
        }
    }
}

/// A navigation entry: the pages a user's roles open.
#[derive(serde::Serialize)]
struct Nav {
    href: &'static str,
    label: &'static str,
    what: &'static str,
}

fn nav(user: &ConsoleUser) -> Vec<Nav> {
    let all = [
        (
            Action::ReviewMatches,
            "/possible-matches",
            "Possible matches",
            "review within the window, resolve yes or no",
        ),
        (
            Action::Deregister,
            "/flagged",
            "Flagged PeIs",
            "de-registration pending: notify PDP",
        ),
        (
            Action::Service,
            "/downtime",
            "Planned downtime",
            "announce a window (5 working days' notice, CoCo2.2.1)",
        ),
        (
            Action::Testing,
            "/testing",
            "Load and simulator runs",
            "the load tool's recorded runs against each CoCo limit",
        ),
        (
            Action::Deregister,
            "/deregister",
            "De-register",
            "stop serving a PeI and tell the CAS why",
        ),
        (
            Action::Service,
            "/calculations",
            "Calculations",
            "value calculations due and overdue",
        ),
        (
            Action::Service,
            "/failed-finds",
            "Failed finds",
            "failed find requests and why",
        ),
        (
            Action::Service,
            "/sla",
            "SLA",
            "the month's service levels against each CoCo limit",
        ),
        (
            Action::Certificates,
            "/certificates",
            "Certificates",
            "certificate and key expiry",
        ),
        (
            Action::Service,
            "/reports",
            "PDP reports",
            "daily report submissions",
        ),
        (
            Action::ManageUsers,
            "/users",
            "Users and roles",
            "add users, assign roles, suspend",
        ),
        (
            Action::AuditExport,
            "/audit.csv",
            "Audit export",
            "the audit trail, as CSV",
        ),
    ];
    let mut out: Vec<Nav> = all
        .into_iter()
        .filter(|(a, ..)| roles::may(user, *a))
        .map(|(_, href, label, what)| Nav { href, label, what })
        .collect();
    out.push(Nav {
        href: "/organisation",
        label: "Organisation",
        what: "key contacts and PDP registration data",
    });
    out
}

fn day(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn when(micros: Option<i64>) -> String {
    micros.map(day).unwrap_or_else(|| "not confirmed".into())
}

/// Shows the first `keep` and last `tail` characters of an identifier, the rest as `•`.
pub fn mask(s: &str, keep: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= keep + tail {
        return "•".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep || i >= chars.len() - tail {
                *c
            } else {
                '•'
            }
        })
        .collect()
}

struct Page<'a> {
    console: &'a Arc<Console>,
    me: &'a Me,
    notice: Option<String>,
    started: i64,
}

impl Page<'_> {
    fn render(&self, name: &str, here: &str, ctx: Value) -> Result<Resp, ConsoleError> {
        self.render_status(name, here, ctx, StatusCode::OK, None)
    }

    fn render_status(
        &self,
        name: &str,
        here: &str,
        ctx: Value,
        status: StatusCode,
        error: Option<String>,
    ) -> Result<Resp, ConsoleError> {
        let u = &self.me.user;
        let me = context! {
            username => u.username,
            display_name => if u.display_name.is_empty() { u.username.clone() } else { u.display_name.clone() },
            roles => u.roles.iter().map(|r| r.title()).collect::<Vec<_>>(),
            holdernames => u.holdernames.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        };
        let base = context! {
            me => me,
            nav => nav(u),
            here => here,
            csrf => self.me.csrf,
            notice => self.notice,
            error => error,
        };
        let body = render(self.console, name, context! { ..ctx, ..base });
        Ok(html(status, body))
    }

    /// `None` when the user's roles allow `action`; else the `403`, audited against `endpoint`
    /// (for the actions; pages only answer [`Page::forbidden`]).
    async fn refused(&self, endpoint: &str, action: Action) -> Option<Result<Resp, ConsoleError>> {
        if roles::may(&self.me.user, action) {
            return None;
        }
        self.audit(endpoint, 403, "forbidden", None).await;
        Some(self.forbidden())
    }

    fn forbidden(&self) -> Result<Resp, ConsoleError> {
        Ok(plain(
            StatusCode::FORBIDDEN,
            "your roles do not allow this\n",
        ))
    }

    async fn audit(&self, endpoint: &str, status: u16, outcome: &str, request_id: Option<String>) {
        audit(
            self.console,
            &self.me.user.username,
            endpoint,
            status,
            outcome,
            request_id,
            self.started,
        )
        .await
    }

    fn overview(&self) -> Result<Resp, ConsoleError> {
        self.render("overview.html", "/", context! {})
    }

    #[allow(clippy::too_many_arguments)] // one call per page: the arguments are its text
    fn table(
        &self,
        here: &str,
        title: &str,
        intro: &str,
        head: &[&str],
        rows: Vec<Vec<String>>,
        empty: &str,
        chart: Option<(String, String)>,
    ) -> Result<Resp, ConsoleError> {
        let (chart, chart_caption) = chart.unzip();
        self.render(
            "table.html",
            here,
            context! {
                title, intro, head, rows, empty, chart, chart_caption,
                table_id => here.trim_start_matches('/'),
            },
        )
    }

    // --- possible matches (Action::ReviewMatches) ---

    async fn possible_matches(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::ReviewMatches) {
            return self.forbidden();
        }
        let c = self.console;
        let review_days = i64::from(c.config.matching.possible_review_days);
        let now = crate::now_micros();
        let mut peis: Vec<_> = c
            .store
            .possible_unreviewed_before(i64::MAX)
            .await?
            .into_iter()
            .filter(|p| roles::sees_holdername(&self.me.user, p.matched.holdername))
            .collect();
        peis.sort_by_key(|p| p.registered_at.unwrap_or(0));
        let records = c
            .store
            .member_records(peis.iter().map(|p| p.matched.member_id.clone()).collect())
            .await?;
        let mut rows = Vec::new();
        for p in &peis {
            let record = records
                .iter()
                .find(|(id, _)| *id == p.matched.member_id)
                .and_then(|(_, r)| r.as_ref())
                .and_then(|r| r.as_ref().ok())
                .and_then(|b| {
                    serde_json::from_slice::<crate::members::record::MatchRecord>(b).ok()
                });
            let registered = p.registered_at.unwrap_or(now);
            let days_left = review_days - (now - registered) / 86_400_000_000;
            let rule = rule_for(&c.config, p.matched.holdername, &p.matched.reason);
            let (agreed, not_contradicted) = rule
                .map(|r| {
                    (
                        r.agree.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>(),
                        r.not_contradicted
                            .iter()
                            .map(|f| format!("{f:?}"))
                            .collect::<Vec<_>>(),
                    )
                })
                .unwrap_or_default();
            rows.push(context! {
                asset_guid => p.matched.asset_guid.to_string(),
                registered => day(registered),
                days_left,
                holdername => p.matched.holdername.to_string(),
                scheme_name => p.matched.scheme_name,
                reason => p.matched.reason,
                agreed, not_contradicted,
                member => mask(&p.matched.member_id, 1, 2),
                nino => record.as_ref().and_then(|r| r.nino.as_deref()).map(|n| mask(n, 2, 1)).unwrap_or_else(|| "none".into()),
                name => record.as_ref().and_then(|r| r.names.first()).map(|n| format!("{}. {}", n.given_name.chars().next().unwrap_or('?'), mask(&n.family_name, 1, 0))).unwrap_or_default(),
                born => record.as_ref().map(|r| r.date_of_birth.chars().take(4).collect::<String>()).unwrap_or_default(),
                postcode => record.as_ref().and_then(|r| r.postcodes.first()).map(|pc| pc.split_whitespace().next().unwrap_or("").to_owned() + " •••").unwrap_or_default(),
            });
        }
        self.render(
            "possible_matches.html",
            "/possible-matches",
            context! { rows, review_days },
        )
    }

    /// The registered possible match a form names, if this user may act on it; else the `404`,
    /// audited against `endpoint`.
    async fn pei_of_form(
        &self,
        endpoint: &str,
        form: &Form,
    ) -> Result<Result<crate::store::StoredPei, Resp>, ConsoleError> {
        let pei = match form.get("asset_guid").and_then(|g| Uuid::try_parse(g).ok()) {
            Some(guid) => self.console.store.pei_by_asset_guid(guid).await?,
            None => None,
        };
        let pei = pei
            .filter(|p| p.matched.match_status == MatchStatus::Possible)
            .filter(|p| roles::sees_holdername(&self.me.user, p.matched.holdername));
        if pei.is_none() {
            self.audit(endpoint, 404, "not_found", None).await;
        }
        Ok(pei.ok_or_else(|| plain(StatusCode::NOT_FOUND, "no such possible match for you\n")))
    }

    async fn resolve(&self, form: &Form) -> Result<Resp, ConsoleError> {
        const EP: &str = "POST /console/possible-matches/resolve";
        if let Some(refused) = self.refused(EP, Action::ReviewMatches).await {
            return refused;
        }
        let resolution = match form.get("as") {
            Some("yes") => crate::peis::Resolution::Yes,
            Some("no") => crate::peis::Resolution::No,
            _ => return Ok(plain(StatusCode::BAD_REQUEST, "as: yes or no\n")),
        };
        let pei = match self.pei_of_form(EP, form).await? {
            Ok(pei) => pei,
            Err(not_found) => return Ok(not_found),
        };
        let guid = pei.matched.asset_guid.to_string();
        // The same code `pdp-provider peis resolve` runs.
        let out = crate::peis::resolve_possible(
            &self.console.store,
            &self.console.cas,
            &guid,
            resolution,
        )
        .await;
        let rid = Some(pei.request_id.clone());
        match out {
            Ok(crate::peis::Deregistered::FlaggedPatExpired) => {
                self.audit(EP, 303, "flagged", rid).await;
                Ok(redirect("/possible-matches?done=flagged"))
            }
            Ok(_) => {
                let outcome = match resolution {
                    crate::peis::Resolution::Yes => "resolved-yes",
                    crate::peis::Resolution::No => "resolved-no",
                };
                self.audit(EP, 303, outcome, rid).await;
                Ok(redirect(&format!("/possible-matches?done={outcome}")))
            }
            Err(e) => {
                self.audit(EP, 502, "failed", rid).await;
                tracing::warn!(error = %e, "console: possible match not resolved");
                Ok(plain(
                    StatusCode::BAD_GATEWAY,
                    "not resolved: the CAS could not be reached or refused; try again\n",
                ))
            }
        }
    }

    async fn reveal(&self, form: &Form) -> Result<Resp, ConsoleError> {
        const EP: &str = "POST /console/possible-matches/reveal";
        if let Some(refused) = self.refused(EP, Action::ReviewMatches).await {
            return refused;
        }
        let pei = match self.pei_of_form(EP, form).await? {
            Ok(pei) => pei,
            Err(not_found) => return Ok(not_found),
        };
        let record = self
            .console
            .store
            .member_record(&pei.matched.member_id)
            .await?;
        let member = record
            .and_then(|b| serde_json::from_slice::<crate::members::record::MatchRecord>(&b).ok())
            .map(|m| {
                context! {
                    member_id => m.member_id,
                    names => m.names.iter().map(|n| format!("{} {}", n.given_name, n.family_name)).collect::<Vec<_>>(),
                    previous_family_names => m.previous_family_names,
                    date_of_birth => m.date_of_birth,
                    nino => m.nino,
                    postcodes => m.postcodes,
                    previous_postcodes => m.previous_postcodes,
                }
            });
        // Logged before anything leaves the store.
        self.audit(EP, 200, "reveal", Some(pei.request_id.clone()))
            .await;
        self.render(
            "reveal.html",
            "/possible-matches",
            context! { pei => pei.matched.pei, member },
        )
    }

    // --- read-only pages ---

    async fn flagged(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Deregister) {
            return self.forbidden();
        }
        let rows = self
            .console
            .store
            .flagged()
            .await?
            .into_iter()
            .filter(|p| roles::sees_holdername(&self.me.user, p.matched.holdername))
            .map(|p| {
                vec![
                    p.matched.pei,
                    p.matched.match_status.to_string(),
                    p.deletion_reason.unwrap_or_default(),
                    "de-registration pending: notify PDP".into(),
                ]
            })
            .collect();
        self.table(
            "/flagged",
            "Flagged PeIs",
            "The CAS refused the PAT that registered these: never served again; PDP must be told (CoCo2.2.4).",
            &["PeI", "Match status", "Reason", "State"],
            rows,
            "No PeI is flagged.",
            None,
        )
    }

    async fn downtime(
        &self,
        error: Option<String>,
        status: StatusCode,
    ) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Service) {
            return self.forbidden();
        }
        let now = crate::now_micros();
        let rows: Vec<Vec<String>> = self
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
        self.render_status(
            "downtime.html",
            "/downtime",
            context! { rows, head },
            status,
            error,
        )
    }

    /// Announces a window under CoCo2.2.1's notice rule, as `pdp-provider report downtime`.
    async fn announce(&self, form: &Form) -> Result<Resp, ConsoleError> {
        const EP: &str = "POST /console/downtime";
        if let Some(refused) = self.refused(EP, Action::Service).await {
            return refused;
        }
        let refuse = |msg: String| async move {
            self.audit(EP, 422, "refused", None).await;
            self.downtime(Some(msg), StatusCode::UNPROCESSABLE_ENTITY)
                .await
        };
        let Some(service) = form.get("service").and_then(crate::model::Service::parse) else {
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
        let config = &self.console.config;
        let nation = config.view.nation_of(holdername);
        let announced = crate::report::downtime::announce(
            &self.console.store,
            &crate::report::downtime::calendar(config),
            nation,
            crate::report::downtime::Announcement {
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
                self.audit(EP, 303, "announced", None).await;
                Ok(redirect("/downtime?done=announced"))
            }
            Err(crate::report::ReportError::Downtime(e)) => refuse(e.to_string()).await,
            Err(e) => Err(e.into()),
        }
    }

    fn deregister_form(
        &self,
        error: Option<String>,
        status: StatusCode,
    ) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Deregister) {
            return self.forbidden();
        }
        let reasons = [
            crate::peis::DeletionReason::MatchNo,
            crate::peis::DeletionReason::MatchWithdrawn,
            crate::peis::DeletionReason::AssetRemoved,
            crate::peis::DeletionReason::MatchTimeout,
        ]
        .map(crate::peis::DeletionReason::as_str);
        self.render_status(
            "deregister.html",
            "/deregister",
            context! { reasons },
            status,
            error,
        )
    }

    /// De-registers a PeI the user may act on (a scheme admin: their holdernames only), as
    /// `pdp-provider peis deregister` does.
    async fn deregister(&self, form: &Form) -> Result<Resp, ConsoleError> {
        const EP: &str = "POST /console/deregister";
        if let Some(refused) = self.refused(EP, Action::Deregister).await {
            return refused;
        }
        let Some(reason) = form
            .get("reason")
            .and_then(crate::peis::DeletionReason::parse)
        else {
            return self.deregister_form(
                Some("reason: match-no, match-withdrawn, asset-removed or match-timeout".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        };
        let pei = match form.get("asset_guid").map(|g| Uuid::try_parse(g.trim())) {
            Some(Ok(g)) => self.console.store.pei_by_asset_guid(g).await?,
            _ => None,
        };
        let Some(pei) = pei.filter(|p| roles::sees_holdername(&self.me.user, p.matched.holdername))
        else {
            self.audit(EP, 404, "not_found", None).await;
            return self.deregister_form(
                Some("no registered PeI of yours has that asset GUID".into()),
                StatusCode::NOT_FOUND,
            );
        };
        let rid = Some(pei.request_id.clone());
        let guid = pei.matched.asset_guid.to_string();
        match crate::peis::deregister(&self.console.store, &self.console.cas, &guid, reason).await {
            Ok(crate::peis::Deregistered::FlaggedPatExpired) => {
                self.audit(EP, 303, "flagged", rid).await;
                Ok(redirect("/flagged?done=flagged"))
            }
            Ok(_) => {
                self.audit(EP, 303, "deregistered", rid).await;
                Ok(redirect("/deregister?done=deregistered"))
            }
            Err(
                e @ (crate::peis::DeregError::InvalidReason { .. }
                | crate::peis::DeregError::NotRegistered(_)),
            ) => {
                self.audit(EP, 422, "refused", rid).await;
                self.deregister_form(Some(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY)
            }
            Err(e) => {
                self.audit(EP, 502, "failed", rid).await;
                tracing::warn!(error = %e, "console: de-registration not sent");
                self.deregister_form(
                    Some(
                        "not de-registered at the CAS yet: the PeI is no longer served and the \
                         server sends it within a minute"
                            .into(),
                    ),
                    StatusCode::BAD_GATEWAY,
                )
            }
        }
    }

    async fn calculations(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Service) {
            return self.forbidden();
        }
        let today = chrono::Utc::now().date_naive();
        let rows = self
            .console
            .store
            .calculations()
            .await?
            .into_iter()
            .filter(|c| c.completed_at.is_none())
            .map(|c| {
                let overdue = c.due_on < today;
                vec![
                    c.pei,
                    format!("{:?}", c.kind),
                    c.due_on.to_string(),
                    if overdue {
                        "OVERDUE".into()
                    } else {
                        "due".into()
                    },
                ]
            })
            .collect();
        self.table(
            "/calculations",
            "Value calculations due and overdue",
            "Values shown pending must be calculated within the working-day rule.",
            &["PeI", "Kind", "Due", "State"],
            rows,
            "No calculation is open.",
            None,
        )
    }

    async fn failed_finds(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Service) {
            return self.forbidden();
        }
        let rows = self
            .console
            .store
            .failed()
            .await?
            .into_iter()
            .map(|f| vec![f.request_id, crate::datetimestamp(f.acked_at), f.reason])
            .collect();
        self.table(
            "/failed-finds",
            "Failed find requests",
            "Find requests that failed after their ACK, newest first (CoCo2.2.6).",
            &["Find request", "ACKed", "Why"],
            rows,
            "No find request has failed.",
            None,
        )
    }

    async fn sla(&self, query: &str) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Service) {
            return self.forbidden();
        }
        let month = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()
            .and_then(|q| q.into_iter().find(|(k, _)| k == "month").map(|(_, v)| v))
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
        let report = match crate::sla::report(
            &self.console.store,
            &month,
            crate::now_micros(),
            self.console.config.sla.go_live,
        )
        .await
        {
            Ok(r) => r,
            Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "month: YYYY-MM\n")),
        };
        let mut rows = Vec::new();
        let mut bars = Vec::new();
        for (name, s) in [
            ("ACK (CoCo2.1.1)", &report.ack),
            ("Completion (CoCo2.1.2)", &report.completion),
            ("View (CoCo2.1.3)", &report.view),
        ] {
            rows.push(series_row(name.to_owned(), s));
            bars.push((name, s.within_limit, s.required));
        }
        let a = &report.availability;
        rows.push(vec![
            "Availability (CoCo2.1.5)".into(),
            format!("{} of {} min", a.minutes_up, a.minutes_elapsed),
            String::new(),
            String::new(),
            format!("{:.3}%", a.ratio * 100.0),
            "99.5%".into(),
            if a.met { "met".into() } else { "MISSED".into() },
        ]);
        bars.push(("Availability (CoCo2.1.5)", a.ratio, 0.995));
        rows.extend(self.sla_by_holdername(&month).await?);
        self.table(
            "/sla",
            &format!("Service levels, {month}"),
            "The whole connection first, then each holdername: its matching finds' completion (ACK to its PeIs registered) and its views served. Availability is the endpoint's, shared by every holdername. Each bar is the share within the CoCo limit; the line is what is required.",
            &["Standard", "Count", "p99.9", "Target / limit", "Within limit", "Required", ""],
            rows,
            "",
            Some((sla_chart(&bars), format!("Share within each limit, {month}"))),
        )
    }

    fn certificates(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Certificates) {
            return self.forbidden();
        }
        let rows = crate::upkeep::certificate_files(&self.console.config)
            .into_iter()
            .map(|(name, path)| {
                let expiry = crate::upkeep::chain_expiry(&path).ok().flatten();
                vec![
                    name.to_owned(),
                    path.display().to_string(),
                    match expiry {
                        Some(s) => format!("{} days", s / 86_400),
                        None => "unreadable".into(),
                    },
                ]
            })
            .collect();
        self.table(
            "/certificates",
            "Certificates and keys",
            "Days until each certificate expires; renew and reload without a restart (SIGHUP).",
            &["Certificate", "File", "Expires in"],
            rows,
            "No certificate configured.",
            None,
        )
    }

    /// The month's completion and view rows for each holdername (a scheme admin: theirs).
    async fn sla_by_holdername(&self, month: &str) -> Result<Vec<Vec<String>>, ConsoleError> {
        let Ok((from, to)) = crate::sla::month_bounds(month) else {
            return Ok(Vec::new());
        };
        let store = &self.console.store;
        let mut by: std::collections::BTreeMap<Uuid, (Vec<i64>, Vec<i64>)> = store
            .completions_by_holdername(from, to)
            .await?
            .into_iter()
            .map(|(h, c)| (h, (c, Vec::new())))
            .collect();
        for v in store.report_facts(from, to).await?.views {
            by.entry(v.holdername)
                .or_default()
                .1
                .push(v.responded_at - v.received_at);
        }
        let mut rows = Vec::new();
        for (h, (completion, view)) in by {
            if !roles::sees_holdername(&self.me.user, h) {
                continue;
            }
            for (name, samples, level) in [
                (
                    "Completion (CoCo2.1.2)",
                    completion,
                    crate::coco::COMPLETION,
                ),
                ("View (CoCo2.1.3)", view, crate::coco::VIEW),
            ] {
                if samples.is_empty() {
                    continue;
                }
                let s = crate::sla::series(samples, level);
                rows.push(series_row(format!("{name}, holdername {h}"), &s));
            }
        }
        Ok(rows)
    }

    /// The load tool's recorded runs (`result.json` below `console.load_results_dir`), newest
    /// first: what ran, against what, how fast, and its verdict against the CoCo limits. Runs
    /// are started with `pdp-provider load` against a test environment and the simulators,
    /// never from here against the live endpoint.
    async fn testing(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Testing) {
            return self.forbidden();
        }
        let dir = self.console.config.console.load_results_dir.clone();
        let mut runs = crate::store::blocking(move || Ok(load_runs(&dir))).await?;
        runs.sort_by(|a, b| b[0].cmp(&a[0]));
        self.table(
            "/testing",
            "Load and simulator runs",
            "Runs recorded by `pdp-provider load` (against a test environment with `pdp-provider sim cas`; see load-tests/README.md), newest first. Each verdict checks ACK, completion and view latencies against the CoCo limits and the error rate.",
            &["Started", "Scenario", "Target", "Finds/s achieved", "Verdict", "Failed checks", "Result"],
            runs,
            "No run recorded in console.load_results_dir.",
            None,
        )
    }

    async fn reports(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::Service) {
            return self.forbidden();
        }
        let rows = self
            .console
            .store
            .submissions(None)
            .await?
            .into_iter()
            .map(|s| {
                vec![
                    s.key.day.to_string(),
                    s.key.holdername.to_string(),
                    format!("{:?}", s.key.kind),
                    format!("{:?}", s.state),
                ]
            })
            .collect();
        self.table(
            "/reports",
            "PDP report submissions",
            "Every daily submission and its state.",
            &["Day", "Holdername", "Report", "State"],
            rows,
            "Nothing submitted yet.",
            None,
        )
    }

    async fn organisation(&self) -> Result<Resp, ConsoleError> {
        let users = self.console.store.console_users().await?;
        let mut contacts = Vec::new();
        for role in <Role as strum::VariantArray>::VARIANTS {
            for u in users.iter().filter(|u| u.has(*role) && !u.suspended) {
                contacts.push(context! {
                    role => role.title(), name => u.display_name, email => u.email,
                    confirmed => when(u.confirmed_at),
                });
            }
        }
        let details: Vec<_> = self
            .console
            .store
            .org_details()
            .await?
            .into_iter()
            .map(|d| context! { key => d.key, value => d.value, changed => day(d.updated_at), confirmed => when(d.confirmed_at) })
            .collect();
        self.render(
            "organisation.html",
            "/organisation",
            context! {
                contacts, details,
                can_edit => roles::may(&self.me.user, Action::ManageUsers),
                known_keys => ["organisation_name", "organisation_type", "registered_address", "companies_house_number", "pdp_participant_id", "connection_deadline", "endpoint_url"],
            },
        )
    }

    async fn set_org(&self, form: &Form) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::ManageUsers) {
            self.audit("POST /console/organisation", 403, "forbidden", None)
                .await;
            return self.forbidden();
        }
        let (Some(key), Some(value)) = (form.get("key"), form.get("value")) else {
            return Ok(plain(StatusCode::BAD_REQUEST, "key and value\n"));
        };
        let key: String = key.trim().chars().take(64).collect();
        if key.is_empty() {
            return Ok(plain(StatusCode::BAD_REQUEST, "key\n"));
        }
        self.console
            .store
            .set_org_detail(
                key,
                value.trim().chars().take(500).collect(),
                form.get("confirmed") == Some("on"),
            )
            .await?;
        self.audit("POST /console/organisation", 303, "org_detail_set", None)
            .await;
        Ok(redirect("/organisation?done=saved"))
    }

    async fn confirm_contacts(&self) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::ManageUsers) {
            return self.forbidden();
        }
        let now = crate::now_micros();
        for mut u in self.console.store.console_users().await? {
            u.confirmed_at = Some(now);
            super::save_user(
                &self.console.store,
                u,
                None,
                self.console.config.console.scheme_admin_limit,
            )
            .await?;
        }
        self.audit(
            "POST /console/organisation/confirm-contacts",
            303,
            "contacts_confirmed",
            None,
        )
        .await;
        Ok(redirect("/organisation?done=confirmed"))
    }

    // --- users and roles (Action::ManageUsers) ---

    async fn users(&self, error: Option<String>, status: StatusCode) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::ManageUsers) {
            return self.forbidden();
        }
        let users: Vec<_> = self
            .console
            .store
            .console_users()
            .await?
            .into_iter()
            .map(|u| {
                context! {
                    username => u.username, display_name => u.display_name, email => u.email,
                    roles => u.roles.iter().map(|r| r.title()).collect::<Vec<_>>(),
                    holdernames => u.holdernames.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                    suspended => u.suspended,
                }
            })
            .collect();
        let all_roles: Vec<_> = <Role as strum::VariantArray>::VARIANTS
            .iter()
            .map(|r| context! { value => r.as_str(), title => r.title() })
            .collect();
        self.render_status(
            "users.html",
            "/users",
            context! { users, all_roles, scheme_admin_limit => self.console.config.console.scheme_admin_limit },
            status,
            error,
        )
    }

    async fn save_user(&self, form: &Form) -> Result<Resp, ConsoleError> {
        const EP: &str = "POST /console/users";
        if let Some(refused) = self.refused(EP, Action::ManageUsers).await {
            return refused;
        }
        let refuse = |msg: String| async move {
            self.audit(EP, 422, "refused", None).await;
            self.users(Some(msg), StatusCode::UNPROCESSABLE_ENTITY)
                .await
        };
        let (username, roles_given, holdernames) = match user_form(form) {
            Ok(parsed) => parsed,
            Err(msg) => return refuse(msg).await,
        };
        let existing = self.console.store.console_user(&username).await?;
        let field = |k: &str, old: Option<&String>| {
            form.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .or_else(|| old.cloned())
                .unwrap_or_default()
        };
        let display_name = field("display_name", existing.as_ref().map(|u| &u.display_name));
        let email = field("email", existing.as_ref().map(|u| &u.email));
        // A change of a key contact's details is unconfirmed until PDP is told (CoCo3.2.6).
        let confirmed_at = existing.as_ref().and_then(|u| {
            (u.display_name == display_name
                && u.email == email
                && u.roles == {
                    let mut r = roles_given.clone();
                    r.sort();
                    r.dedup();
                    r
                })
            .then_some(u.confirmed_at)
            .flatten()
        });
        let user = ConsoleUser {
            id: existing.as_ref().map_or(0, |u| u.id),
            username: username.clone(),
            display_name,
            email,
            password_hash: existing
                .as_ref()
                .map(|u| u.password_hash.clone())
                .unwrap_or_default(),
            roles: roles_given,
            holdernames,
            suspended: form.get("suspended") == Some("on"),
            confirmed_at,
            updated_at: 0,
        };
        let password = form
            .get("password")
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let changed_password = password.is_some();
        match super::save_user(
            &self.console.store,
            user.clone(),
            password,
            self.console.config.console.scheme_admin_limit,
        )
        .await
        {
            Ok(id) => {
                if user.suspended || changed_password {
                    self.console.sessions.end_user(id);
                }
                self.audit(EP, 303, "user_saved", None).await;
                Ok(redirect("/users?done=saved"))
            }
            Err(
                e @ (ConsoleError::Refused(_)
                | ConsoleError::RefusedInStore(_)
                | ConsoleError::UsernameTaken(_)
                | ConsoleError::Password(_)),
            ) => refuse(e.to_string()).await,
            Err(e) => Err(e),
        }
    }

    async fn audit_export(&self, query: &str) -> Result<Resp, ConsoleError> {
        if !roles::may(&self.me.user, Action::AuditExport) {
            return self.forbidden();
        }
        let q: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let parse = |s: Option<String>| {
            s.and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        };
        let today = chrono::Utc::now().date_naive();
        let to = parse(get("to")).unwrap_or(today) + chrono::Days::new(1);
        let from = parse(get("from")).unwrap_or(today - chrono::Days::new(30));
        let records = self
            .console
            .store
            .audit_records(
                crate::report::day_start(from),
                crate::report::day_start(to),
                None,
            )
            .await?;
        let mut out = String::from("transaction_id,request_id,direction,party,endpoint,received_at,responded_at,status,outcome\n");
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
        self.audit("GET /console/audit.csv", 200, "audit_exported", None)
            .await;
        let mut r = Response::new(Full::new(Bytes::from(out)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        r.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"audit.csv\""),
        );
        Ok(r)
    }
}

/// A row of the service-levels table: `name`, then how `s` fared.
fn series_row(name: String, s: &crate::sla::Series) -> Vec<String> {
    vec![
        name,
        s.count.to_string(),
        format!("{:.1} ms", s.p999_ms),
        format!("{} s / {} s", s.target_s, s.limit_s),
        format!("{:.3}%", s.within_limit * 100.0),
        format!("{:.1}%", s.required * 100.0),
        if s.met { "met".into() } else { "MISSED".into() },
    ]
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The match rule a reason code names, for a holdername (its own rules or the default).
fn rule_for<'a>(
    config: &'a crate::config::Config,
    holdername: Uuid,
    reason: &str,
) -> Option<&'a crate::matching::rules::Rule> {
    let set = config
        .matching
        .schemes
        .iter()
        .find(|s| s.holdername == holdername)
        .map(|s| &s.rules)
        .unwrap_or(&config.matching.default);
    set.rules.iter().find(|r| r.reason == reason)
}

/// An SVG bar chart of the share within each limit against what is required (no script).
fn sla_chart(bars: &[(&str, f64, f64)]) -> String {
    let (w, row) = (640.0, 34.0);
    let h = row * bars.len() as f64 + 30.0;
    let x0 = 200.0;
    let scale = |v: f64| x0 + (w - x0 - 20.0) * v.clamp(0.0, 1.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Share within each CoCo limit">"#
    );
    for (i, (name, got, need)) in bars.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let colour = if got >= need { "#1e7b34" } else { "#a40000" };
        s.push_str(&format!(
            r##"<text x="0" y="{ty}" font-size="13" fill="#1b1b1b">{name}</text><rect x="{x0}" y="{y}" width="{bw:.1}" height="20" fill="{colour}"/><line x1="{lx:.1}" x2="{lx:.1}" y1="{ly1}" y2="{ly2}" stroke="#000" stroke-width="2"/><text x="{tx:.1}" y="{ty}" font-size="12" fill="#1b1b1b">{pct:.2}%</text>"##,
            ty = y + 15.0,
            bw = scale(*got) - x0,
            lx = scale(*need),
            ly1 = y - 3.0,
            ly2 = y + 23.0,
            tx = (scale(*got) - 60.0).max(x0 + 4.0),
            pct = got * 100.0,
            name = minijinja::HtmlEscape(name),
        ));
    }
    s.push_str("</svg>");
    s
}

/// The username, roles and holdernames of a user form; or why it is refused.
fn user_form(form: &Form) -> Result<(String, Vec<Role>, Vec<Uuid>), String> {
    let username = form.get("username").unwrap_or("").trim().to_owned();
    if username.is_empty() || username.len() > MAX_USERNAME {
        return Err(format!("username: 1 to {MAX_USERNAME} characters"));
    }
    let roles = form
        .all("role")
        .map(|r| {
            r.parse::<Role>()
                .map_err(|_| format!("role: unknown {r:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let holdernames = form
        .get("holdernames")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| Uuid::try_parse(h).map_err(|_| "holdernames: comma-separated GUIDs".to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((username, roles, holdernames))
}

/// The rows of the load tool's `result.json` files below `dir` (three levels at most); files
/// that are not such results are passed over.
fn load_runs(dir: &std::path::Path) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && depth < 3 {
                stack.push((path, depth + 1));
            } else if path.file_name().is_some_and(|n| n == "result.json") {
                out.extend(load_run(&path));
            }
        }
    }
    out
}

fn load_run(path: &std::path::Path) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let rates: Vec<String> = v["phases"]
        .as_array()?
        .iter()
        .map(|p| {
            format!(
                "{} {:.0}",
                p["name"].as_str().unwrap_or("?"),
                p["achieved_rate"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    let failed = v["verdict"]["checks"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c["passed"] == false).count());
    Some(vec![
        v["started_at"].as_str()?.to_owned(),
        v["scenario"].as_str().unwrap_or("?").to_owned(),
        v["config"]["target"].as_str().unwrap_or("?").to_owned(),
        rates.join(", "),
        if v["verdict"]["passed"] == true {
            "passed"
        } else {
            "FAILED"
        }
        .to_owned(),
        failed.to_string(),
        path.display().to_string(),
    ])
}
