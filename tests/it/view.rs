use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::members::record::MemberRecord;
use pdp_provider::store::StoredPei;
use pdp_provider::tls::pki::files;
use pdp_sim::cas::{CasSim, Faults};
use pdp_sim::dashboard::{Dashboard, ViewOutcome};

use crate::harness::{cas_sim, member_with, post_find, Env, Server};

struct Setup {
    env: Env,
    cas: CasSim,
    server: Server,
    members: Vec<MemberRecord>,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(tweak: impl FnOnce(&mut pdp_provider::config::Config)) -> Setup {
    setup_on(Env::new(), tweak).await
}

async fn setup_on(env: Env, tweak: impl FnOnce(&mut pdp_provider::config::Config)) -> Setup {
    let members = env.with_members(200).await;
    let cas = cas_sim(&env).await;
    let mut config = env.config_with_cas(&cas);
    tweak(&mut config);
    let server = Server::start(config).await;
    // PDP publishes the provider's signing key at the CAS jwk_uri at onboarding.
    crate::harness::publish_jwks(&server, &cas).await;
    Setup {
        env,
        cas,
        server,
        members,
    }
}

impl Setup {
    fn dashboard(&self) -> Dashboard {
        Dashboard::new(
            &self.server.url(""),
            &self.cas.base_url(),
            &self.env.cert(files::CA),
            &self.env.cert(files::DASHBOARD),
            &self.env.cert(files::DASHBOARD_KEY),
        )
        .unwrap()
    }

    /// Sends a find for `m` and waits for its PeIs to be registered.
    async fn registered(&self, m: &MemberRecord, kind: FindKind) -> Vec<StoredPei> {
        let id = uuid::Uuid::new_v4().to_string();
        let body = find_for(m, kind, &uuid::Uuid::new_v4().to_string());
        post_find(
            &self.env.pfs(),
            &self.server.url("/find-requests"),
            &id,
            &body,
        )
        .await;
        self.env.ended(&id).await;
        self.env
            .open_store()
            .await
            .peis_for_request(&id)
            .await
            .unwrap()
    }

    /// One view as MaPS performs it; a payload it receives must be valid against the data
    /// standard's own schema.
    async fn view(&self, asset_guid: &str) -> ViewOutcome {
        checked(self.dashboard().view(asset_guid).await.unwrap())
    }

    /// A definite match registered, then viewed as MaPS does with the view data URL registered
    /// at `path`: its asset GUID and the outcome.
    async fn view_registered_at(&self, path: &str) -> (String, ViewOutcome) {
        let peis = self
            .registered(member_with(&self.members, 1), FindKind::Yes)
            .await;
        let guid = peis[0].matched.asset_guid.to_string();
        let dashboard = self.dashboard().with_view_url(&self.server.url(path));
        let v = checked(dashboard.view(&guid).await.unwrap());
        (guid, v)
    }

