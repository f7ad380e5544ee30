//! PDP reporting against the CAS simulator's reporting API, which validates every
//! body as MaPS' stub does: real mTLS calls, the store's claims, the operator commands.

use std::collections::{HashMap, HashSet};
use std::process::Command;

use chrono::NaiveDate;
use pdp_provider::cas::client::CasClient;
use pdp_provider::config::{Config, ReportingConfig};
use pdp_provider::members::generate::FindKind;
use pdp_provider::model::{ReportKind, Service, SubmissionState};
use pdp_provider::report::downtime::{announce, Announcement, DowntimeError};
use pdp_provider::report::submit::Reporter;
use pdp_provider::report::{day_start, ReportError};
use pdp_provider::store::Store;
use pdp_provider::tls::pki::files;
use pdp_provider::view_data::working_days::{Calendar, Nation};
use pdp_sim::cas::{CasSim, Faults};
use pdp_sim::report::Received;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::harness::{cas_sim, member_with, Env, Server};

const MIN: i64 = 60_000_000;

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Fast backoff, no daily run of its own.
fn reporting() -> ReportingConfig {
    ReportingConfig {
        enabled: false,
        backoff_base_ms: 10,
        backoff_cap_ms: 50,
        retry_budget_s: 20,
        ..ReportingConfig::default()
    }
}

fn config(env: &Env, cas: &CasSim) -> Config {
    let mut c = env.config_with_cas(cas);
    c.reporting = reporting();
    c
}

fn reporter(store: &Store, config: &Config) -> Reporter {
    Reporter {
        store: store.clone(),
        cas: Some(CasClient::new(&config.cas, store.clone()).unwrap()),
        config: config.reporting.clone(),
        go_live: None,
    }
}

async fn holdernames(store: &Store, day: NaiveDate) -> Vec<Uuid> {
    let from = day_start(day);
    store
        .report_facts(from, from + 1440 * MIN)
        .await
        .unwrap()
        .holdernames
}

/// The calls the simulator received for `kind` and `holdername`.
fn received(cas: &CasSim, kind: ReportKind, h: Uuid) -> Vec<Received> {
    cas.state
        .reports
        .received()
        .into_iter()
        .filter(|r| r.kind == kind)
        .filter(|r| {
            r.body["holdernameGuid"] == h.to_string()
                || r.body["items"][0] == h.to_string()
                || r.body["items"][0].get(h.to_string()).is_some()
        })
        .collect()
}

/// A config file for the real binary, pointed at `cas`, with `reporting.lease_s`.
fn config_file(env: &Env, cas: &CasSim, lease_s: u64) -> std::path::PathBuf {
    let c = env.config_with_cas(cas);
    let path = env.dir.path().join(format!("report-{lease_s}.toml"));
    let toml = format!(
        "[store]\npath = {:?}\n[crypto]\ndata_key_file = {:?}\n\
         [view]\nsigning_key = {:?}\ncalendar = {:?}\n\
         [cas]\nbase_url = {:?}\nclient_cert = {:?}\nclient_key = {:?}\nca = {:?}\n\
         [reporting]\nenabled = false\nlease_s = {lease_s}\nbackoff_base_ms = 10\nbackoff_cap_ms = 50\n",
        c.store.path,
        c.crypto.data_key_file.unwrap(),
        c.view.signing_key,
        c.view.calendar,
        c.cas.base_url,
        c.cas.client_cert,
        c.cas.client_key,
        c.cas.ca
    );
    std::fs::write(&path, toml).unwrap();
    path
}

fn command(args: &[&str], config: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pdp-provider"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1");
    cmd
}

