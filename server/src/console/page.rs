//! A signed-in request as every page's handler takes it ([`Page`]): who asks, what they sent,
//! and what a handler does with it: render a page in the console's frame, refuse, audit.

use std::sync::Arc;

use http::{Method, StatusCode};
use minijinja::{context, Value};
use uuid::Uuid;

use super::respond::{html, plain, Resp};
use super::{routes, templates, Console, ConsoleError};
use crate::audit::{AuditRecord, Direction};
use crate::store::console::ConsoleUser;

/// The signed-in user: as stored now, with the session's CSRF token and the session's own.
pub(super) struct Me {
    /// The user, read at this request (a role removed or a suspension applies at once).
    pub(super) user: ConsoleUser,
    /// The session's CSRF token, which every form carries.
    pub(super) csrf: String,
    /// The session token (its cookie's value), to end it.
    pub(super) token: String,
}

/// A parsed form: every field, repeated ones kept; empty for a `GET`.
pub(super) struct Form(pub(super) Vec<(String, String)>);

// === impl Form ===

impl Form {
    /// The first value of field `k`.
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// Every value of field `k`, in order.
    pub(super) fn all<'a>(&'a self, k: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// A signed-in request to one of the routes ([`routes::ROUTES`]).
pub(super) struct Page<'a> {
    /// The console.
    pub(super) console: &'a Arc<Console>,
    /// Who asks.
    pub(super) me: &'a Me,
    /// `GET` or `POST`.
    pub(super) method: &'a Method,
    /// The path asked for.
    pub(super) path: &'a str,
    /// The query string ("" when none).
    pub(super) query: &'a str,
    /// The form posted.
    pub(super) form: &'a Form,
    /// What the last action did (`?done=`), shown above the page.
    pub(super) notice: Option<String>,
    /// When the request arrived (µs since the epoch), for its audit record.
    pub(super) started: i64,
}

// === impl Page ===

impl Page<'_> {
    /// The endpoint as audit records name it: `POST /console/users`.
    pub(super) fn endpoint(&self) -> String {
        format!("{} /console{}", self.method, self.path)
    }

    /// The first value of query parameter `k`.
    pub(super) fn query(&self, k: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(self.query)
            .ok()
            .and_then(|q| q.into_iter().find(|(n, _)| n == k).map(|(_, v)| v))
    }

    /// Template `name` in the console's frame, marked as page `here` in the navigation.
    pub(super) fn render(&self, name: &str, here: &str, ctx: Value) -> Result<Resp, ConsoleError> {
        self.render_status(name, here, ctx, StatusCode::OK, None)
    }

    /// As [`Page::render`], answered with `status` and an `error` shown above the page.
    pub(super) fn render_status(
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
            nav => routes::nav(u),
            here => here,
            csrf => self.me.csrf,
            notice => self.notice,
            error => error,
        };
        let body = templates::render(self.console, name, context! { ..ctx, ..base });
        Ok(html(status, body))
    }

    /// A page of one table (`table.html`), with a chart (SVG, caption) above it.
    #[allow(clippy::too_many_arguments)] // one call per page: the arguments are its text
    pub(super) fn table(
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

    /// Audits what this request did to `target` (pairs such as `("pei", urn)`, `("user", name)`),
    /// named in the record's endpoint as a query: `POST /console/possible-matches/resolve?pei=…`.
    pub(super) async fn audit_on(
        &self,
        status: u16,
        outcome: &str,
        request_id: Option<String>,
        target: &[(&str, &str)],
    ) {
        let query = serde_urlencoded::to_string(target).unwrap_or_default();
        let endpoint = format!("{}?{query}", self.endpoint());
        audit(
            self.console,
            &self.me.user.username,
            &endpoint,
            status,
            outcome,
            request_id,
            self.started,
        )
        .await
    }

    /// Audits what this request did, as [`audit`] does, against its endpoint.
    pub(super) async fn audit(&self, status: u16, outcome: &str, request_id: Option<String>) {
        let endpoint = self.endpoint();
        audit(
            self.console,
            &self.me.user.username,
            &endpoint,
            status,
            outcome,
            request_id,
            self.started,
        )
        .await
    }
}

/// The `403` of a request the user's roles do not allow.
pub(super) fn forbidden() -> Resp {
    plain(StatusCode::FORBIDDEN, "your roles do not allow this\n")
}

/// Audits a console action (party `console:<username>`) and waits for its commit.
pub(super) async fn audit(
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
