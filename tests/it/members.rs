//! Member data that changes while the endpoint serves: imports and deltas take effect without a
//! restart, removed pensions are de-registered and stop being served, schemes are suspended,
//! resumed and severed. `members import` over the real binary: refused under a data key that
//! does not open the store, and refusing to move a pension between members without
//! `--move-pensions`.

use pdp_provider::members::generate::FindKind;
use pdp_provider::members::import::{import_from_async, Options, Report};
use pdp_provider::members::record::MemberRecord;
use pdp_provider::store::{FindOutcome, PeiState, SchemeState, Store};
use pdp_provider::tls::pki::files;
use pdp_sim::cas::CasSim;
use pdp_sim::dashboard::Dashboard;

use crate::harness::{cas_sim, find_for, member_with, post_find, Env, Server};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Writes `lines` (records or `{"action": ...}` lines) as a JSON-lines file; returns its path.
fn write_file(env: &Env, name: &str, lines: &[serde_json::Value]) -> std::path::PathBuf {
    let path = env.dir.path().join(name);
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&path, text.join("\n")).unwrap();
    path
}

fn record(m: &MemberRecord) -> serde_json::Value {
    serde_json::to_value(m).unwrap()
}

async fn import(
    env: &Env,
    store: &Store,
    name: &str,
    lines: &[serde_json::Value],
    options: Options,
) -> Report {
    let path = write_file(env, name, lines);
    import_from_async(&path, store, options).await.unwrap()
}