/// Runs the real binary off the runtime (the simulator answers it from this test's runtime).
async fn binary(args: &[&str], config: &std::path::Path) -> std::process::Output {
    let mut cmd = command(args, config);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Scripts a fault as a test harness would: `POST /configuration` over mTLS.
async fn configure(env: &Env, cas: &CasSim, stubs: Value) {
    let resp = env
        .client(files::PROVIDER, files::PROVIDER_KEY)
        .post(format!("{}/configuration", cas.base_url()))
        .json(&stubs)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn a_day_with_no_views_is_sent_once_each_body_valid_and_null_where_the_yaml_allows() {
    let env = Env::new();
    env.with_members(20).await;
    let cas = cas_sim(&env).await;
    let config = config(&env, &cas);
    let store = env.store();
    let hs = holdernames(&store, today()).await;
    assert!(!hs.is_empty());
    let r = reporter(&store, &config);

    let out = r
        .submit_day(today(), false, pdp_provider::now_micros())
        .await
        .unwrap();
    assert_eq!(out.accepted as usize, hs.len() * 6, "{out:?}");
    let all = cas.state.reports.received();
    assert_eq!(all.len(), hs.len() * 6);
    // Every call: valid for the simulator (the stub's checks), its own X-Request-ID.
    assert!(all.iter().all(|r| r.status == 202), "{all:?}");
    let xids: HashSet<_> = all.iter().map(|r| r.x_request_id.clone()).collect();
    assert_eq!(xids.len(), all.len());
    assert!(xids.iter().all(|x| Uuid::try_parse(x).is_ok()));
    let start = format!("{}T00:00:00.000Z", today());
    for h in &hs {
        for kind in <ReportKind as strum::VariantArray>::VARIANTS {
            let got = received(&cas, *kind, *h);
            assert_eq!(got.len(), 1, "{kind} {h}");
            let b = &got[0].body;
            assert_eq!(b["reporting_period_start"], start.as_str());
            assert_eq!(b["submission_status"], "on time");
            assert!(b.as_object().unwrap().contains_key("submission_id"));
            match kind {
                ReportKind::RequestNumber => {
                    assert_eq!(b["req_count"], 0);
                    assert_eq!(b["submission_reason"], "initial submission");
                    assert!(b["submission_id"].is_string());
                }
                ReportKind::Unavailable => {
                    assert_eq!(b["submission_reason"], "initial submission");
                    assert_eq!(b["contact_count"], 0);
                    assert!(b["submission_id"].is_string());
                }
                ReportKind::FindAvailability | ReportKind::ViewAvailability => {
                    assert_eq!(b["submission_reason"], "null submission");
                    assert!(b["submission_id"].is_null());
                    assert_eq!(b["items"], json!([h.to_string()]));
                }
                _ => {
                    assert_eq!(b["submission_reason"], "null submission");
                    assert!(b["submission_id"].is_null());
                    assert!(b.get("items").is_none() && b.get("multiple_calculation").is_none());
                }
            }
        }
    }
    // Submitted once: a second run (a second instance, a restart) sends nothing.
    let again = r
        .submit_day(today(), false, pdp_provider::now_micros())
        .await
        .unwrap();
    assert_eq!(again.already as usize, hs.len() * 6);
    assert_eq!(cas.state.reports.received().len(), hs.len() * 6);
    let subs = store.submissions(Some(today())).await.unwrap();
    assert_eq!(subs.len(), hs.len() * 6);
    assert!(subs.iter().all(|s| s.state == SubmissionState::Accepted
        && s.key.attempt == 0
        && s.parts
            .iter()
            .all(|p| p.http_status == Some(202) && p.answer.is_some())));

    // A correction goes as `correction` + `resubmission` (or a null correction), attempt 1.
    r.submit_day(today(), true, pdp_provider::now_micros())
        .await
        .unwrap();
    for h in &hs {
        let got = received(&cas, ReportKind::RequestNumber, *h);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].body["submission_status"], "correction");
        assert_eq!(got[1].body["submission_reason"], "resubmission");
        assert_ne!(got[1].body["record_id"], got[0].body["record_id"]);
        let got = received(&cas, ReportKind::ResponseTime, *h);
        assert_eq!(got[1].body["submission_status"], "correction");
        assert_eq!(got[1].body["submission_reason"], "null submission");
        assert_eq!(got[1].status, 202);
    }
    // A past day first sent now is late.
    let late = today() - chrono::Days::new(5);
    r.submit_day(late, false, pdp_provider::now_micros())
        .await
        .unwrap();
    let got = received(&cas, ReportKind::Unavailable, hs[0]);
    assert_eq!(got.last().unwrap().body["submission_status"], "late");
    store.close().await;
}