    fn calls(&self, endpoint: &str) -> usize {
        self.cas
            .state
            .calls()
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .count()
    }
}

/// Fails on a received `view_data` that MaPS' `ViewDataPayload.json` refuses.
fn checked(v: ViewOutcome) -> ViewOutcome {
    if let Some(view_data) = &v.view_data {
        let errors = pdp_provider::wire::view::schema_errors(view_data);
        assert!(
            errors.is_empty(),
            "the schema refuses the payload: {errors:#?}"
        );
    }
    v
}

#[tokio::test]
async fn a_definite_match_is_served_through_the_uma_flow_as_maps_calls_it() {
    a_definite_match_is_served(setup().await).await
}

#[tokio::test]
async fn a_definite_match_is_served_through_the_uma_flow_on_postgres() {
    a_definite_match_is_served(setup_on(Env::postgres().await, |_| {}).await).await
}

async fn a_definite_match_is_served(s: Setup) {
    let m = member_with(&s.members, 1);
    let peis = s.registered(m, FindKind::Yes).await;
    let pei = &peis[0];
    let v = s.view(&pei.matched.asset_guid.to_string()).await;
    assert_eq!(v.first_status, 401);
    let (ticket, as_uri) = v.challenge.clone().unwrap();
    assert_eq!(as_uri, format!("{}/token", s.cas.base_url()));
    assert!(!ticket.is_empty());
    assert_eq!(v.retry_status, Some(200));
    let claims = v.claims.unwrap();
    assert_eq!(claims["sub"], pei.matched.pei.as_str());
    assert_eq!(claims["iss"], "pdp-provider");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    let view_data = v.view_data.unwrap();
    let a = &view_data["arrangements"][0];
    assert_eq!(a["possibleMatch"], false);
    let stored = m
        .pensions
        .iter()
        .find(|p| p.asset_guid == pei.matched.pension_asset_guid)
        .unwrap();
    assert_eq!(
        a["pensionProviderSchemeName"],
        stored.view_data["pensionProviderSchemeName"]
    );
    assert_eq!(
        a["pensionAdministrator"],
        stored.view_data["pensionAdministrator"]
    );
    // The view, its ticket and its introspection are joinable with the find by its ID.
    let store = s.env.open_store().await;
    let audit = loop {
        let a = store
            .audit_records(0, i64::MAX, Some(pei.request_id.clone()))
            .await
            .unwrap();
        if a.iter().filter(|a| a.endpoint == "GET /view-data").count() == 2 {
            break a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(audit
        .iter()
        .any(|a| a.endpoint == "POST /perm" && a.status == 201));
    assert!(audit
        .iter()
        .any(|a| a.endpoint == "POST /introspect" && a.status == 200));
    let metrics = s.server.metrics().await;
    assert!(
        metrics.contains(&format!(
            "pdp_views_total{{outcome=\"challenge\",holdername=\"{}\"}}",
            pei.matched.holdername
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "pdp_view_seconds_bucket{{outcome=\"served\",holdername=\"{}\",le=\"2\"}}",
            pei.matched.holdername
        )),
        "{metrics}"
    );
    s.server.stop().await;
}

#[tokio::test]
async fn es256_view_data_tokens_verify_as_maps_checks_them() {
    let env = Env::new();
    let key = env.dir.path().join("view-signing-p256.key");
    std::fs::write(
        &key,
        pdp_provider::view_data::token::generate_ec_pem().unwrap(),
    )
    .unwrap();
    let s = setup_on(env, |c| {
        c.view.algorithm = "ES256".into();
        c.view.signing_key = key;
    })
    .await;
    let peis = s
        .registered(member_with(&s.members, 1), FindKind::Yes)
        .await;
    let v = s.view(&peis[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.retry_status, Some(200), "{v:?}");
    // The dashboard verified it against the EC key published at the CAS.
    assert_eq!(v.claims.unwrap()["sub"], peis[0].matched.pei.as_str());
    let jwks: serde_json::Value = reqwest::get(format!("http://{}/jwks.json", s.server.ops_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    s.server.stop().await;
}

#[tokio::test]
async fn a_possible_match_is_served_in_its_limited_shape() {
    let s = setup().await;
    let m = member_with(&s.members, 1);
    let peis = s.registered(m, FindKind::Possible).await;
    let v = s.view(&peis[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.retry_status, Some(200));
    let a = &v.view_data.unwrap()["arrangements"][0];
    assert_eq!(a["possibleMatch"], true);
    let mut keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "pensionAdministrator",
            "pensionProviderSchemeName",
            "possibleMatch",
            "possibleMatchReference"
        ]
    );
    s.server.stop().await;
}

#[tokio::test]
async fn every_refusal_has_its_status() {
    let s = setup().await;
    let m = member_with(&s.members, 1);
    let peis = s.registered(m, FindKind::Yes).await;
    let guid = &peis[0].matched.asset_guid;
    let client = s.env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    let get = |path: String, xid: Option<String>, bearer: &str| {
        let mut r = client
            .get(s.server.url(&path))
            .header("Authorization", format!("Bearer {bearer}"));
        if let Some(x) = xid {
            r = r.header("X-Request-ID", x);
        }
        r.send()
    };
    let id = || Some(uuid::Uuid::new_v4().to_string());
    let perms_before = s.calls("POST /perm");
    // 400s.
    assert_eq!(
        get(format!("/view-data/{guid}?scope=owner"), None, "")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        get("/view-data/not-a-guid?scope=owner".into(), id(), "")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        get(format!("/view-data/{guid}?scope=value"), id(), "")
            .await
            .unwrap()
            .status(),
        400
    );
    // 404 for an unknown PeI, without calling the CAS.
    let unknown = uuid::Uuid::new_v4();
    let r = get(format!("/view-data/{unknown}?scope=owner"), id(), "")
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(s.calls("POST /perm"), perms_before);
    // A garbage RPT gets a fresh ticket.
    let r = get(format!("/view-data/{guid}?scope=owner"), id(), "not-an-rpt")
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("ticket=\""));
    // An RPT for another PeI is insufficient for this one.
    let other = s
        .registered(member_with(&s.members[10..], 1), FindKind::Yes)
        .await;
    let d = s.dashboard();
    let first = get(
        format!("/view-data/{}?scope=owner", other[0].matched.asset_guid),
        id(),
        "",
    )
    .await
    .unwrap();
    let header = first.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let ticket = pdp_sim::dashboard::split_param(&header, "ticket=").unwrap();
    let rpt_for_other = d.rpt(&ticket).await.unwrap();
    let r = get(
        format!("/view-data/{guid}?scope=owner"),
        id(),
        &rpt_for_other,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    // Wrong method.
    let r = client
        .post(s.server.url(&format!("/view-data/{guid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    s.server.stop().await;
}

#[tokio::test]
async fn stale_values_are_pending_dcc_and_dbc_with_due_dates() {
    let s = setup().await;
    // Two members whose values come from statements two years old: one DC, one DB.
    let mut stale = Vec::new();
    for (i, kind) in [(0usize, "DC"), (1, "DB")] {
        let mut m = member_with(&s.members[i * 20..], 1).clone();
        m.member_id = format!("STALE{i}");
        // A person of their own, so the find matches this record only.
        m.nino = Some(format!("ZX12345{i}A"));
        m.date_of_birth = format!("1961-01-0{}", i + 1);
        m.pensions.truncate(1);
        m.pensions[0].asset_guid = uuid::Uuid::new_v4();
        m.pensions[0].view_data["pensionType"] = kind.into();
        m.pensions[0].statement_date =
            Some(chrono::Utc::now().date_naive() - chrono::Days::new(730));
        stale.push(m);
    }
    let path = s.env.dir.path().join("stale.jsonl");
    let lines: Vec<String> = stale
        .iter()
        .map(|m| serde_json::to_string(m).unwrap())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    // Restart so the index holds them.
    s.server.stop().await;
    let store = s.env.store();
    pdp_provider::members::import::import_from_async(&path, &store, Default::default())
        .await
        .unwrap();
    let server = Server::start(s.env.config_with_cas(&s.cas)).await;
    let s = Setup { server, ..s };
    let calendar =
        pdp_provider::view_data::working_days::Calendar::load(&s.env.config().view.calendar)
            .unwrap();
    for (m, reason, days) in [(&stale[0], "DCC", 3), (&stale[1], "DBC", 10)] {
        let peis = s.registered(m, FindKind::Yes).await;
        assert_eq!(peis.len(), 1);
        let v = s.view(&peis[0].matched.asset_guid.to_string()).await;
        assert_eq!(v.retry_status, Some(200));
        let vd = v.view_data.unwrap();
        for c in vd["arrangements"][0]["benefitIllustrations"][0]["illustrationComponents"]
            .as_array()
            .unwrap()
        {
            assert_eq!(c["unavailableReason"], reason);
            assert!(c.get("payableDetails").is_none());
        }
        let calc = s
            .env
            .store()
            .calculations()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.pei == peis[0].matched.pei)
            .expect("calculation recorded");
        assert_eq!(calc.kind.as_str(), reason);
        let registered = chrono::Utc::now().date_naive();
        assert_eq!(calc.started_on, registered);
        assert_eq!(
            calc.due_on,
            calendar.add_working_days(Default::default(), registered, days)
        );
    }
    // Importing calculated values closes the calculation and serves the values.
    let dc = &stale[0].pensions[0];
    let q = s.env.store();
    let line = serde_json::json!({
        "assetGuid": dc.asset_guid,
        "calculationDate": chrono::Utc::now().date_naive(),
        "benefitIllustrations": dc.view_data["benefitIllustrations"],
    })
    .to_string();
    let bad = line.replace("\"ERI\"", "\"XYZ\"");
    let refused = pdp_provider::view_data::values::import_line(&q, &bad)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        refused,
        "benefitIllustrations[0].illustrationComponents[0]: \
         has none of the shapes the standard allows here"
    );
    assert_eq!(
        pdp_provider::view_data::values::import_line(&q, &line)
            .await
            .unwrap(),
        1
    );
    assert!(q
        .calculations()
        .await
        .unwrap()
        .iter()
        .any(|c| c.completed_at.is_some()));
    let pei = q
        .peis()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.matched.pension_asset_guid == dc.asset_guid)
        .unwrap();
    let v = s.view(&pei.matched.asset_guid.to_string()).await;
    let c = &v.view_data.unwrap()["arrangements"][0]["benefitIllustrations"][0]
        ["illustrationComponents"][0];
    assert!(c.get("unavailableReason").is_none());
    assert!(c.get("payableDetails").is_some());
    s.server.stop().await;
}

async fn cas_client(s: &Setup) -> pdp_provider::cas::client::CasClient {
    let store = crate::harness::side_store(&s.env);
    pdp_provider::cas::client::CasClient::new(&s.env.config_with_cas(&s.cas).cas, store).unwrap()
}

#[tokio::test]
async fn de_registration_stops_views_with_a_valid_or_an_expired_pat() {
    use pdp_provider::peis::{deregister, DeletionReason, Deregistered};
    let s = setup().await;
    let cas = cas_client(&s).await;
    let queue = s.env.store();
    // Valid PAT: deleted at the CAS, 404 from then on.
    let a = s
        .registered(member_with(&s.members, 1), FindKind::Yes)
        .await;
    let wrong = deregister(
        &queue,
        &cas,
        &a[0].matched.asset_guid.to_string(),
        DeletionReason::MatchNo,
    )
    .await;
    assert!(wrong.is_err(), "match-no is for possible matches");
    let out = deregister(
        &queue,
        &cas,
        &a[0].matched.asset_guid.to_string(),
        DeletionReason::AssetRemoved,
    )
    .await
    .unwrap();
    assert_eq!(out, Deregistered::Done);
    let gone = s
        .cas
        .state
        .registrations()
        .into_iter()
        .find(|r| r.name == a[0].matched.pei)
        .unwrap();
    assert_eq!(gone.deleted.as_deref(), Some("asset-removed"));
    let v = s.view(&a[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.first_status, 404);
    // Expired PAT: flagged, never served, counted.
    let b = s
        .registered(member_with(&s.members[30..], 1), FindKind::Yes)
        .await;
    s.cas
        .state
        .expire_pat(&s.cas.state.pat_of(&b[0].matched.pei).unwrap());
    let out = deregister(
        &queue,
        &cas,
        &b[0].matched.asset_guid.to_string(),
        DeletionReason::MatchWithdrawn,
    )
    .await
    .unwrap();
    assert_eq!(out, Deregistered::FlaggedPatExpired);
    let perms = s.calls("POST /perm");
    let v = s.view(&b[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.first_status, 404);
    assert_eq!(
        s.calls("POST /perm"),
        perms,
        "a flagged PeI costs no CAS call"
    );
    assert_eq!(queue.flagged().await.unwrap().len(), 1);
    assert!(s
        .server
        .metrics()
        .await
        .contains("pdp_deregistrations_pending 1"));
    s.server.stop().await;
}

#[tokio::test]
async fn a_de_registration_the_cas_cannot_take_stops_views_at_once_and_finishes_later() {
    use pdp_provider::peis::{deregister, DeletionReason, Deregistered};
    let s = setup().await;
    let cas = cas_client(&s).await;
    let queue = s.env.store();
    let p = s
        .registered(member_with(&s.members, 1), FindKind::Yes)
        .await;
    s.cas.state.set_faults(Faults {
        outage_ms: 60_000,
        endpoints: vec!["DELETE /rreguri".into()],
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let out = deregister(
        &queue,
        &cas,
        &p[0].matched.asset_guid.to_string(),
        DeletionReason::AssetRemoved,
    )
    .await;
    assert!(out.is_err(), "{out:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    // Never served again, although the CAS still holds it.
    assert_eq!(
        s.view(&p[0].matched.asset_guid.to_string())
            .await
            .first_status,
        404
    );
    s.cas.state.set_faults(Faults::default());
    let out = deregister(
        &queue,
        &cas,
        &p[0].matched.asset_guid.to_string(),
        DeletionReason::AssetRemoved,
    )
    .await;
    assert_eq!(out.unwrap(), Deregistered::Done);
    s.server.stop().await;
}

#[tokio::test]
async fn a_de_registration_during_the_cas_round_trips_stops_that_very_view() {
    let s = setup().await;
    let p = s
        .registered(member_with(&s.members, 1), FindKind::Yes)
        .await;
    let asset = p[0].matched.asset_guid.to_string();
    // The RPT's introspection takes 1.5 s; the PeI is de-registered while it runs.
    s.cas.state.set_faults(Faults {
        latency_ms: 1_500,
        endpoints: vec!["POST /introspect".into()],
        ..Faults::default()
    });
    let dashboard = s.dashboard();
    // The provider's own token exchanges (UAT to PAT) came before.
    let tokens = s.calls("POST /token");
    let view = tokio::spawn(async move { dashboard.view(&asset).await.unwrap() });
    // The dashboard has its RPT (so the provider's introspection is under way): de-register
    // well inside the 1.5 s the introspection then takes.
    let waited = std::time::Instant::now();
    while s.calls("POST /token") == tokens {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(5),
            "no RPT"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        s.calls("POST /introspect"),
        0,
        "the introspection is still running"
    );
    s.env
        .store()
        .mark_deregistering(&p[0].matched.pei, "asset-removed")
        .await
        .unwrap();
    let v = view.await.unwrap();
    assert_eq!(v.first_status, 401, "challenged before the de-registration");
    assert_eq!(v.retry_status, Some(404), "{v:?}");
    assert!(v.view_data.is_none());
    s.cas.state.set_faults(Faults::default());
    s.server.stop().await;
}

#[tokio::test]
async fn pat_refresh_replaces_the_stored_pat() {
    let s = setup().await;
    let peis = s
        .registered(member_with(&s.members, 1), FindKind::Yes)
        .await;
    let old = s.cas.state.pat_of(&peis[0].matched.pei).unwrap();
    let new = s.cas.state.rotate_pat(&old).unwrap();
    // Until the provider hears of it, the CAS refuses the old PAT: the view cannot get a ticket.
    let v = s.view(&peis[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.first_status, 503);
    let cas_client = s.env.client(files::CAS_CLIENT, files::CAS_CLIENT_KEY);
    let refresh = |body: serde_json::Value| {
        cas_client
            .post(s.server.url("/pat-refresh"))
            .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
            .json(&body)
            .send()
    };
    let sha = |t: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()));
    assert_eq!(
        refresh(serde_json::json!({"pat": new, "previous_pat_sha256": sha("unknown")}))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        refresh(serde_json::json!({"pat": "x", "previous_pat_sha256": "zz"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        refresh(serde_json::json!({"pat": new, "previous_pat_sha256": sha(&old)}))
            .await
            .unwrap()
            .status(),
        204
    );
    let v = s.view(&peis[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.retry_status, Some(200));
    s.server.stop().await;
}

#[tokio::test]
async fn a_cas_down_or_slow_gives_a_prompt_503_with_retry_after() {
    let s = setup().await;
    let peis = s
        .registered(member_with(&s.members, 1), FindKind::Yes)
        .await;
    s.cas.state.set_faults(Faults {
        outage_ms: 60_000,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let v = s.view(&peis[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.first_status, 503);
    assert_eq!(v.retry_after.as_deref(), Some("2"));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Slow past the ticket time-out (2 s): 503 inside the 5 s budget, never a hang.
    s.cas.state.set_faults(Faults {
        latency_ms: 4_000,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let v = s.view(&peis[0].matched.asset_guid.to_string()).await;
    assert_eq!(v.first_status, 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    s.server.stop().await;
}

#[tokio::test]
async fn possible_matches_are_resolved_yes_no_or_timed_out() {
    use pdp_provider::peis::{expire_possible, resolve_possible, Resolution};
    let s = setup().await;
    let cas = cas_client(&s).await;
    let queue = s.env.store();
    let yes = s
        .registered(member_with(&s.members, 1), FindKind::Possible)
        .await;
    let no = s
        .registered(member_with(&s.members[20..], 1), FindKind::Possible)
        .await;
    let stale = s
        .registered(member_with(&s.members[40..], 1), FindKind::Possible)
        .await;
    let at_cas = |pei: &str| {
        s.cas
            .state
            .registrations()
            .into_iter()
            .find(|r| r.name == pei)
            .unwrap()
    };

    // Yes: PATCH to match-yes at the CAS; the view now shows the definite arrangement.
    resolve_possible(
        &queue,
        &cas,
        &yes[0].matched.asset_guid.to_string(),
        Resolution::Yes,
    )
    .await
    .unwrap();
    assert_eq!(at_cas(&yes[0].matched.pei).match_status, "match-yes");
    let v = s.view(&yes[0].matched.asset_guid.to_string()).await;
    assert_eq!(
        v.view_data.unwrap()["arrangements"][0]["possibleMatch"],
        false
    );
    // A definite match cannot be resolved again.
    assert!(resolve_possible(
        &queue,
        &cas,
        &yes[0].matched.asset_guid.to_string(),
        Resolution::No
    )
    .await
    .is_err());

    // No: de-registered with match-no; never served again.
    resolve_possible(
        &queue,
        &cas,
        &no[0].matched.asset_guid.to_string(),
        Resolution::No,
    )
    .await
    .unwrap();
    assert_eq!(
        at_cas(&no[0].matched.pei).deleted.as_deref(),
        Some("match-no")
    );
    assert_eq!(
        s.view(&no[0].matched.asset_guid.to_string())
            .await
            .first_status,
        404
    );

    // Unreviewed past the window: match-timeout; the fresh ones are left alone.
    assert_eq!(expire_possible(&queue, &cas, 30).await.unwrap(), 0);
    s.env
        .sql()
        .execute(
            "UPDATE peis SET created_at = 0 WHERE pei = ?1",
            [&stale[0].matched.pei],
        )
        .unwrap();
    assert_eq!(expire_possible(&queue, &cas, 30).await.unwrap(), 1);
    assert_eq!(
        at_cas(&stale[0].matched.pei).deleted.as_deref(),
        Some("match-timeout")
    );
    s.server.stop().await;
}

#[tokio::test]
async fn the_view_sits_under_the_registered_path_and_challenges_in_one_header() {
    // As MaPS' dashboard calls (wire contract §3.2): it builds `<registered view data
    // URL>/<assetGuid>`, its first call carries no Authorization header, and it joins every
    // WWW-Authenticate header it gets.
    let s = setup_with(|c| c.view.path = "/pensions/v1/view-data".into()).await;
    let (guid, v) = s.view_registered_at("/pensions/v1/view-data").await;
    assert_eq!(v.first_status, 401);
    assert_eq!(v.challenge_headers, 1);
    assert_eq!(v.retry_status, Some(200));
    assert!(v.view_data.is_some());
    // The default path is not served under another registration.
    let v = s.view(&guid).await;
    assert_eq!(v.first_status, 404);
    s.server.stop().await;
}

#[tokio::test]
async fn a_view_data_url_registered_at_the_root_is_served_beside_the_find_endpoint() {
    let s = setup_with(|c| c.view.path = "/".into()).await;
    // The find endpoint keeps its own path.
    let (_, v) = s.view_registered_at("").await;
    assert_eq!((v.first_status, v.retry_status), (401, Some(200)));
    assert!(v.view_data.is_some());
    // Other paths are still no endpoint at all.
    let dashboard = s.env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    for path in ["/", "/favicon.ico/x", "/find-requests/"] {
        let r = dashboard.get(s.server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    s.server.stop().await;
}
