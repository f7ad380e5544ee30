use pdp_provider::matching::{pei, pei_asset_guid, MatchStatus};
use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::store::{FindOutcome, FindState, PeiState};
use pdp_sim::cas::Faults;

use crate::harness::{cas_sim, member_with, post_find, Env, Server};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn yes_possible_and_no_end_to_end() {
    yes_possible_and_no(Env::new()).await
}

#[tokio::test]
async fn yes_possible_and_no_end_to_end_on_postgres() {
    yes_possible_and_no(Env::postgres().await).await
}

async fn yes_possible_and_no(env: Env) {
    let members = env.with_members(300).await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    let url = server.url("/find-requests");
    let m = member_with(&members, 1);

    let (yes, possible, no) = (new_id(), new_id(), new_id());
    let (sub_yes, sub_possible) = (new_id(), new_id());
    for (id, kind, sub) in [
        (&yes, FindKind::Yes, &sub_yes),
        (&possible, FindKind::Possible, &sub_possible),
        (&no, FindKind::No, &new_id()),
    ] {
        let resp = post_find(&env.pfs(), &url, id, &find_for(m, kind, sub)).await;
        assert_eq!(resp.status(), 202);
    }
    for (id, outcome) in [
        (&yes, "match-yes"),
        (&possible, "match-possible"),
        (&no, "no-match"),
    ] {
        let f = env.ended(id).await;
        assert_eq!(
            (f.state.as_str(), f.outcome.map(|o| o.as_str())),
            ("done", Some(outcome)),
            "{id}"
        );
        assert!(!f.has_find_data, "find data kept after the end");
    }

    let regs = cas.state.registrations();
    assert_eq!(regs.len(), 2 * m.pensions.len());
    // The control listener's log, read on from a cursor as the load tool's poller does.
    let (log, next) = cas.state.registered_since(0);
    assert_eq!((log.len(), next), (regs.len(), regs.len()));
    assert!(log
        .iter()
        .all(|r| r.inbound_request_id == yes || r.inbound_request_id == possible));
    assert_eq!(cas.state.registered_since(1).0.len(), regs.len() - 1);
    let (none, next) = cas.state.registered_since(regs.len() + 5);
    assert!(none.is_empty());
    assert_eq!(next, regs.len());
    for p in &m.pensions {
        let scheme = p.view_data["pensionProviderSchemeName"].as_str().unwrap();
        // The definite match uses the pension's own asset GUID...
        let yes_pei = pei(m.holdername, p.asset_guid);
        let r = regs
            .iter()
            .find(|r| r.name == yes_pei)
            .expect("yes PeI registered");
        assert_eq!(r.match_status, "match-yes");
        assert_eq!(r.description, scheme);
        assert_eq!(r.inbound_request_id, yes);
        assert_eq!(r.resource_scopes, ["value", "owner", "delegate"]);
        // ...the possible match a GUID derived from the pension and the user.
        let asset = pei_asset_guid(MatchStatus::Possible, p.asset_guid, &sub_possible);
        let r = regs
            .iter()
            .find(|r| r.name == pei(m.holdername, asset))
            .expect("possible PeI registered");
        assert_eq!(r.match_status, "match-possible");
    }
    // Nothing at all was sent for the no-match.
    assert!(regs.iter().all(|r| r.inbound_request_id != no));

    // Stored locally with reasons and the rules version; PATs sealed.
    let queue = env.open_store().await;
    let peis = queue.peis_for_request(&possible).await.unwrap();
    assert!(peis
        .iter()
        .all(|p| p.state == PeiState::Registered && p.matched.reason == "family_name_mismatch"));
    assert!(peis
        .iter()
        .all(|p| p.resource_id.as_ref().is_some_and(|r| r.len() == 37)));
    // Every outbound call is audited against its find request.
    let audit = queue
        .audit_records(0, i64::MAX, Some(yes.to_string()))
        .await
        .unwrap();
    let endpoints: Vec<&str> = audit.iter().map(|a| a.endpoint.as_str()).collect();
    assert!(endpoints.contains(&"POST /find-requests"));
    assert!(endpoints.contains(&"POST /token"));
    assert_eq!(
        endpoints.iter().filter(|e| **e == "POST /rreguri").count(),
        m.pensions.len()
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("pdp_finds_completed_total{outcome=\"no-match\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "pdp_find_completion_seconds_bucket{{holdername=\"{}\",le=\"15\"}}",
            m.holdername
        )),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn several_pensions_of_one_member_are_each_registered() {
    let env = Env::new();
    let members = env.with_members(300).await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    let m = member_with(&members, 3);
    let id = new_id();
    post_find(
        &env.pfs(),
        &server.url("/find-requests"),
        &id,
        &find_for(m, FindKind::Yes, &new_id()),
    )
    .await;
    env.ended(&id).await;
    let peis = env.store().peis_for_request(&id).await.unwrap();
    assert_eq!(peis.len(), 3);
    let mut guids: Vec<_> = peis
        .iter()
        .map(|p| p.matched.asset_guid.to_string())
        .collect();
    guids.sort();
    let mut want: Vec<_> = m
        .pensions
        .iter()
        .map(|p| p.asset_guid.to_string())
        .collect();
    want.sort();
    assert_eq!(guids, want);
    assert_eq!(cas.state.registrations().len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn a_cas_outage_of_5s_is_ridden_out_within_the_budget() {
    let env = Env::new();
    let members = env.with_members(100).await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    cas.state.set_faults(Faults {
        outage_ms: 5_000,
        ..Faults::default()
    });
    let m = member_with(&members, 1);
    let id = new_id();
    post_find(
        &env.pfs(),
        &server.url("/find-requests"),
        &id,
        &find_for(m, FindKind::Yes, &new_id()),
    )
    .await;
    let f = env.ended(&id).await;
    assert_eq!(
        (f.state.as_str(), f.outcome.map(|o| o.as_str())),
        ("done", Some("match-yes"))
    );
    let took = f.completed_ms().unwrap();
    assert!(
        (5_000.0..60_000.0).contains(&took),
        "completed after {took} ms"
    );
    assert_eq!(cas.state.registrations().len(), m.pensions.len());
    // The 503s were retried, each with a new X-Request-ID.
    let calls = cas.state.calls();
    let token_calls: Vec<_> = calls
        .iter()
        .filter(|c| c.endpoint == "POST /token")
        .collect();
    assert!(token_calls.iter().filter(|c| c.status == 503).count() >= 2);
    let mut ids: Vec<_> = token_calls.iter().map(|c| c.x_request_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), token_calls.len(), "an X-Request-ID was reused");
    assert!(server
        .metrics()
        .await
        .contains("pdp_cas_retries_total{endpoint=\"POST /token\"}"));
    server.stop().await;
}

#[tokio::test]
async fn a_cas_down_past_the_budget_fails_the_find_visibly() {
    let env = Env::new();
    let members = env.with_members(100).await;
    let cas = cas_sim(&env).await;
    let mut config = env.config_with_cas(&cas);
    config.workers.completion_budget_ms = 1_500;
    let server = Server::start(config).await;
    cas.state.set_faults(Faults {
        outage_ms: 60_000,
        ..Faults::default()
    });
    let m = member_with(&members, 1);
    let id = new_id();
    post_find(
        &env.pfs(),
        &server.url("/find-requests"),
        &id,
        &find_for(m, FindKind::Yes, &new_id()),
    )
    .await;
    let f = env.ended(&id).await;
    assert_eq!(f.state, FindState::Failed);
    assert_eq!(f.reason.as_deref(), Some("token: budget_exhausted"));
    assert!(!f.has_find_data);
    let failed = env.store().failed().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].request_id, id);
    let metrics = server.metrics().await;
    // Counted by the reason's class; the step stays in the store.
    let failed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pdp_finds_failed_total{reason=\"budget_exhausted\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(failed >= 1.0, "{metrics}");
    assert!(cas.state.registrations().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_duplicate_find_registers_once() {
    let env = Env::new();
    let members = env.with_members(100).await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    let m = member_with(&members, 1);
    let id = new_id();
    let sub = new_id();
    let body = find_for(m, FindKind::Yes, &sub);
    let url = server.url("/find-requests");
    for _ in 0..3 {
        assert_eq!(post_find(&env.pfs(), &url, &id, &body).await.status(), 202);
    }
    env.ended(&id).await;
    // The same user searching again (a new find request) does not create new resources either.
    let again = new_id();
    post_find(&env.pfs(), &url, &again, &find_for(m, FindKind::Yes, &sub)).await;
    assert_eq!(env.ended(&again).await.outcome, Some(FindOutcome::MatchYes));
    assert_eq!(cas.state.registrations().len(), m.pensions.len());
    let created = cas
        .state
        .calls()
        .iter()
        .filter(|c| c.endpoint == "POST /rreguri" && c.status == 201)
        .count();
    assert_eq!(created, m.pensions.len());
    server.stop().await;
}

#[tokio::test]
async fn a_crash_between_the_cas_201_and_the_local_commit_does_not_duplicate() {
    let env = Env::new();
    let members = env.with_members(100).await;
    let cas = cas_sim(&env).await;
    let m = member_with(&members, 1);
    let sub = new_id();
    let body = find_for(m, FindKind::Yes, &sub);
    // Before the crash: the PeI was created at the CAS with this user's PAT, and the provider
    // never recorded it.
    let client = pdp_provider::cas::client::CasClient::new(
        &env.config_with_cas(&cas).cas,
        crate::harness::side_store(&env),
    )
    .unwrap();
    let uat = pdp_provider::wire::find::parse(&serde_json::to_vec(&body).unwrap())
        .unwrap()
        .uat;
    let pat = client.token(&uat, "pre-crash").await.unwrap();
    let the_pei = pei(m.holdername, m.pensions[0].asset_guid);
    let first = client
        .register(&pat, &the_pei, "scheme", MatchStatus::Yes, "pre-crash")
        .await
        .unwrap();

    let server = Server::start(env.config_with_cas(&cas)).await;
    let id = new_id();
    post_find(&env.pfs(), &server.url("/find-requests"), &id, &body).await;
    env.ended(&id).await;
    let stored = env.store().peis_for_request(&id).await.unwrap();
    let p = stored.iter().find(|p| p.matched.pei == the_pei).unwrap();
    assert_eq!(p.resource_id.as_deref(), Some(first.as_str()));
    assert_eq!(
        cas.state
            .registrations()
            .iter()
            .filter(|r| r.name == the_pei)
            .count(),
        1
    );
    server.stop().await;
}

/// A UAT without `sub` (as the stub's are): a definite match needs none (its PeI is the
/// pension's own GUID) and is registered; a possible match's PeI derives from it, so that find
/// fails visibly as `uat_no_sub`, nothing registered for it.
#[tokio::test]
async fn a_uat_without_sub_registers_a_definite_match_and_fails_a_possible_one() {
    let env = Env::new();
    let members = env.with_members(100).await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    let m = member_with(&members, 1);
    // One of the stub's users: the simulator swaps its UAT for that user's PAT.
    let user = pdp_sim::magic::USERS
        .iter()
        .find(|u| u.name == "Happy path user 01")
        .unwrap();
    let uat: pdp_provider::wire::find::Uat =
        serde_json::from_value(serde_json::json!(user.uat)).unwrap();
    assert_eq!(uat.subject(), None, "the stub's UAT has no sub");
    let url = server.url("/find-requests");
    let mut ended = Vec::new();
    for kind in [FindKind::Yes, FindKind::Possible] {
        let mut body = find_for(m, kind, "ignored");
        body["uat"] = serde_json::Value::String(user.uat.to_owned());
        let id = new_id();
        assert_eq!(post_find(&env.pfs(), &url, &id, &body).await.status(), 202);
        ended.push(env.ended(&id).await);
    }
    assert_eq!(
        ended[0].outcome,
        Some(FindOutcome::MatchYes),
        "{:?}",
        ended[0].reason
    );
    assert_eq!(ended[1].state, FindState::Failed);
    assert_eq!(ended[1].reason.as_deref(), Some("uat_no_sub"));
    assert_eq!(cas.state.registrations().len(), m.pensions.len());
    server.stop().await;
}