/// Waits until `n` views of today are recorded (off the answers' path).
async fn views_recorded(store: &Store, n: usize) {
    let from = day_start(today());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while store
        .report_facts(from, from + 1440 * MIN)
        .await
        .unwrap()
        .views
        .len()
        < n
    {
        assert!(tokio::time::Instant::now() < deadline, "views not recorded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_slow_view_appears_in_response_time_and_views_are_counted_per_holdername() {
    let env = Env::new();
    let members = env.with_members(200).await;
    let cas = cas_sim(&env).await;
    let mut c = config(&env, &cas);
    // A CAS that takes 10.2 s to introspect makes a real view slower than 10 s.
    c.view.budget_ms = 11_500;
    c.view.introspect_timeout_ms = 11_000;
    c.server.request_timeout_ms = 11_900;
    let server = Server::start(c.clone()).await;
    crate::harness::publish_jwks(&server, &cas).await;
    let m = member_with(&members, 1);
    let id = Uuid::new_v4().to_string();
    crate::harness::post_find(
        &env.pfs(),
        &server.url("/find-requests"),
        &id,
        &crate::harness::find_for(m, FindKind::Yes),
    )
    .await;
    env.ended(&id).await;
    let store = env.store();
    let pei = store.peis_for_request(&id).await.unwrap()[0].clone();
    // Patient beyond MaPS' 5 s: the slow view below is answered after 10.2 s.
    let (ca, cert, key) = (
        env.cert(files::CA),
        env.cert(files::DASHBOARD),
        env.cert(files::DASHBOARD_KEY),
    );
    let dashboard = pdp_sim::dashboard::Dashboard::with_timeout(
        &server.url(""),
        &cas.base_url(),
        pdp_provider::tls::client::Identity {
            ca: &ca,
            cert: &cert,
            key: &key,
        },
        std::time::Duration::from_secs(15),
    )
    .unwrap();
    // One quick view, one slow one.
    let v = dashboard
        .view(&pei.matched.asset_guid.to_string())
        .await
        .unwrap();
    assert_eq!(v.retry_status, Some(200), "{v:?}");
    cas.state.set_faults(Faults {
        latency_ms: 10_200,
        endpoints: vec!["POST /introspect".into()],
        ..Faults::default()
    });
    let v = dashboard
        .view(&pei.matched.asset_guid.to_string())
        .await
        .unwrap();
    assert_eq!(v.retry_status, Some(200), "{v:?}");
    // A view refused after its challenge (the CAS cannot introspect its RPT) is a view request
    // received: counted, its 401 challenge not.
    cas.state.set_faults(Faults {
        error_rate: 1.0,
        error_status: 500,
        endpoints: vec!["POST /introspect".into()],
        ..Faults::default()
    });
    let v = dashboard
        .view(&pei.matched.asset_guid.to_string())
        .await
        .unwrap();
    assert!(
        v.first_status == 401 && v.retry_status.is_some_and(|s| s >= 500),
        "{v:?}"
    );
    cas.state.set_faults(Faults::default());
    views_recorded(&store, 3).await;
    reporter(&store, &c)
        .submit_day(today(), false, pdp_provider::now_micros())
        .await
        .unwrap();
    let rn = received(&cas, ReportKind::RequestNumber, pei.matched.holdername);
    assert_eq!(rn[0].body["req_count"], 3, "two answered, one refused");
    let rt = received(&cas, ReportKind::ResponseTime, pei.matched.holdername);
    assert_eq!(rt[0].status, 202);
    assert_eq!(rt[0].body["submission_reason"], "initial submission");
    let items = rt[0].body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the slow view: {items:?}");
    let ts = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(items[0][k].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert!(ts("resp_date_ts") - ts("req_date_ts") > 10_000);
    // Other holdernames had no views.
    for h in holdernames(&store, today()).await {
        if h != pei.matched.holdername {
            assert_eq!(
                received(&cas, ReportKind::RequestNumber, h)[0].body["req_count"],
                0
            );
        }
    }
    store.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_planned_window_is_reported_in_service_availability_short_notice_only_as_emergency() {
    let env = Env::new();
    env.with_members(20).await;
    let cas = cas_sim(&env).await;
    let config = config(&env, &cas);
    let store = env.store();
    let calendar = Calendar::by_rule(2020, 2040);
    let day = today();
    let t0 = day_start(day);
    let window = |from: i64, to: i64, reason: &str, emergency: bool| Announcement {
        service: Service::Find,
        holdername: None,
        from,
        to,
        reason: reason.into(),
        emergency,
    };
    // Announced three weeks ahead: scheduled.
    announce(
        &store,
        &calendar,
        Nation::EnglandAndWales,
        window(
            t0 + 60 * MIN,
            t0 + 90 * MIN,
            "Downtime for system update",
            false,
        ),
        t0 - 21 * 1440 * MIN,
    )
    .await
    .unwrap();
    // Announced the day before: refused, unless an emergency (then unscheduled).
    let short = announce(
        &store,
        &calendar,
        Nation::EnglandAndWales,
        window(t0 + 120 * MIN, t0 + 130 * MIN, "Emergency patch", false),
        t0 - 1440 * MIN,
    )
    .await;
    assert!(
        matches!(
            short,
            Err(ReportError::Downtime(DowntimeError::ShortNotice { .. }))
        ),
        "{short:?}"
    );
    announce(
        &store,
        &calendar,
        Nation::EnglandAndWales,
        window(t0 + 120 * MIN, t0 + 130 * MIN, "Emergency patch", true),
        t0 - 1440 * MIN,
    )
    .await
    .unwrap();

    reporter(&store, &config)
        .submit_day(day, false, pdp_provider::now_micros())
        .await
        .unwrap();
    let dt = |m: i64| pdp_provider::datetimestamp(t0 + m * MIN);
    for h in holdernames(&store, day).await {
        let find = received(&cas, ReportKind::FindAvailability, h);
        assert_eq!(find[0].status, 202);
        assert_eq!(find[0].body["submission_reason"], "initial submission");
        assert_eq!(
            find[0].body["items"],
            json!([{ h.to_string(): [
                {"start_date_ts": dt(60), "end_date_ts": dt(90),
                 "unavail_scheduled": true, "unavail_reason": "Downtime for system update"},
                {"start_date_ts": dt(120), "end_date_ts": dt(130),
                 "unavail_scheduled": false, "unavail_reason": "Emergency patch"},
            ]}])
        );
        // The window was for find only.
        let view = received(&cas, ReportKind::ViewAvailability, h);
        assert_eq!(view[0].body["submission_reason"], "null submission");
    }
    // The SLA report lists them, scheduled or not.
    let month = day.format("%Y-%m").to_string();
    let sla = pdp_provider::sla::report(&store, &month, pdp_provider::now_micros(), None)
        .await
        .unwrap();
    let listed: Vec<(bool, i64, &str)> = sla
        .announced_downtime
        .iter()
        .map(|w| (w.scheduled, w.minutes, w.reason.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (true, 30, "Downtime for system update"),
            (false, 10, "Emergency patch")
        ]
    );
    assert!(sla.table().contains("unscheduled"));
    store.close().await;
}

/// Today submitted for 20 members' holdernames with `stubs` scripted at the simulator (as a
/// test harness does), every submission accepted in the end; the holdernames.
async fn a_day_submitted_with(stubs: Value) -> (Env, CasSim, Store, Vec<Uuid>) {
    let env = Env::new();
    env.with_members(20).await;
    let cas = cas_sim(&env).await;
    let config = config(&env, &cas);
    configure(&env, &cas, stubs).await;
    let store = env.store();
    let hs = holdernames(&store, today()).await;
    let out = reporter(&store, &config)
        .submit_day(today(), false, pdp_provider::now_micros())
        .await
        .unwrap();
    assert_eq!(out.accepted as usize, hs.len() * 6, "{out:?}");
    (env, cas, store, hs)
}

/// Every call the simulator received for `kind`, in order.
fn calls_of(cas: &CasSim, kind: ReportKind) -> Vec<Received> {
    cas.state
        .reports
        .received()
        .into_iter()
        .filter(|r| r.kind == kind)
        .collect()
}

#[tokio::test]
async fn a_429_twice_is_retried_with_the_same_record_then_accepted() {
    let (_env, cas, store, hs) = a_day_submitted_with(
        json!([{"endpoint": "/view-response/request-number", "status": 429,
                "code": "TOO_MANY_REQUESTS", "count": 2,
                "errors": [{"code": "TOO_MANY_REQUESTS"}]}]),
    )
    .await;
    let calls = calls_of(&cas, ReportKind::RequestNumber);
    assert_eq!(calls.len(), hs.len() + 2);
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>()[..3],
        [429, 429, 202]
    );
    // The same record each time (one record_id), a new X-Request-ID for every call.
    assert_eq!(calls[0].body, calls[2].body);
    assert_eq!(calls[1].body, calls[2].body);
    let xids: HashSet<_> = calls.iter().map(|c| &c.x_request_id).collect();
    assert_eq!(xids.len(), calls.len());
    let subs = store.submissions(Some(today())).await.unwrap();
    assert!(subs.iter().all(|s| s.state == SubmissionState::Accepted));
    store.close().await;
}

#[tokio::test]
async fn a_2xx_with_an_unreadable_body_is_an_acceptance_and_is_not_sent_again() {
    // A 200 whose body is problem details, not `{"message", "datetimestamp"}`.
    let (_env, cas, store, hs) = a_day_submitted_with(
        json!([{"endpoint": "/view-response/response-time", "status": 200,
                "code": "ODD_ANSWER", "count": 1,
                "errors": [{"code": "ODD_ANSWER"}]}]),
    )
    .await;
    let calls: Vec<u16> = calls_of(&cas, ReportKind::ResponseTime)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(calls.len(), hs.len(), "each record sent once: {calls:?}");
    assert_eq!(calls.iter().filter(|s| **s == 200).count(), 1);
    let subs = store.submissions(Some(today())).await.unwrap();
    let odd: Vec<_> = subs
        .iter()
        .flat_map(|s| &s.parts)
        .filter(|p| p.http_status == Some(200))
        .collect();
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0].state, SubmissionState::Accepted);
    assert_eq!(odd[0].answer, None, "no datetimestamp was read");
    store.close().await;
}

#[tokio::test]
async fn a_refused_submission_is_kept_with_its_problem_and_shown_by_report_status() {
    let env = Env::new();
    env.with_members(20).await;
    let cas = cas_sim(&env).await;
    configure(
        &env,
        &cas,
        json!([{"endpoint": "/view-response/unavailable", "status": 400,
                "code": "BAD_REQUEST", "count": 1,
                "errors": [{"code": "INVALID_RECORD_ID"}]}]),
    )
    .await;
    let file = config_file(&env, &cas, 900);
    let date = today().to_string();
    let out = binary(&["report", "submit", "--date", &date], &file).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["refused"], 1);
    // Refused once: a second run does not send it again.
    let before = cas.state.reports.received().len();
    let again = binary(&["report", "submit", "--date", &date], &file).await;
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(cas.state.reports.received().len(), before);

    let status = binary(&["report", "status", "--since", &date], &file).await;
    assert_eq!(status.status.code(), Some(1), "{status:?}");
    let text = String::from_utf8(status.stdout).unwrap();
    let refused: Vec<&str> = text.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert!(refused[0].contains("/view-response/unavailable"));
    assert!(refused[0].contains("400"));
    assert!(refused[0].contains("INVALID_RECORD_ID"));
    columns_line_up(&text);

    // Corrected and accepted: nothing is outstanding any more; the refusal is listed as
    // superseded.
    let corrected = binary(&["report", "submit", "--date", &date, "--resubmit"], &file).await;
    assert_eq!(corrected.status.code(), Some(0), "{corrected:?}");
    let status = binary(&["report", "status", "--since", &date], &file).await;
    let text = String::from_utf8(status.stdout.clone()).unwrap();
    assert_eq!(status.status.code(), Some(0), "{text}");
    assert!(!text.contains("refused"), "{text}");
    let superseded: Vec<&str> = text.lines().filter(|l| l.contains("superseded")).collect();
    assert_eq!(superseded.len(), 1, "{text}");
    assert!(superseded[0].contains("INVALID_RECORD_ID"));
    columns_line_up(&text);
}

