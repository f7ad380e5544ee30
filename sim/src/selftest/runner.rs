//! The runner: plays each case as the PFS and MaPS' dashboard would, records every request and
//! answer (redacted), waits for the endpoint to finish what a case started, then judges it on
//! what the endpoint answered and what the simulator's call log shows.

mod operate;

use std::path::PathBuf;
use std::time::Duration;

use pdp_provider::members::generate::{self, FindKind};
use pdp_provider::members::record::MemberRecord;
use pdp_provider::store::{FindState, Store};
use pdp_provider::tls::client::{mtls_client, Identity as ClientIdentity};
use pdp_provider::tls::pki::files;
use serde::Serialize;

use super::catalogue::{
    Action, Case, Expect, Identity, OpExpect, Person, Rpt, Step, Uat, ViewExpect,
};
use super::judge::{self, FindSeen, OpSeen, Stored, Verdict, ViewSeen};
use crate::cas::{Call, Resource};

/// The members the selftest's finds describe: `members generate --seed 2027`, as many as
/// [`MEMBERS`]. An endpoint under test holds them.
pub const SEED: u64 = 2027;

/// How many members the selftest generates.
pub const MEMBERS: u64 = 200;

/// A served view's body as the report shows it.
const VERIFIED: &str =
    "{\"view_data_token\": \"[signed view data token: verified against the CAS's jwk_uri]\"}";

/// How long a find that matches nobody is watched for a CAS call it must not bring.
const QUIET: Duration = Duration::from_secs(3);

/// Where the cases are played.
pub struct Ctx {
    /// The endpoint's base URL (`https://host:port`).
    pub endpoint: String,
    /// The PKI: the ecosystem CA, the PFS's and dashboard's identities, the expired and
    /// untrusted clients.
    pub certs: PathBuf,
    /// The simulator's control listener (`http://host:port`), when the CAS is the simulator.
    pub sim_control: Option<String>,
    /// The CAS's base URL, for the dashboard's RPT.
    pub cas: String,
    /// The endpoint's store, to see how finds ended.
    pub store: Option<Store>,
    /// The endpoint's reporting, as `report submit` runs it (with the store).
    pub reporter: Option<pdp_provider::report::submit::Reporter>,
    /// How long a find may take (the endpoint's `workers.completion_budget_ms`), plus margin.
    pub find_wait: Duration,
    /// The selftest's members with a NINO and a pension, in order.
    pub people: Vec<MemberRecord>,
}

/// One HTTP message as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// `POST https://…/find-requests` or `HTTP 202`.
    pub line: String,
    /// Headers, tokens redacted.
    pub headers: Vec<(String, String)>,
    /// The body, personal data and tokens redacted.
    pub body: String,
}

/// A request and what it got.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// When it was sent (RFC 3339).
    pub at: String,
    /// The request.
    pub request: Message,
    /// The answer.
    pub response: Option<Message>,
    /// No answer: why (a TLS refusal, a refused connection).
    pub error: Option<String>,
}

/// A case played and judged.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The case.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// What it proves.
    pub proves: &'static str,
    /// Pass or fail, and why.
    pub verdict: Verdict,
    /// Requests and answers.
    pub exchanges: Vec<Exchange>,
    /// The simulator's call-log lines for the case.
    pub calls: Vec<Call>,
    /// How the case's find ended in the endpoint's store, when it has one and the selftest
    /// read it.
    pub ended: Option<String>,
}