/// Waits until the server's match index has applied every change in the store.
async fn index_current(server: &Server, store: &Store) {
    let want = store.data_version().await.unwrap();
    let url = format!("http://{}/data-version", server.ops_addr);
    for _ in 0..500 {
        let v: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if v["applied"].as_i64().unwrap() >= want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the match index did not catch up with version {want}");
}

/// A generated member with a new identity, so that nothing already stored matches it.
fn fresh(members: &[MemberRecord], i: usize) -> MemberRecord {
    let mut m = member_with(members, 1).clone();
    m.member_id = format!("NEW{i}");
    m.nino = Some(format!("ZY12345{i}B"));
    m.date_of_birth = format!("1958-02-0{}", i + 1);
    for p in &mut m.pensions {
        p.asset_guid = uuid::Uuid::new_v4();
    }
    m
}

/// 100 members, the CAS simulator, a server that applies member changes every 50 ms, and a
/// store handle beside it.
async fn live_server() -> (Env, Vec<MemberRecord>, CasSim, Server, Store) {
    let env = Env::new();
    let members = env.with_members(100).await;
    let cas = cas_sim(&env).await;
    let mut config = env.config_with_cas(&cas);
    config.matching.refresh_ms = 50;
    let server = Server::start(config).await;
    crate::harness::publish_jwks(&server, &cas).await;
    let store = env.store();
    (env, members, cas, server, store)
}

fn dashboard(env: &Env, server: &Server, cas: &CasSim) -> Dashboard {
    Dashboard::new(
        &server.url(""),
        &cas.base_url(),
        &env.cert(files::CA),
        &env.cert(files::DASHBOARD),
        &env.cert(files::DASHBOARD_KEY),
    )
    .unwrap()
}

/// A CAS client of the provider's, outside the server (as operator commands have).
fn cas_client(env: &Env, cas: &CasSim) -> pdp_provider::cas::client::CasClient {
    pdp_provider::cas::client::CasClient::new(
        &env.config_with_cas(cas).cas,
        crate::harness::side_store(env),
    )
    .unwrap()
}

async fn outcome_of(env: &Env, server: &Server, m: &MemberRecord) -> Option<FindOutcome> {
    let id = new_id();
    let resp = post_find(
        &env.pfs(),
        &server.url("/find-requests"),
        &id,
        &find_for(m, FindKind::Yes),
    )
    .await;
    assert_eq!(resp.status(), 202);
    env.ended(&id).await.outcome
}

#[tokio::test]
async fn imports_and_removals_take_effect_while_serving() {
    let (env, members, cas, server, store) = live_server().await;

    // A member imported while the server runs is matched without a restart.
    let newcomer = fresh(&members, 0);
    assert_eq!(
        outcome_of(&env, &server, &newcomer).await,
        Some(FindOutcome::NoMatch)
    );
    let r = import(
        &env,
        &store,
        "add.jsonl",
        &[record(&newcomer)],
        Options::default(),
    )
    .await;
    assert_eq!((r.added, r.updated, r.unchanged), (1, 0, 0));
    index_current(&server, &store).await;
    assert_eq!(
        outcome_of(&env, &server, &newcomer).await,
        Some(FindOutcome::MatchYes)
    );
    let peis = store.peis().await.unwrap();
    let pei = peis
        .iter()
        .find(|p| p.matched.member_id == newcomer.member_id)
        .expect("registered")
        .clone();
    let dashboard = dashboard(&env, &server, &cas);
    assert_eq!(
        dashboard
            .view(&pei.matched.asset_guid.to_string())
            .await
            .unwrap()
            .retry_status,
        Some(200)
    );

    // The same file again changes nothing.
    let r = import(
        &env,
        &store,
        "add.jsonl",
        &[record(&newcomer)],
        Options::default(),
    )
    .await;
    assert_eq!((r.added, r.updated, r.unchanged), (0, 0, 1));

    // A changed identity is re-indexed: the old NINO no longer finds the member, the new one does.
    let mut moved = newcomer.clone();
    moved.nino = Some("ZY999999B".into());
    moved.date_of_birth = "1958-03-03".into();
    let r = import(
        &env,
        &store,
        "update.jsonl",
        &[record(&moved)],
        Options::default(),
    )
    .await;
    assert_eq!(r.updated, 1);
    index_current(&server, &store).await;
    assert_eq!(
        outcome_of(&env, &server, &newcomer).await,
        Some(FindOutcome::NoMatch)
    );
    assert_eq!(
        outcome_of(&env, &server, &moved).await,
        Some(FindOutcome::MatchYes)
    );

    // Removed: its PeI is de-registered as asset-removed, its view 404s, and it no longer matches.
    let remove = serde_json::json!({"action": "remove", "memberId": newcomer.member_id});
    let dry = import(
        &env,
        &store,
        "remove.jsonl",
        std::slice::from_ref(&remove),
        Options {
            dry_run: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(
        (dry.removed, dry.removed_pensions.len()),
        (1, newcomer.pensions.len())
    );
    assert_eq!(
        store.member_ids(None).await.unwrap().len(),
        101,
        "a dry run keeps everything"
    );
    let r = import(&env, &store, "remove.jsonl", &[remove], Options::default()).await;
    assert_eq!(r.removed, 1);
    let client = cas_client(&env, &cas);
    // Not served from the removal on; the sweep tells the CAS.
    let marked = store
        .pei_by_asset_guid(pei.matched.asset_guid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marked.state, PeiState::Deregistering);
    assert_eq!(
        dashboard
            .view(&pei.matched.asset_guid.to_string())
            .await
            .unwrap()
            .first_status,
        404
    );
    let n = pdp_provider::peis::sweep(&store, &client).await.unwrap();
    assert_eq!(n, newcomer.pensions.len() as u64);
    let at_cas = cas
        .state
        .registrations()
        .into_iter()
        .find(|reg| reg.name == pei.matched.pei)
        .unwrap();
    assert_eq!(at_cas.deleted.as_deref(), Some("asset-removed"));
    assert_eq!(
        dashboard
            .view(&pei.matched.asset_guid.to_string())
            .await
            .unwrap()
            .first_status,
        404
    );
    index_current(&server, &store).await;
    assert_eq!(
        outcome_of(&env, &server, &moved).await,
        Some(FindOutcome::NoMatch)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_snapshot_removes_the_absent_unless_records_were_refused() {
    let env = Env::new();
    let members = env.with_members(20).await;
    let store = env.store();
    let keep: Vec<serde_json::Value> = members[..15].iter().map(record).collect();
    let mut with_bad = keep.clone();
    with_bad.push(serde_json::json!({"memberId": "BROKEN"}));
    let snapshot = Options {
        snapshot: true,
        ..Options::default()
    };
    let r = import(&env, &store, "bad.jsonl", &with_bad, snapshot).await;
    assert!(r.snapshot_withheld);
    assert_eq!((r.unchanged, r.removed, r.errors.len()), (15, 0, 1));
    let dry = import(
        &env,
        &store,
        "snap.jsonl",
        &keep,
        Options {
            dry_run: true,
            ..snapshot
        },
    )
    .await;
    assert_eq!(dry.removed, 5);
    assert_eq!(store.member_ids(None).await.unwrap().len(), 20);
    let r = import(&env, &store, "snap.jsonl", &keep, snapshot).await;
    assert_eq!((r.unchanged, r.removed), (15, 5));
    assert_eq!(store.member_ids(None).await.unwrap().len(), 15);
}

#[tokio::test]
async fn a_scheme_is_suspended_resumed_and_severed() {
    let (env, members, cas, server, store) = live_server().await;
    let m = member_with(&members, 1);
    let h = m.holdername;
    assert_eq!(
        outcome_of(&env, &server, m).await,
        Some(FindOutcome::MatchYes)
    );
    let pei = store
        .peis()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.matched.member_id == m.member_id)
        .unwrap();
    let dashboard = dashboard(&env, &server, &cas);
    let guid = pei.matched.asset_guid.to_string();

    // Suspended: views 404 at once, finds no longer match its members.
    pdp_provider::schemes::set(&store, h, SchemeState::Suspended)
        .await
        .unwrap();
    assert_eq!(dashboard.view(&guid).await.unwrap().first_status, 404);
    index_current(&server, &store).await;
    assert_eq!(
        outcome_of(&env, &server, m).await,
        Some(FindOutcome::NoMatch)
    );
    // Resumed: served and matched again.
    pdp_provider::schemes::set(&store, h, SchemeState::Active)
        .await
        .unwrap();
    assert_eq!(dashboard.view(&guid).await.unwrap().retry_status, Some(200));
    index_current(&server, &store).await;
    assert_eq!(
        outcome_of(&env, &server, m).await,
        Some(FindOutcome::MatchYes)
    );

    // Severed: PeIs de-registered, members of the scheme gone, others untouched.
    let client = cas_client(&env, &cas);
    let before = store.member_ids(None).await.unwrap().len();
    let in_scheme = store.member_ids(Some(h)).await.unwrap().len();
    let out = pdp_provider::schemes::sever(&store, &client, h)
        .await
        .unwrap();
    assert_eq!(out.failed, 0);
    assert!(out.deregistered >= 1);
    assert_eq!(out.members_removed as usize, in_scheme);
    assert_eq!(
        store.member_ids(None).await.unwrap().len(),
        before - in_scheme
    );
    let p = store
        .pei_by_asset_guid(pei.matched.asset_guid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.state, PeiState::Deregistered);
    assert_eq!(dashboard.view(&guid).await.unwrap().first_status, 404);
    // Audited as operator actions.
    let actions: Vec<String> = store
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.direction == pdp_provider::audit::Direction::Operator)
        .map(|a| a.outcome)
        .collect();
    assert_eq!(actions, ["suspended", "active", "severed"]);
    server.stop().await;
}

/// A config file for the real binary: this environment's store, `data_key` as its data key, and
/// the CAS simulator `cas` when given.
fn config_file(env: &Env, data_key: &std::path::Path, cas: Option<&CasSim>) -> std::path::PathBuf {
    let c = match cas {
        Some(cas) => env.config_with_cas(cas),
        None => env.config(),
    };
    let path = env.dir.path().join(format!("import-{}.toml", new_id()));
    let toml = format!(
        "[store]\npath = {:?}\n[crypto]\ndata_key_file = {:?}\n\
         [view]\nsigning_key = {:?}\ncalendar = {:?}\n\
         [cas]\nbase_url = {:?}\nclient_cert = {:?}\nclient_key = {:?}\nca = {:?}\n",
        c.store.path,
        data_key,
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

/// `pdp-provider members import FILE --config CONFIG [extra]`, run off the runtime (the
/// simulator answers it from this test's runtime).
async fn members_import(
    file: &std::path::Path,
    config: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pdp-provider"));
    cmd.args(["members", "import"])
        .arg(file)
        .args(extra)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn members_import_under_another_data_key_is_refused_and_writes_nothing() {
    let env = Env::new();
    let members = env.with_members(20).await;
    let right = env.cert(files::DATA_KEY);
    let other = env.dir.path().join("other.key");
    let other_hex = pdp_provider::sealed::DataKey::generate_hex();
    std::fs::write(&other, &other_hex).unwrap();
    let mut changed = members[0].clone();
    changed.names[0].given_name = "CHANGED".into();
    let file = write_file(&env, "changed.jsonl", &[record(&changed)]);

    let store = env.store();
    let version = store.data_version().await.unwrap();
    let out = members_import(&file, &config_file(&env, &other, None), &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&other.display().to_string()), "{stderr}");
    assert!(stderr.contains("32 of 32 stored values"), "{stderr}");
    assert!(stderr.contains("nothing imported"), "{stderr}");
    assert!(!stderr.contains(&other_hex) && !text(&out.stdout).contains(&other_hex));
    assert_eq!(
        store.data_version().await.unwrap(),
        version,
        "nothing written"
    );

    // Back on the right key: every member reads, the changed record was never written, and
    // the same import now goes through.
    assert_eq!(store.key_sample(1000).await.unwrap().failed, 0);
    let stored = store
        .member_record(&changed.member_id)
        .await
        .unwrap()
        .unwrap();
    let stored: pdp_provider::members::record::MatchRecord =
        serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored.names[0].given_name, members[0].names[0].given_name);
    let out = members_import(&file, &config_file(&env, &right, None), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 updated"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(store.key_sample(1000).await.unwrap().failed, 0);
}

#[tokio::test]
async fn members_import_refuses_to_move_a_pension_unless_told_and_then_deregisters_it() {
    let (env, members, cas, server, store) = live_server().await;
    let owner = member_with(&members, 1).clone();
    assert_eq!(
        outcome_of(&env, &server, &owner).await,
        Some(FindOutcome::MatchYes)
    );
    let pei = store
        .peis()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.matched.member_id == owner.member_id)
        .expect("registered");
    let guid = pei.matched.asset_guid;
    let dashboard = dashboard(&env, &server, &cas);
    let view = |d: &Dashboard| {
        let d = d.clone();
        async move { d.view(&guid.to_string()).await.unwrap() }
    };
    let view = move || view(&dashboard);
    assert_eq!(view().await.retry_status, Some(200));

    // Another member with the owner's asset GUID: refused for that record, naming both.
    let mut taker = fresh(&members, 0);
    let i = owner
        .pensions
        .iter()
        .position(|p| p.asset_guid == guid)
        .unwrap();
    taker.pensions[0] = owner.pensions[i].clone();
    let file = write_file(&env, "taker.jsonl", &[record(&taker)]);
    let config = config_file(&env, &env.cert(files::DATA_KEY), Some(&cas));
    let out = members_import(&file, &config, &[]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "line 1: pensions[0].assetGuid: the pension is member {}'s; --move-pensions moves it \
             to member {}",
            owner.member_id, taker.member_id
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&guid.to_string()),
        "never the value: {stderr}"
    );
    assert!(stdout.contains("0 added"), "{stdout}");
    assert_eq!(
        store.pension(guid).await.unwrap().unwrap().member_id,
        owner.member_id
    );
    assert_eq!(view().await.retry_status, Some(200));
    assert_eq!(
        store.pei_by_asset_guid(guid).await.unwrap().unwrap().state,
        PeiState::Registered
    );

    // With --move-pensions: the owner's PeI is de-registered (asset-removed) at the CAS, the
    // pension is the taker's, and the owner no longer matches for it.
    let out = members_import(&file, &config, &["--move-pensions"]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "line 1: pensions[0].assetGuid: moved from member {} to member {}",
            owner.member_id, taker.member_id
        )),
        "{stdout}"
    );
    assert!(stdout.contains("1 added"), "{stdout}");
    assert!(stdout.contains("1 pensions moved"), "{stdout}");
    assert_eq!(
        store.pei_by_asset_guid(guid).await.unwrap().unwrap().state,
        PeiState::Deregistered
    );
    let at_cas = cas
        .state
        .registrations()
        .into_iter()
        .find(|reg| reg.name == pei.matched.pei)
        .unwrap();
    assert_eq!(at_cas.deleted.as_deref(), Some("asset-removed"));
    assert_eq!(view().await.first_status, 404);
    assert_eq!(
        store.pension(guid).await.unwrap().unwrap().member_id,
        taker.member_id
    );
    index_current(&server, &store).await;
    let stored = store
        .member_record(&owner.member_id)
        .await
        .unwrap()
        .unwrap();
    let stored: pdp_provider::members::record::MatchRecord =
        serde_json::from_slice(&stored).unwrap();
    assert!(stored.pensions.iter().all(|p| p.asset_guid != guid));
    assert_eq!(
        outcome_of(&env, &server, &taker).await,
        Some(FindOutcome::MatchYes)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_moved_pension_is_refused_then_moved_on_postgresql() {
    let env = Env::postgres().await;
    let members = env.with_members(5).await;
    let store = env.open_store().await;
    let owner = member_with(&members, 1).clone();
    let mut taker = fresh(&members, 0);
    taker.pensions[0] = owner.pensions[0].clone();
    let guid = owner.pensions[0].asset_guid;
    let r = import(
        &env,
        &store,
        "t.jsonl",
        &[record(&taker)],
        Options::default(),
    )
    .await;
    assert_eq!((r.added, r.errors.len(), r.moved.len()), (0, 1, 0));
    assert_eq!(
        store.pension(guid).await.unwrap().unwrap().member_id,
        owner.member_id
    );
    let moving = Options {
        move_pensions: true,
        ..Options::default()
    };
    let r = import(&env, &store, "t.jsonl", &[record(&taker)], moving).await;
    assert_eq!((r.added, r.errors.len(), r.moved.len()), (1, 0, 1));
    assert_eq!(
        store.pension(guid).await.unwrap().unwrap().member_id,
        taker.member_id
    );
    let stored = store
        .member_record(&owner.member_id)
        .await
        .unwrap()
        .unwrap();
    let stored: pdp_provider::members::record::MatchRecord =
        serde_json::from_slice(&stored).unwrap();
    assert!(stored.pensions.iter().all(|p| p.asset_guid != guid));
    // The owner's old record again is refused now: the pension is the taker's.
    let r = import(
        &env,
        &store,
        "o.jsonl",
        &[record(&owner)],
        Options::default(),
    )
    .await;
    assert_eq!((r.updated, r.errors.len()), (0, 1));
    store.close().await;
}