/// Every row of `report status` has its cells under the header's columns: `parts` as
/// `accepted/total`, `submission_id` a UUID or `null`, apart.
fn columns_line_up(text: &str) {
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let at = |name: &str| header.find(&format!("  {name}")).unwrap() + 2;
    let (parts, id, http) = (at("parts"), at("submission_id"), at("http"));
    for l in lines.filter(|l| !l.contains("missing")) {
        let cell = |from: usize, to: usize| l[from..to].trim();
        let (done, total) = cell(parts, id).split_once('/').unwrap();
        assert!(
            done.parse::<u32>().unwrap() <= total.parse::<u32>().unwrap(),
            "{l}"
        );
        let sid = cell(id, http);
        assert!(
            sid == "null" || Uuid::try_parse(sid).is_ok(),
            "{sid:?} in {l}"
        );
    }
}

#[tokio::test]
async fn a_correction_of_a_day_never_submitted_is_refused_and_sends_nothing() {
    let env = Env::new();
    env.with_members(5).await;
    let cas = cas_sim(&env).await;
    let file = config_file(&env, &cas, 900);
    let date = today().to_string();
    let out = binary(&["report", "submit", "--date", &date, "--resubmit"], &file).await;
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("never submitted"), "{stderr}");
    assert!(cas.state.reports.received().is_empty());
    let store = env.store();
    assert!(store.submissions(Some(today())).await.unwrap().is_empty());
    // Submitted, then it can be corrected.
    let first = binary(&["report", "submit", "--date", &date], &file).await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let again = binary(&["report", "submit", "--date", &date, "--resubmit"], &file).await;
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(cas
        .state
        .reports
        .received()
        .iter()
        .any(|r| r.body["submission_status"] == "correction"));
    store.close().await;
}