/// What a case left to judge once the endpoint has finished.
enum Played {
    Find {
        request_id: String,
        status: Option<u16>,
        creds: Vec<String>,
        stored: Stored,
        expect: Expect,
    },
    View {
        seen: ViewSeen,
        creds: Vec<String>,
        rpt: Option<String>,
        expect: ViewExpect,
    },
    /// An operator's action on the PeI a find registered.
    Op {
        find: Verdict,
        request_id: String,
        creds: Vec<String>,
        action: Action,
        /// When the action started and ended (RFC 3339): its calls are those between.
        window: (String, String),
        ended: Stored,
        expect: OpExpect,
    },
    Tls(Verdict),
    /// Judged already; its calls are those with these X-Request-IDs.
    Calls(Verdict, Vec<String>),
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The names a case's calls carry in the simulator's log.
fn credentials(uat: Uat, fresh_sub: &str) -> Vec<String> {
    match uat {
        Uat::Fresh => vec![format!("sub {fresh_sub}")],
        Uat::Magic(u) => {
            let mut v: Vec<String> = crate::magic::uat_name(u)
                .map(str::to_owned)
                .into_iter()
                .collect();
            v.extend(crate::magic::name_of(u));
            if let Some(user) = crate::magic::user_by_uat(u) {
                v.extend(crate::magic::name_of(user.pat));
            }
            v
        }
    }
}

/// Whether `call` was made with one of `creds` (its first component).
fn made_with(call: &Call, creds: &[String]) -> bool {
    let first = call
        .credential
        .as_deref()
        .map(|c| c.split(", ").next().unwrap_or(c));
    first.is_some_and(|f| creds.iter().any(|c| c == f))
}

// === impl Ctx ===

impl Ctx {
    fn client(&self, identity: Identity) -> Result<reqwest::Client, String> {
        let (cert, key) = match identity {
            Identity::Pfs => (files::PFS, files::PFS_KEY),
            Identity::Dashboard => (files::DASHBOARD, files::DASHBOARD_KEY),
            Identity::Expired => (files::EXPIRED_CLIENT, files::EXPIRED_CLIENT_KEY),
            Identity::Untrusted => (files::ROGUE_CLIENT, files::ROGUE_CLIENT_KEY),
        };
        let id = ClientIdentity {
            ca: &self.certs.join(files::CA),
            cert: &self.certs.join(cert),
            key: &self.certs.join(key),
        };
        mtls_client(id, |b| b.timeout(Duration::from_secs(15))).map_err(|e| e.to_string())
    }

    fn person(&self, n: usize) -> &MemberRecord {
        &self.people[n % self.people.len()]
    }

    /// A find body for `person` carrying `uat`; the `sub` of a fresh UAT.
    fn find_body(&self, uat: Uat, person: Person) -> (serde_json::Value, String) {
        let sub = format!("selftest-{}", uuid::Uuid::new_v4());
        let (m, kind) = match person {
            Person::Match(n) => (self.person(n), FindKind::Yes),
            Person::Possible(n) => (self.person(n), FindKind::Possible),
            Person::Nobody => (self.person(0), FindKind::No),
        };
        let mut body = generate::find_for(m, kind, &sub);
        if let Uat::Magic(u) = uat {
            // The stub's UATs carry no `sub`; a UAT with one stands for it (`magic::ALIAS_CLAIM`).
            let name = crate::magic::uat_name(u).unwrap_or_default();
            body["uat"] = serde_json::Value::String(crate::magic::alias_for(name));
        }
        (body, sub)
    }

    /// Sends a find as the PFS (or as `identity`).
    async fn send_find(
        &self,
        identity: Identity,
        body: &serde_json::Value,
    ) -> (String, Option<u16>, Exchange) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let url = format!("{}/find-requests", self.endpoint);
        let req = Request {
            method: "POST",
            url: &url,
            headers: vec![
                ("X-Request-ID", request_id.clone()),
                ("Content-Type", "application/json".into()),
            ],
            body: Some(body),
        };
        let (status, ex) = match self.client(identity) {
            Ok(c) => send(&c, req).await,
            Err(e) => (None, failed(req, e)),
        };
        (request_id, status, ex)
    }

    /// The simulator's calls and resources (none without a simulator).
    async fn sim_log(&self) -> (Vec<Call>, Vec<Resource>) {
        let Some(control) = &self.sim_control else {
            return (Vec::new(), Vec::new());
        };
        let get = |path: &str| reqwest::get(format!("{control}{path}"));
        let calls = match get("/__sim/calls").await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let resources = match get("/__sim/registrations").await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        (calls, resources)
    }

    /// Waits for find `id` to end in the store (or, without one, for the find budget).
    async fn ended(&self, id: &str) -> Stored {
        let Some(store) = &self.store else {
            return Stored::Unknown;
        };
        let deadline = tokio::time::Instant::now() + self.find_wait;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(f)) = store.find_request(id).await {
                match f.state {
                    FindState::Done => return Stored::Done,
                    FindState::Failed => return Stored::Failed(f.reason.unwrap_or_default()),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Stored::NotEnded
    }

    /// Registers member `n`'s PeI at the CAS before the endpoint does (as another of the stub's
    /// users, `HAPPY_PATH_UAT_19`), so that the endpoint's registration meets the CAS's `200`
    /// for a PeI already registered. The calls go in the case's exchanges.
    async fn preregister(&self, n: usize, ex: &mut Vec<Exchange>) {
        let m = self.person(n);
        let Some(p) = m.pensions.first() else {
            return;
        };
        let id = ClientIdentity {
            ca: &self.certs.join(files::CA),
            cert: &self.certs.join(files::PROVIDER),
            key: &self.certs.join(files::PROVIDER_KEY),
        };
        let Ok(client) = mtls_client(id, |b| b.timeout(Duration::from_secs(15))) else {
            return;
        };
        let url = format!("{}/token", self.cas);
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer\
             &scope=uma_protection&assertion={}",
            crate::magic::values::HAPPY_PATH_UAT_19
        );
        let token = Request {
            method: "POST",
            url: &url,
            headers: vec![
                ("X-Request-ID", uuid::Uuid::new_v4().to_string()),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            body: None,
        };
        let ((_, mut e), _) = send_raw(&client, token, Some(form)).await;
        e.request.body =
            "grant_type=…jwt-bearer&scope=uma_protection&assertion=[HAPPY_PATH_UAT_19]".into();
        ex.push(e);
        let body = serde_json::json!({
            "name": format!("urn:pei:{}:{}", m.holdername, p.asset_guid),
            "description": "registered by the selftest before the endpoint",
            "match_status": "match-yes", "resource_scopes": ["value", "owner"],
            "inbound_request_id": uuid::Uuid::new_v4().to_string()});
        let url = format!("{}/rreguri", self.cas);
        let bearer = format!("Bearer {}", crate::magic::values::HAPPY_PATH_PAT_19);
        let register = Request {
            method: "POST",
            url: &url,
            headers: vec![
                ("X-Request-ID", uuid::Uuid::new_v4().to_string()),
                ("Content-Type", "application/json".into()),
                ("Authorization", bearer),
            ],
            body: Some(&body),
        };
        ex.push(send(&client, register).await.1);
    }

    /// Watches the simulator's log for [`QUIET`] for a call made with `creds` (a find that
    /// matches nobody must bring none).
    async fn watch_quiet(&self, creds: &[String]) {
        if self.sim_control.is_none() {
            return;
        }
        let deadline = tokio::time::Instant::now() + QUIET;
        while tokio::time::Instant::now() < deadline {
            let (calls, _) = self.sim_log().await;
            if calls.iter().any(|c| made_with(c, creds)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Without the store: waits (at most the find budget) until find `id`'s registration is in
    /// the simulator's log (a resource from it, or a registration with `creds` answered `200`).
    async fn wait_registration(&self, id: &str, creds: &[String]) {
        if self.sim_control.is_none() {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.find_wait;
        while tokio::time::Instant::now() < deadline {
            let (calls, resources) = self.sim_log().await;
            let answered = calls
                .iter()
                .any(|c| c.endpoint == "POST /rreguri" && c.status == 200 && made_with(c, creds));
            if answered || resources.iter().any(|r| r.inbound_request_id == id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the simulator holds a live resource named `pei` (at most the find budget).
    async fn registered(&self, pei: &str) -> bool {
        let deadline = tokio::time::Instant::now() + self.find_wait;
        while tokio::time::Instant::now() < deadline {
            let (_, resources) = self.sim_log().await;
            if resources
                .iter()
                .any(|r| r.name == pei && r.deleted.is_none())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// A request to send and record.
struct Request<'a> {
    method: &'static str,
    url: &'a str,
    headers: Vec<(&'static str, String)>,
    body: Option<&'a serde_json::Value>,
}

fn shown_request(req: &Request<'_>) -> Message {
    Message {
        line: format!("{} {}", req.method, req.url),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), super::redact::header(k, v)))
            .collect(),
        body: req
            .body
            .map(super::redact::request_body)
            .unwrap_or_default(),
    }
}

fn failed(req: Request<'_>, error: String) -> Exchange {
    Exchange {
        at: now(),
        request: shown_request(&req),
        response: None,
        error: Some(error),
    }
}

/// The whole chain of an error, as far as it says why.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Sends `req` with `client`; the status and the exchange as recorded.
async fn send(client: &reqwest::Client, req: Request<'_>) -> (Option<u16>, Exchange) {
    send_full(client, req).await.0
}

/// [`send`], also giving the answer's headers and body.
async fn send_full(client: &reqwest::Client, req: Request<'_>) -> Answered {
    send_raw(client, req, None).await
}

/// A status and the exchange as recorded, with the answer's headers and body.
type Answered = (
    (Option<u16>, Exchange),
    Option<(reqwest::header::HeaderMap, String)>,
);

/// [`send_full`], with a raw body instead of the request's JSON one.
async fn send_raw(client: &reqwest::Client, req: Request<'_>, raw: Option<String>) -> Answered {
    let at = now();
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut b = client.request(method, req.url);
    for (k, v) in &req.headers {
        b = b.header(*k, v);
    }
    if let Some(body) = req.body {
        b = b.body(body.to_string());
    }
    if let Some(raw) = raw {
        b = b.body(raw);
    }
    let request = shown_request(&req);
    match b.send().await {
        Err(e) => {
            let ex = Exchange {
                at,
                request,
                response: None,
                error: Some(chain(&e)),
            };
            ((None, ex), None)
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.text().await.unwrap_or_default();
            let response = Message {
                line: format!("HTTP {status}"),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        let v = v.to_str().unwrap_or("(binary)");
                        (k.as_str().to_owned(), super::redact::header(k.as_str(), v))
                    })
                    .collect(),
                body: super::redact::response_body(&body),
            };
            let ex = Exchange {
                at,
                request,
                response: Some(response),
                error: None,
            };
            ((Some(status), ex), Some((headers, body)))
        }
    }
}

/// Plays and judges `cases`, all at once; the outcomes in catalogue order.
pub async fn run(ctx: std::sync::Arc<Ctx>, cases: &[Case]) -> Vec<Outcome> {
    let setups = std::sync::Arc::new(setups(&ctx, cases).await);
    let mut tasks = tokio::task::JoinSet::new();
    let reporting = |c: &Case| matches!(c.step, Step::Report { .. });
    for (i, case) in cases
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| !reporting(c))
    {
        let (ctx, setups) = (ctx.clone(), setups.clone());
        tasks.spawn(async move {
            let mut exchanges = Vec::new();
            let played = play(&ctx, case, &setups, &mut exchanges).await;
            (i, case, played, exchanges)
        });
    }
    let mut played = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(p) = r {
            played.push(p);
        }
    }
    // Reporting after the rest (today's reports count what they did), one case at a time.
    for (i, case) in cases
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| reporting(c))
    {
        let mut exchanges = Vec::new();
        let p = play(&ctx, case, &setups, &mut exchanges).await;
        played.push((i, case, p, exchanges));
    }
    played.sort_by_key(|p| p.0);
    let (calls, resources) = ctx.sim_log().await;
    played
        .into_iter()
        .map(|(_, case, p, exchanges)| judge_played(&ctx, case, p, exchanges, &calls, &resources))
        .collect()
}

fn judge_played(
    ctx: &Ctx,
    case: Case,
    played: Played,
    exchanges: Vec<Exchange>,
    calls: &[Call],
    resources: &[Resource],
) -> Outcome {
    let mine = |creds: &[String]| -> Vec<Call> {
        calls
            .iter()
            .filter(|c| made_with(c, creds))
            .cloned()
            .collect()
    };
    let mut ended = None;
    let (verdict, log) = match played {
        Played::Find {
            request_id,
            status,
            creds,
            stored,
            expect,
        } => {
            let log = mine(&creds);
            let seen = FindSeen {
                status,
                request_id: &request_id,
                calls: &log,
                resources,
                stored: &stored,
            };
            ended = shown_ended(&stored);
            let mut verdict = judge::find(&seen, expect);
            if ctx.sim_control.is_none() && verdict.passed() && expect != Expect::NoCasCall {
                verdict = Verdict::Fail("needs the simulator's call log (--sim)".into());
            }
            (verdict, log)
        }
        Played::View {
            mut seen,
            creds,
            rpt,
            expect,
        } => {
            let log = mine(&creds);
            seen.cas_calls = log
                .iter()
                .filter(|c| c.endpoint == "POST /perm" || c.endpoint == "POST /introspect")
                .filter(|c| {
                    rpt.as_deref().is_none_or(|r| {
                        c.endpoint != "POST /introspect"
                            || c.credential
                                .as_deref()
                                .is_some_and(|k| k.ends_with(&format!("RPT {r}")))
                    })
                })
                .cloned()
                .collect();
            (judge::view(&seen, expect), log)
        }
        Played::Op {
            find,
            request_id,
            creds,
            action,
            window,
            ended: how,
            expect,
        } => {
            let log = mine(&creds);
            let within = |c: &&Call| {
                judge::millis_between(&window.0, &c.at).is_some_and(|d| d >= 0)
                    && judge::millis_between(&c.at, &window.1).is_some_and(|d| d >= 0)
            };
            let acted: Vec<Call> = log.iter().filter(within).cloned().collect();
            let seen = OpSeen {
                find,
                action,
                calls: &acted,
                resource: resources
                    .iter()
                    .find(|r| r.inbound_request_id == request_id),
                ended: &how,
            };
            ended = shown_ended(&how);
            (judge::operation(&seen, expect), log)
        }
        Played::Tls(v) => (v, Vec::new()),
        Played::Calls(v, ids) => {
            let log = calls
                .iter()
                .filter(|c| c.x_request_id.as_ref().is_some_and(|x| ids.contains(x)))
                .cloned()
                .collect();
            (v, log)
        }
    };
    Outcome {
        id: case.id,
        title: case.title,
        proves: case.proves,
        verdict,
        exchanges,
        calls: log,
        ended,
    }
}

/// How a find or an action ended, as the report shows it.
fn shown_ended(stored: &Stored) -> Option<String> {
    match stored {
        Stored::Unknown => None,
        Stored::NotEnded => Some("not ended when the selftest stopped waiting".into()),
        Stored::Done => Some("done".into()),
        Stored::Failed(why) => Some(format!("failed: {why}")),
    }
}

/// A find that registers the PeI view cases view: sent once, before them, for all that view
/// it (a find for a PeI re-registers it, and it is not served meanwhile).
#[derive(Debug, Clone)]
struct Setup {
    exchange: Exchange,
    ready: Result<(), String>,
}

type Setups = std::collections::HashMap<(&'static str, usize), Setup>;

async fn setups(ctx: &std::sync::Arc<Ctx>, cases: &[Case]) -> Setups {
    let mut keys: Vec<(&'static str, usize)> = cases
        .iter()
        .filter_map(|c| match c.step {
            Step::View { uat, member, .. } => Some((uat, member)),
            _ => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut tasks = tokio::task::JoinSet::new();
    for key in keys {
        let ctx = ctx.clone();
        tasks.spawn(async move { (key, setup(&ctx, key.0, key.1).await) });
    }
    let mut out = Setups::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok((key, s)) = r {
            out.insert(key, s);
        }
    }
    out
}

async fn setup(ctx: &Ctx, uat: &'static str, member: usize) -> Setup {
    let (body, _) = ctx.find_body(Uat::Magic(uat), Person::Match(member));
    let (id, status, exchange) = ctx.send_find(Identity::Pfs, &body).await;
    let m = ctx.person(member);
    let ready = match (status, m.pensions.first()) {
        (Some(202), Some(p)) => {
            let pei = format!("urn:pei:{}:{}", m.holdername, p.asset_guid);
            let stored = ctx.ended(&id).await;
            if !matches!(stored, Stored::Done | Stored::Unknown) {
                Err(format!(
                    "the find that registers the viewed PeI ended {stored:?}"
                ))
            } else if !ctx.registered(&pei).await {
                Err("the find that registers the viewed PeI did not register it".into())
            } else {
                Ok(())
            }
        }
        (status, _) => Err(format!(
            "the find that registers the viewed PeI was answered {status:?}"
        )),
    };
    Setup { exchange, ready }
}

async fn play(ctx: &Ctx, case: Case, setups: &Setups, ex: &mut Vec<Exchange>) -> Played {
    match case.step {
        Step::Find {
            uat,
            person,
            expect,
        } => play_find(ctx, uat, person, expect, ex).await,
        Step::View {
            uat,
            member,
            rpt,
            expect,
        } => {
            let Some(setup) = setups.get(&(uat, member)) else {
                return Played::Tls(Verdict::Fail("no find registered the viewed PeI".into()));
            };
            ex.push(setup.exchange.clone());
            if let Err(why) = &setup.ready {
                return Played::Tls(Verdict::Fail(why.clone()));
            }
            play_view(ctx, uat, member, rpt, expect, ex).await
        }
        Step::FindAs { identity, expect } => {
            let (body, _) = ctx.find_body(Uat::Fresh, Person::Nobody);
            let (_, status, e) = ctx.send_find(identity, &body).await;
            let v = judge::tls(status, e.error.as_deref(), expect);
            ex.push(e);
            Played::Tls(v)
        }
        Step::Operate {
            uat,
            person,
            action,
            expect,
        } => operate::play(ctx, uat, person, action, expect, ex).await,
        Step::Report {
            days_ago,
            resubmit,
            fault,
            expect,
        } => {
            let (Some(reporter), Some(control)) = (&ctx.reporter, &ctx.sim_control) else {
                let why = "needs the endpoint's configuration (--config) and the simulator (--sim)";
                return Played::Tls(Verdict::Fail(why.into()));
            };
            let seen = super::reporting::play(reporter, control, days_ago, resubmit, fault).await;
            ex.extend(super::reporting::exchanges(&ctx.cas, &seen));
            let ids = seen
                .received
                .iter()
                .map(|r| r.x_request_id.clone())
                .collect();
            Played::Calls(super::reporting::judge(&seen, expect), ids)
        }
        Step::ViewAs { identity, expect } => {
            let m = ctx.person(3);
            let url = match m.pensions.first() {
                Some(p) => format!("{}/view-data/{}?scope=owner", ctx.endpoint, p.asset_guid),
                None => format!(
                    "{}/view-data/{}?scope=owner",
                    ctx.endpoint,
                    uuid::Uuid::nil()
                ),
            };
            let req = Request {
                method: "GET",
                url: &url,
                headers: vec![("X-Request-ID", uuid::Uuid::new_v4().to_string())],
                body: None,
            };
            let (status, e) = match ctx.client(identity) {
                Ok(c) => send(&c, req).await,
                Err(err) => (None, failed(req, err)),
            };
            let v = judge::tls(status, e.error.as_deref(), expect);
            ex.push(e);
            Played::Tls(v)
        }
    }
}

async fn play_find(
    ctx: &Ctx,
    uat: Uat,
    person: Person,
    expect: Expect,
    ex: &mut Vec<Exchange>,
) -> Played {
    let (body, sub) = ctx.find_body(uat, person);
    let creds = credentials(uat, &sub);
    if let (Expect::AlreadyRegistered, Person::Match(n)) = (expect, person) {
        ctx.preregister(n, ex).await;
    }
    let (request_id, status, e) = ctx.send_find(Identity::Pfs, &body).await;
    ex.push(e);
    let stored = if status == Some(202) && expect != Expect::NoCasCall {
        ctx.ended(&request_id).await
    } else {
        Stored::Unknown
    };
    if expect == Expect::NoCasCall && status == Some(202) {
        ctx.watch_quiet(&creds).await;
    }
    let registers = matches!(expect, Expect::Registered(_) | Expect::AlreadyRegistered);
    if ctx.store.is_none() && registers && status == Some(202) {
        ctx.wait_registration(&request_id, &creds).await;
    }
    if ctx.store.is_none() && matches!(expect, Expect::Retried { .. } | Expect::NotRetried { .. }) {
        // Without the store: the budget's end, so every retry is in the log.
        tokio::time::sleep(ctx.find_wait).await;
    }
    Played::Find {
        request_id,
        status,
        creds,
        stored,
        expect,
    }
}

async fn play_view(
    ctx: &Ctx,
    uat: &'static str,
    member: usize,
    rpt: Rpt,
    expect: ViewExpect,
    ex: &mut Vec<Exchange>,
) -> Played {
    let creds = credentials(Uat::Magic(uat), "");
    let m = ctx.person(member);
    let Some(pension) = m.pensions.first() else {
        return Played::Tls(Verdict::Fail("the member has no pension".into()));
    };
    let guid = pension.asset_guid.to_string();
    let mut seen = ViewSeen::default();
    let rpt_name = match rpt {
        Rpt::Flow => {
            flow(ctx, &guid, &mut seen, ex).await;
            None
        }
        Rpt::Magic(token) => {
            direct(ctx, &guid, Some(token), &mut seen, ex).await;
            crate::magic::name_of(token)
        }
        Rpt::Nothing => {
            direct(ctx, &guid, None, &mut seen, ex).await;
            None
        }
    };
    Played::View {
        seen,
        creds,
        rpt: rpt_name,
        expect,
    }
}

/// One view call with `rpt` (or none), as the dashboard makes it.
async fn direct(
    ctx: &Ctx,
    guid: &str,
    rpt: Option<&str>,
    seen: &mut ViewSeen,
    ex: &mut Vec<Exchange>,
) {
    let url = format!("{}/view-data/{guid}?scope=owner", ctx.endpoint);
    let mut headers = vec![
        ("X-Request-ID", uuid::Uuid::new_v4().to_string()),
        ("Accept", "application/json".to_owned()),
    ];
    if let Some(r) = rpt {
        headers.push(("Authorization", format!("Bearer {r}")));
    }
    let req = Request {
        method: "GET",
        url: &url,
        headers,
        body: None,
    };
    let client = match ctx.client(Identity::Dashboard) {
        Ok(c) => c,
        Err(e) => {
            ex.push(failed(req, e));
            return;
        }
    };
    let ((status, e), answer) = send_full(&client, req).await;
    ex.push(e);
    seen.status = status;
    if let Some((headers, _)) = answer {
        seen.challenge = headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("ticket="));
        seen.retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
    }
}

/// MaPS' dashboard's whole flow; the exchanges as it made them.
async fn flow(ctx: &Ctx, guid: &str, seen: &mut ViewSeen, ex: &mut Vec<Exchange>) {
    let dashboard = match crate::dashboard::Dashboard::new(
        &ctx.endpoint,
        &ctx.cas,
        &ctx.certs.join(files::CA),
        &ctx.certs.join(files::DASHBOARD),
        &ctx.certs.join(files::DASHBOARD_KEY),
    ) {
        Ok(d) => d,
        Err(e) => {
            seen.token = Some(Err(e.to_string()));
            return;
        }
    };
    let at = now();
    let request = Message {
        line: format!(
            "GET {}/view-data/{guid}?scope=owner (then again with the RPT)",
            ctx.endpoint
        ),
        headers: vec![(
            "Authorization".into(),
            "Bearer [RPT from the CAS, redacted]".into(),
        )],
        body: String::new(),
    };
    match dashboard.view(guid).await {
        Ok(o) => {
            seen.status = o.retry_status.or(Some(o.first_status));
            seen.token = o.view_data.is_some().then_some(Ok(()));
            let line = format!(
                "HTTP {} (challenge: {}), then HTTP {}",
                o.first_status,
                if o.challenge.is_some() {
                    "ticket and as_uri"
                } else {
                    "none"
                },
                o.retry_status.map_or_else(|| "-".into(), |s| s.to_string())
            );
            let body = o.view_data.map(|_| VERIFIED.to_owned()).unwrap_or_default();
            ex.push(Exchange {
                at,
                request,
                response: Some(Message {
                    line,
                    headers: Vec::new(),
                    body,
                }),
                error: None,
            });
        }
        Err(e) => {
            seen.token = Some(Err(e.to_string()));
            ex.push(Exchange {
                at,
                request,
                response: None,
                error: Some(e.to_string()),
            });
        }
    }
}