#[tokio::test]
async fn spent_retries_release_the_claim_so_the_next_run_resumes_it_at_once() {
    let env = Env::new();
    env.with_members(2).await;
    let cas = cas_sim(&env).await;
    let mut c = config(&env, &cas);
    c.reporting.retry_budget_s = 1;
    let store = env.store();
    let hs = holdernames(&store, today()).await;
    configure(
        &env,
        &cas,
        json!([{"endpoint": "/view-response/request-number", "status": 503,
                "code": "SERVICE_UNAVAILABLE", "count": 100000,
                "errors": [{"code": "SERVICE_UNAVAILABLE"}]}]),
    )
    .await;
    let r = reporter(&store, &c);
    let out = r
        .submit_day(today(), false, pdp_provider::now_micros())
        .await
        .unwrap();
    assert_eq!(out.pending as usize, hs.len(), "{out:?}");
    // The same instance again, well within the 900 s lease: its claims were released, so it
    // sends them (not "held by another instance").
    configure(&env, &cas, json!([])).await;
    let again = r
        .submit_day(today(), false, pdp_provider::now_micros())
        .await
        .unwrap();
    assert_eq!(again.busy, 0, "{again:?}");
    assert_eq!(again.accepted as usize, hs.len(), "{again:?}");
    let subs = store.submissions(Some(today())).await.unwrap();
    assert!(subs.iter().all(|s| s.state == SubmissionState::Accepted));
    store.close().await;
}

#[tokio::test]
async fn a_claim_is_renewed_and_released_only_by_its_holder() {
    use pdp_provider::model::{Claim, NewSubmission, SubmissionReason, SubmissionStatus};
    let env = Env::new();
    let store = env.store();
    let submission = NewSubmission {
        holdername: Uuid::new_v4(),
        kind: ReportKind::RequestNumber,
        day: today(),
        submission_id: Some(Uuid::new_v4()),
        status: SubmissionStatus::OnTime,
        reason: SubmissionReason::Initial,
        parts: vec![(Uuid::new_v4(), "{}".into())],
    };
    let lease = std::time::Duration::from_secs(900);
    let Claim::Claimed(s) = store
        .claim_submission(submission.clone(), lease)
        .await
        .unwrap()
    else {
        panic!("not claimed");
    };
    let renewed = store
        .renew_submission_claim(s.key.clone(), s.claimed_at)
        .await
        .unwrap()
        .expect("the holder renews");
    // The old claim time is no longer the claim: a stale holder neither renews nor releases.
    assert_eq!(
        store
            .renew_submission_claim(s.key.clone(), s.claimed_at)
            .await
            .unwrap(),
        None
    );
    store
        .release_submission_claim(s.key.clone(), s.claimed_at)
        .await
        .unwrap();
    assert!(matches!(
        store
            .claim_submission(submission.clone(), lease)
            .await
            .unwrap(),
        Claim::Busy(_)
    ));
    // Released by its holder: claimed again at once.
    store
        .release_submission_claim(s.key.clone(), renewed)
        .await
        .unwrap();
    assert!(matches!(
        store.claim_submission(submission, lease).await.unwrap(),
        Claim::Claimed(_)
    ));
    store.close().await;
}

#[tokio::test]
async fn a_lease_shorter_than_a_parts_retries_is_refused_at_load() {
    let env = Env::new();
    let cas = cas_sim(&env).await;
    // 600 s of retries, then a call begun at its end awaited to its time-out: past 600 s.
    let file = config_file(&env, &cas, 600);
    let out = binary(&["report", "status"], &file).await;
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reporting.lease_s"), "{stderr}");
    let ok = binary(&["report", "status"], &config_file(&env, &cas, 900)).await;
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
}

#[tokio::test]
async fn a_crash_between_send_and_record_never_gives_a_second_initial_submission() {
    let env = Env::new();
    env.with_members(20).await;
    let cas = cas_sim(&env).await;
    let date = today().to_string();
    // The CAS has the first call and has accepted it, and holds its answer: the process is
    // SIGKILLed then, between its send and its record of the answer.
    cas.state
        .reports
        .hold_answers(std::time::Duration::from_secs(60));
    let mut child = command(
        &["report", "submit", "--date", &date],
        &config_file(&env, &cas, 900),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    crate::harness::eventually(|| (!cas.state.reports.received().is_empty()).then_some(())).await;
    child.kill().unwrap();
    child.wait().unwrap();
    cas.state.reports.hold_answers(std::time::Duration::ZERO);
    let first = cas.state.reports.received();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].status, 202);

    // Another instance within the claim's lease leaves it alone.
    let busy = binary(
        &["report", "submit", "--date", &date],
        &config_file(&env, &cas, 900),
    )
    .await;
    assert_eq!(busy.status.code(), Some(1), "{busy:?}");
    let summary: Value = serde_json::from_slice(&busy.stdout).unwrap();
    assert_eq!(summary["busy"], 1);
    let crashed_body = first[0].body.clone();
    let sent_again = |all: &[Received]| {
        all.iter()
            .filter(|r| r.body["record_id"] == crashed_body["record_id"])
            .count()
    };
    assert_eq!(sent_again(&cas.state.reports.received()), 1);

    // Past the lease (an instance whose lease is 0, which only the library allows: a
    // configuration must outlast a part's retries): sent again, identical (same record, same
    // submission, still initial).
    let store = env.store();
    let mut lapsed = config(&env, &cas);
    lapsed.reporting.lease_s = 0;
    let resumed = reporter(&store, &lapsed)
        .submit_day(today(), false, pdp_provider::now_micros())
        .await
        .unwrap();
    assert_eq!(
        (resumed.refused, resumed.pending, resumed.busy),
        (0, 0, 0),
        "{resumed:?}"
    );
    let all = cas.state.reports.received();
    assert_eq!(sent_again(&all), 2);
    let resent: Vec<&Received> = all
        .iter()
        .filter(|r| r.body["record_id"] == crashed_body["record_id"])
        .collect();
    assert_eq!(resent[1].body, crashed_body);
    // Per (holdername, report): one record, never a resubmission.
    let mut records: HashMap<(ReportKind, String), HashSet<String>> = HashMap::new();
    for r in &all {
        assert_ne!(r.body["submission_reason"], "resubmission");
        let h = r.body["holdernameGuid"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| r.body["items"].to_string());
        records
            .entry((r.kind, h))
            .or_default()
            .insert(r.body["record_id"].to_string());
    }
    assert!(records.values().all(|ids| ids.len() == 1), "{records:?}");
    let subs = store.submissions(Some(today())).await.unwrap();
    assert!(subs
        .iter()
        .all(|s| s.state == SubmissionState::Accepted && s.key.attempt == 0));
    assert_eq!(subs.len(), records.len());
    store.close().await;
}

#[tokio::test]
async fn possible_matches_per_holdername_count_how_each_ended_and_how_long_it_took() {
    use pdp_provider::peis::{expire_possible, resolve_possible, Resolution};
    let env = Env::new();
    let members = env.with_members(200).await;
    let cas = cas_sim(&env).await;
    let c = config(&env, &cas);
    let server = Server::start(c.clone()).await;
    let store = env.store();
    let mut finds = Vec::new();
    for i in 0..4 {
        let id = Uuid::new_v4().to_string();
        crate::harness::post_find(
            &env.pfs(),
            &server.url("/find-requests"),
            &id,
            &crate::harness::find_for(member_with(&members[i * 20..], 1), FindKind::Possible),
        )
        .await;
        env.ended(&id).await;
        finds.push(store.peis_for_request(&id).await.unwrap());
    }
    let total: usize = finds.iter().map(Vec::len).sum();
    let client = CasClient::new(&c.cas, store.clone()).unwrap();
    let guid = |i: usize| finds[i][0].matched.asset_guid.to_string();
    resolve_possible(&store, &client, &guid(0), Resolution::Yes)
        .await
        .unwrap();
    resolve_possible(&store, &client, &guid(1), Resolution::No)
        .await
        .unwrap();
    // Unreviewed for two days, past a one-day window: match-timeout.
    env.sql()
        .execute(
            "UPDATE peis SET created_at = ?2 WHERE pei = ?1",
            rusqlite::params![
                finds[2][0].matched.pei,
                pdp_provider::now_micros() - 2 * 1440 * MIN
            ],
        )
        .unwrap();
    assert_eq!(expire_possible(&store, &client, 1).await.unwrap(), 1);

    let from = day_start(today() - chrono::Days::new(3));
    let to = day_start(today() + chrono::Days::new(1));
    let rows = pdp_provider::report::possible::report(&store, from, to)
        .await
        .unwrap();
    let sum = |f: fn(&pdp_provider::report::possible::PossibleMatches) -> u64| {
        rows.iter().map(f).sum::<u64>()
    };
    assert_eq!(sum(|r| r.total) as usize, total);
    assert_eq!(
        (sum(|r| r.yes), sum(|r| r.no), sum(|r| r.timed_out)),
        (1, 1, 1)
    );
    assert_eq!(sum(|r| r.open) as usize, total - 3);
    let durations: Vec<u64> = rows
        .iter()
        .flat_map(|r| r.resolution_seconds.clone())
        .collect();
    assert_eq!(durations.len(), 3);
    // The timed-out one took two days; the others moments.
    assert!(durations.iter().any(|s| *s >= 2 * 86_400 - 60));
    // Only holdernames of these finds, each its own row.
    let hs: HashSet<Uuid> = finds
        .iter()
        .flatten()
        .map(|p| p.matched.holdername)
        .collect();
    assert_eq!(rows.len(), hs.len());
    store.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_daily_run_sends_yesterday_on_time_and_missed_days_late_once_and_nothing_before_go_live(
) {
    let env = Env::new();
    env.with_members(20).await;
    let cas = cas_sim(&env).await;
    let mut config = config(&env, &cas);
    config.reporting.catch_up_days = 5;
    let store = env.store();
    let hs = holdernames(&store, today()).await;
    let yesterday = today() - chrono::Days::new(1);
    // Live since three days ago: of the five days it looks back on, two are before go-live.
    let live = today() - chrono::Days::new(3);
    let r = Reporter {
        go_live: Some(pdp_provider::config::GoLive(live)),
        ..reporter(&store, &config)
    };
    let now = pdp_provider::now_micros();
    assert!(pdp_provider::report::schedule::run_due(&r, yesterday, now)
        .await
        .unwrap());
    let sent = cas.state.reports.received();
    // Three days (go-live, the day after, yesterday), six reports each, per holdername.
    assert_eq!(sent.len(), 3 * 6 * hs.len());
    assert!(sent.iter().all(|r| r.status == 202), "{sent:?}");
    for r in received(&cas, ReportKind::RequestNumber, hs[0]) {
        let start = r.body["reporting_period_start"]
            .as_str()
            .unwrap()
            .to_owned();
        let expected = if start.starts_with(&yesterday.to_string()) {
            "on time"
        } else {
            "late"
        };
        assert_eq!(r.body["submission_status"], expected, "{start}");
        assert!(!start.starts_with(&(live - chrono::Days::new(1)).to_string()));
    }
    // The next minute's run (or another instance's) finds every day answered: nothing sent.
    assert!(pdp_provider::report::schedule::run_due(&r, yesterday, now)
        .await
        .unwrap());
    assert_eq!(cas.state.reports.received().len(), sent.len());
    store.close().await;
}

#[tokio::test]
async fn report_preview_prints_each_body_for_one_holdername_and_sends_and_keeps_nothing() {
    let env = Env::new();
    env.with_members(20).await;
    let cas = cas_sim(&env).await;
    let file = config_file(&env, &cas, 900);
    let store = env.store();
    let hs = holdernames(&store, today()).await;
    store.close().await;
    let date = today().to_string();
    let h = hs[0].to_string();
    let out = binary(
        &["report", "preview", "--date", &date, "--holdername", &h],
        &file,
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with("# POST ")).collect();
    assert_eq!(heads.len(), 6, "{text}");
    assert!(heads.iter().all(|l| l.contains(&h)), "{text}");
    assert!(text.contains("\"reporting_period_start\""));
    assert!(cas.state.reports.received().is_empty());
    assert!(env.store().submissions(None).await.unwrap().is_empty());
}

/// The simulator's reporting API over its mTLS listener answers as the stub's Spring
/// application: wrong `Content-Type` `415` and a bad `X-Request-ID` `400` with Spring's default
/// body (not problem details), `submission_id: null` on request-number accepted (the yaml's
/// examples), a body fault `400` problem details with the stub's code.
#[tokio::test]
async fn the_simulators_reporting_api_answers_as_the_stub_over_the_wire() {
    let env = Env::new();
    let cas = cas_sim(&env).await;
    let client = env.client(files::PROVIDER, files::PROVIDER_KEY);
    let url = format!("{}/view-response/request-number", cas.base_url());
    let body = json!({"holdernameGuid": "816f82b5-8e4f-407b-8c54-afb179c4af5a",
        "record_id": "6ac7f2a5-d518-44bf-9dff-ec5bf7e46e06", "submission_id": null,
        "submission_status": "on time", "reporting_period_start": "2025-03-19T00:00:00.000Z",
        "submission_reason": "initial submission", "req_count": 5});
    let send = |content_type: &'static str, xid: Option<String>, body: Value| {
        let mut req = client
            .post(&url)
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(x) = xid {
            req = req.header("x-request-id", x);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let media = r.headers()["content-type"].to_str().unwrap().to_owned();
            (status, media, r.json::<Value>().await.unwrap())
        }
    };
    let xid = || Some(Uuid::new_v4().to_string());

    let (status, media, answer) = send("text/plain", xid(), body.clone()).await;
    assert_eq!(
        (status, media.as_str()),
        (415, "application/json"),
        "{answer}"
    );
    assert_eq!(answer["path"], "/view-response/request-number");
    assert!(answer.get("type").is_none() && answer.get("errors").is_none());

    let (status, _, answer) = send("application/json", None, body.clone()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.get("errors").is_none(), "Spring's body: {answer}");
    let simple = Some("35cfcfb0d98d451f83f1e59933078555".to_owned());
    assert_eq!(send("application/json", simple, body.clone()).await.0, 400);

    let (status, _, answer) = send("application/json", xid(), body.clone()).await;
    assert_eq!(
        status, 202,
        "submission_id null is the yaml's own example: {answer}"
    );

    let mut bad = body.clone();
    bad["record_id"] = json!("6ac7f2a56d5184bf9dffec5bf7e46e06");
    let (status, media, answer) = send("application/json", xid(), bad).await;
    assert_eq!((status, media.as_str()), (400, "application/problem+json"));
    assert_eq!(answer["errors"][0]["code"], "INVALID_RECORD_ID");
    let mut late = body;
    late["reporting_period_start"] = json!("2025-03-19T25:00:00.000Z");
    let (_, _, answer) = send("application/json", xid(), late).await;
    assert_eq!(
        answer["errors"][0]["code"],
        "INVALID_REPORTING_PERIOD_START"
    );
}
