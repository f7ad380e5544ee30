//! The console's work pages over real sockets: possible matches decided beside what the searcher
//! entered (kept sealed until resolved or timed out, then deleted), the audit export's filter,
//! refusals and stream, the overview's counts, the schemes page; and headless Chromium doing the
//! same through the pages, taking the screenshots in `docs/console/`.

use std::time::Duration;

use pdp_provider::members::generate::FindKind;
use pdp_provider::members::record::MemberRecord;
use pdp_provider::store::console::Role;
use pdp_provider::store::StoredPei;
use pdp_provider::tls::pki::files;

use crate::console::{chromium_with, setup, spki_hash, Browser, Setup, PASSWORD};
use crate::harness::*;

/// Sends a find for `m` in which the searcher gave `family` as their family name (so it is a
/// possible match, carried by the NINO); the possible match and the body sent.
async fn searched(s: &Setup, m: &MemberRecord, family: &str) -> (StoredPei, serde_json::Value) {
    let (peis, body) = searched_all(s, m, family).await;
    (peis.into_iter().next().unwrap(), body)
}

/// As [`searched`]: every PeI the find registered (one per pension of the member).
async fn searched_all(
    s: &Setup,
    m: &MemberRecord,
    family: &str,
) -> (Vec<StoredPei>, serde_json::Value) {
    let mut body = find_for(m, FindKind::Possible);
    body["findData"]["names"][0]["familyName"] = family.into();
    let id = uuid::Uuid::new_v4().to_string();
    post_find(&s.env.pfs(), &s.server.url("/find-requests"), &id, &body).await;
    s.env.ended(&id).await;
    let peis = s.env.store().peis_for_request(&id).await.unwrap();
    assert!(!peis.is_empty(), "a possible match registered");
    (peis, body)
}

/// The audit records of the console with their endpoint and request ID.
async fn console_audit(s: &Setup) -> Vec<(String, String, String, Option<String>)> {
    s.env
        .store()
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.party.starts_with("console:"))
        .map(|r| (r.party, r.endpoint, r.outcome, r.request_id))
        .collect()
}

/// `pairs` as a form-encoded query, as the console writes them.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("https://localhost/").unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_owned()
}

/// `pei=<urn>` as an audit record's endpoint names it.
fn pei_target(pei: &str) -> String {
    query(&[("pei", pei)])
}

#[tokio::test]
async fn a_possible_match_is_decided_beside_the_searchers_data_kept_sealed_until_resolved() {
    let s = setup().await;
    let (m1, m2, m3) = (
        member_with(&s.members, 1),
        member_with(&s.members[20..], 1),
        member_with(&s.members[40..], 1),
    );
    let (all1, _) = searched_all(&s, m1, "Searchedone").await;
    let (all2, _) = searched_all(&s, m2, "Searchedtwo").await;
    let (all3, _) = searched_all(&s, m3, "Searchedthree").await;
    let (yes, no, late) = (all1[0].clone(), all2[0].clone(), all3[0].clone());
    let store = s.env.store();
    let urns = |p: &[&StoredPei]| p.iter().map(|p| p.matched.pei.clone()).collect::<Vec<_>>();
    // Kept for each open possible match (one per pension), sealed: the searcher's name is nowhere
    // in the clear.
    let every: Vec<&StoredPei> = all1.iter().chain(&all2).chain(&all3).collect();
    let total = every.len();
    let kept = store.searcher_data(urns(&every)).await.unwrap();
    assert_eq!(kept.len(), total);
    assert!(String::from_utf8_lossy(&kept[0].1).contains("Searchedone"));
    let sealed: Vec<Vec<u8>> = {
        let sql = s.env.sql();
        let mut st = sql
            .prepare("SELECT sealed FROM possible_match_searches")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(sealed.len(), total);
    for b in &sealed {
        assert!(!String::from_utf8_lossy(b).contains("Searched"));
    }

    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    let page = b.get("/possible-matches").await;
    assert_eq!(page.status, 200);
    // Each row names its pension, and shows what the searcher entered, masked.
    for p in [&yes, &no, &late] {
        assert!(page
            .body
            .contains(&p.matched.pension_asset_guid.to_string()));
        assert!(page.body.contains(&p.matched.scheme_name));
    }
    assert!(page.body.contains("S••••••••••"), "{}", page.body);
    assert!(!page.body.contains("Searchedone"));
    let nino = m1.nino.clone().unwrap();
    assert!(!page.body.contains(&nino));
    // Searched by NINO (spaces and case aside) or by name, ours or the searcher's.
    let spaced = format!("{} {}", &nino[..2].to_lowercase(), &nino[2..]);
    let found = b
        .get(&format!("/possible-matches?{}", query(&[("q", &spaced)])))
        .await;
    assert!(found.body.contains(&yes.matched.asset_guid.to_string()));
    assert!(!found.body.contains(&no.matched.asset_guid.to_string()));
    let found = b.get("/possible-matches?q=searchedtwo").await;
    assert!(found.body.contains(&no.matched.asset_guid.to_string()));
    assert!(!found.body.contains(&yes.matched.asset_guid.to_string()));
    let family = &m3.names[0].family_name;
    let found = b
        .get(&format!("/possible-matches?{}", query(&[("q", family)])))
        .await;
    assert!(found.body.contains(&late.matched.asset_guid.to_string()));

    // Revealed in full, beside our record: audited with the PeI and the find request ID.
    let csrf = Browser::csrf(&page);
    let guid = yes.matched.asset_guid.to_string();
    let r = b
        .post(
            "/possible-matches/reveal",
            &[("csrf", &csrf), ("asset_guid", &guid)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Searchedone") && r.body.contains(&nino));
    assert!(r.body.contains(&m1.names[0].family_name));
    assert!(console_audit(&s)
        .await
        .iter()
        .any(|(who, endpoint, o, rid)| who == "console:pbc"
            && o == "reveal"
            && endpoint.ends_with(&pei_target(&yes.matched.pei))
            && rid.as_deref() == Some(yes.request_id.as_str())));

    // Yes or no asks first, saying what it does; nothing reaches the CAS before the confirmation.
    let r = b
        .post(
            "/possible-matches/resolve",
            &[("csrf", &csrf), ("asset_guid", &guid), ("as", "yes")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Confirm: yes") && r.body.contains("match-yes"));
    let patched = || {
        s.cas
            .state
            .calls()
            .iter()
            .filter(|c| c.endpoint.starts_with("PATCH"))
            .count()
    };
    assert_eq!(patched(), 0);
    for (p, decision) in [(&yes, "yes"), (&no, "no")] {
        let r = b
            .post(
                "/possible-matches/resolve",
                &[
                    ("csrf", &csrf),
                    ("asset_guid", &p.matched.asset_guid.to_string()),
                    ("as", decision),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
    }
    assert_eq!(patched(), 1);
    // The trail names each PeI with its decision.
    let audit = console_audit(&s).await;
    for (p, outcome, decision) in [(&yes, "resolved-yes", "yes"), (&no, "resolved-no", "no")] {
        let target = format!("{}&decision={decision}", pei_target(&p.matched.pei));
        assert!(
            audit
                .iter()
                .any(|(_, e, o, _)| o == outcome && e.ends_with(&target)),
            "{target} not audited: {audit:?}"
        );
    }
    // Resolved: their searchers' data is gone; the open one's is still kept.
    assert_eq!(
        store
            .searcher_data(urns(&[&yes, &no, &late]))
            .await
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        std::slice::from_ref(&late.matched.pei)
    );
    assert_eq!(
        store.searcher_data_kept().await.unwrap() as usize,
        total - 2
    );

    // Timed out: gone as well.
    let long_ago = pdp_provider::now_micros() - 40 * 86_400_000_000;
    s.env
        .sql()
        .execute(
            "UPDATE peis SET created_at = ?2, registered_at = ?2 WHERE pei = ?1",
            rusqlite::params![late.matched.pei, long_ago],
        )
        .unwrap();
    let cas = pdp_provider::cas::client::CasClient::new(
        &s.env.config_with_cas(&s.cas).cas,
        store.clone(),
    )
    .unwrap();
    assert_eq!(
        pdp_provider::peis::expire_possible(&store, &cas, 30)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.searcher_data_kept().await.unwrap() as usize,
        total - 3
    );
    s.server.stop().await;
}

#[tokio::test]
async fn the_audit_export_keeps_to_its_filter_refuses_bad_dates_and_streams_every_page() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    assert_eq!(
        b.save_user("sec", &[Role::SecurityLead], "").await.status,
        303
    );
    // Two finds, and more records of one of them than a page of the stream holds.
    let (one, _) = searched(&s, member_with(&s.members, 1), "Searchedone").await;
    searched(&s, member_with(&s.members[20..], 1), "Searchedtwo").await;
    let store = s.env.store();
    let now = pdp_provider::now_micros();
    for i in 0..2_345 {
        store.audit(pdp_provider::audit::AuditRecord {
            transaction_id: uuid::Uuid::new_v4().to_string(),
            request_id: Some(one.request_id.clone()),
            direction: pdp_provider::audit::Direction::Outbound,
            party: "cas".into(),
            endpoint: "GET /test".into(),
            received_at: now - 1_000_000 + i,
            responded_at: now - 1_000_000 + i,
            status: 200,
            outcome: format!("filler {i}"),
        });
    }
    store.flush().await;

    let mut sec = Browser::new(&s.env, &s.server);
    assert!(sec.sign_in("sec", PASSWORD).await.signed_in());
    let form = sec.get("/audit").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"request_id\""));
    let today = chrono::Utc::now().date_naive();
    let path = format!(
        "/audit.csv?from={}&to={today}&request_id={}",
        today - chrono::Days::new(1),
        one.request_id
    );
    let r = sec
        .http
        .get(format!("{}{path}", sec.base))
        .header("cookie", sec.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed, not one buffer: {:?}",
        r.headers()
    );
    let csv = r.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let want = store
        .audit_records(0, i64::MAX, Some(one.request_id.clone()))
        .await
        .unwrap();
    assert!(want.len() > 2_345);
    assert_eq!(rows.len(), want.len());
    for (row, rec) in rows.iter().zip(&want) {
        assert_eq!(&row[0], rec.transaction_id);
        assert_eq!(&row[1], one.request_id);
    }
    let all = store.audit_records(0, i64::MAX, None).await.unwrap();
    assert!(all.len() > rows.len(), "the filter kept some records out");
    // The export itself is audited with its filter.
    assert!(console_audit(&s)
        .await
        .iter()
        .any(|(who, e, o, _)| who == "console:sec"
            && o == "audit_exported"
            && e.contains(&format!("request_id={}", one.request_id))));

    // Bad dates, or a range backwards, are refused saying why.
    for (q, says) in [
        ("from=2026-13-01", "not a date"),
        ("to=yesterday", "not a date"),
        ("from=2026-12-05&to=2026-12-01", "is before"),
        ("request_id=a%20b", "request ID"),
    ] {
        let r = sec.get(&format!("/audit.csv?{q}")).await;
        assert_eq!(r.status, 422, "{q}");
        assert!(r.body.contains(says), "{q}: {}", r.body);
    }
    s.server.stop().await;
}

/// Posts `form` to `/schemes`.
async fn post_form(b: &mut Browser, form: Vec<(&'static str, String)>) -> crate::console::Page {
    let f: Vec<(String, String)> = form.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    crate::console::post_owned(b, "/schemes", &f).await
}

#[tokio::test]
async fn schemes_are_listed_by_name_and_suspended_resumed_and_severed_by_a_pbc_only() {
    let s = setup().await;
    let m = member_with(&s.members, 1);
    let (pei, _) = searched(&s, m, "Searchedone").await;
    let h = pei.matched.holdername.to_string();
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    let page = b.get("/schemes").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&h) && page.body.contains(&pei.matched.scheme_name));
    // A scheme admin sees their holdername only, and changes nothing.
    assert_eq!(
        b.save_user("admin", &[Role::SchemeAdmin], &h).await.status,
        303
    );
    let mut admin = Browser::new(&s.env, &s.server);
    assert!(admin.sign_in("admin", PASSWORD).await.signed_in());
    // Their schemes are named on the overview.
    let home = admin.get("/").await;
    let named = format!("{} ({h})", pei.matched.scheme_name);
    assert!(home.body.contains(&named), "{}", home.body);
    let theirs = admin.get("/schemes").await;
    assert_eq!(
        theirs.body.matches("<tr data-holdername=").count(),
        1,
        "{}",
        theirs.body
    );
    let csrf = Browser::csrf(&theirs);
    let r = admin
        .post(
            "/schemes",
            &[("csrf", &csrf), ("holdername", &h), ("action", "suspend")],
        )
        .await;
    assert_eq!(r.status, 403);

    let csrf = Browser::csrf(&page);
    let store = s.env.store();
    let act = |action: &'static str, confirm: bool| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("holdername", h.clone()),
            ("action", action.to_owned()),
        ];
        if confirm {
            f.push(("confirm", "yes".to_owned()));
        }
        f
    };
    assert_eq!(post_form(&mut b, act("suspend", false)).await.status, 303);
    let state = || async {
        store
            .scheme_state(pei.matched.holdername)
            .await
            .unwrap()
            .as_str()
            .to_owned()
    };
    assert_eq!(state().await, "suspended");
    assert_eq!(post_form(&mut b, act("resume", false)).await.status, 303);
    assert_eq!(state().await, "active");
    // Severing asks for the box to be ticked.
    let r = post_form(&mut b, act("sever", false)).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("tick the box"));
    assert_eq!(post_form(&mut b, act("sever", true)).await.status, 303);
    assert_eq!(state().await, "severed");
    let audit = console_audit(&s).await;
    for outcome in ["scheme_suspended", "scheme_resumed", "scheme_severed"] {
        assert!(
            audit
                .iter()
                .any(|(_, e, o, _)| o == outcome && e.contains(&format!("holdername={h}"))),
            "{outcome}: {audit:?}"
        );
    }
    s.server.stop().await;
}

/// Signs in through the sign-in page in Chromium: the password, then the second factor as the
/// users' tests give it.
async fn chromium_sign_in(c: &fantoccini::Client, base: &str, user: &str) {
    use fantoccini::Locator;
    c.goto(&format!("{base}/sign-in")).await.unwrap();
    let form = c.wait().for_element(Locator::Id("username")).await.unwrap();
    form.send_keys(user).await.unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    crate::console_users::chromium_second_factor(c, base, user).await;
    c.wait().for_element(Locator::Css("nav")).await.unwrap();
}

/// A JWT with no `sub`: a matching find with it cannot be registered and fails.
const UAT_NO_SUB: &str = "eyJhbGciOiJub25lIn0.e30.c2ln";

#[tokio::test]
async fn console_in_chromium_counts_what_needs_doing_decides_a_match_and_exports_its_audit() {
    use fantoccini::Locator;
    let s = setup().await;
    let (due, body) = searched(&s, member_with(&s.members, 1), "Searchedone").await;
    let (_fresh, _) = searched(&s, member_with(&s.members[20..], 1), "Searchedtwo").await;
    let store = s.env.store();
    // Registered 27 days ago: due within 5 days of a 30-day window; the other is not.
    s.env
        .sql()
        .execute(
            "UPDATE peis SET created_at = ?2, registered_at = ?2 WHERE pei = ?1",
            rusqlite::params![
                due.matched.pei,
                pdp_provider::now_micros() - 27 * 86_400_000_000
            ],
        )
        .unwrap();
    // A calculation overdue, and a find that fails.
    let today = chrono::Utc::now().date_naive();
    store
        .record_calculation(pdp_provider::model::Calculation {
            pei: due.matched.pei.clone(),
            pension_asset_guid: due.matched.pension_asset_guid,
            kind: pdp_provider::model::CalculationKind::Dcc,
            started_on: today - chrono::Days::new(9),
            due_on: today - chrono::Days::new(2),
            completed_at: None,
        })
        .await
        .unwrap();
    let mut failing = find_for(member_with(&s.members[40..], 1), FindKind::Yes);
    failing["uat"] = UAT_NO_SUB.into();
    let failed_id = uuid::Uuid::new_v4().to_string();
    post_find(
        &s.env.pfs(),
        &s.server.url("/find-requests"),
        &failed_id,
        &failing,
    )
    .await;
    assert_eq!(
        s.env.ended(&failed_id).await.state,
        pdp_provider::store::FindState::Failed
    );
    // The PBC also runs the service and security.
    let mut pbc = store.console_user("pbc").await.unwrap().unwrap();
    pbc.roles.extend([Role::ServiceManager, Role::SecurityLead]);
    pdp_provider::console::save_user(&store, pbc, None, 4)
        .await
        .unwrap();

    // The PBC also signs in outside the browser, to add a user later.
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    let downloads = tempfile::tempdir().unwrap();
    let (_driver, c) = chromium_with(
        &spki_hash(&s.env.cert(files::SERVER)),
        Some(downloads.path()),
    )
    .await;
    let base = b.base.clone();
    chromium_sign_in(&c, &base, "pbc").await;
    let shot = |name: &'static str| crate::console::screenshot(&c, name);

    // The overview counts what needs doing.
    c.goto(&format!("{base}/")).await.unwrap();
    c.wait().for_element(Locator::Id("to-do")).await.unwrap();
    shot("overview").await;
    let count = |id: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Css(&format!("#{id} .count")))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(count("matches-due").await, "1");
    assert_eq!(count("overdue-calculations").await, "1");
    assert_eq!(count("failed-finds").await, "1");
    assert_eq!(count("late-reports").await, "0");
    assert_eq!(count("missing-contacts").await, "1");
    let missing = c.find(Locator::Id("missing-contacts")).await.unwrap();
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("Primary technical contact"));
    // Its link opens the review list.
    c.find(Locator::Css("#matches-due a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = format!("tr[data-asset-guid=\"{}\"]", due.matched.asset_guid);
    c.wait().for_element(Locator::Css(&row)).await.unwrap();
    shot("possible-matches").await;

    // The searcher's data, revealed beside ours; then decided, after a confirmation.
    c.find(Locator::Css(&format!("{row} .reveal")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let names = c
        .wait()
        .for_element(Locator::Id("searcher-names"))
        .await
        .unwrap();
    assert!(names.text().await.unwrap().contains("Searchedone"));
    let nino = body["findData"]["nino"]["value"].as_str().unwrap();
    let shown = c.find(Locator::Id("searcher-nino")).await.unwrap();
    assert_eq!(shown.text().await.unwrap(), nino);
    shot("possible-match-revealed").await;
    c.find(Locator::Css(".resolve-no"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let confirm = c.wait().for_element(Locator::Id("confirm")).await.unwrap();
    shot("possible-match-confirm").await;
    assert_eq!(
        s.cas
            .state
            .registrations()
            .into_iter()
            .find(|r| r.name == due.matched.pei)
            .unwrap()
            .deleted,
        None,
        "nothing sent before the confirmation"
    );
    confirm.click().await.unwrap();
    let notice = c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("match-no"));
    let at_cas = s
        .cas
        .state
        .registrations()
        .into_iter()
        .find(|r| r.name == due.matched.pei)
        .unwrap();
    assert_eq!(at_cas.deleted.as_deref(), Some("match-no"));

    // The audit export: a date that is none is refused, saying so, with the form again.
    c.goto(&format!("{base}/audit.csv?from=2026-02-30"))
        .await
        .unwrap();
    let error = c.wait().for_element(Locator::Css(".error")).await.unwrap();
    assert!(error.text().await.unwrap().contains("not a date"));
    // Filtered by the decided find's request ID, from the form.
    c.goto(&format!("{base}/audit")).await.unwrap();
    let id_field = c
        .wait()
        .for_element(Locator::Id("request_id"))
        .await
        .unwrap();
    id_field.send_keys(&due.request_id).await.unwrap();
    shot("audit").await;
    c.find(Locator::Id("export"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let file = downloads.path().join("audit.csv");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Chromium may reserve the download's name with an empty file at once and write beside it
    // (`.crdownload`), renaming at the end: done once the file has its header and nothing is
    // being written beside it.
    let downloading = || {
        std::fs::read_dir(downloads.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".crdownload")
        })
    };
    while std::fs::metadata(&file).map_or(true, |m| m.len() == 0) || downloading() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no download in {}",
            downloads.path().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let csv = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    let want = store
        .audit_records(0, i64::MAX, Some(due.request_id.clone()))
        .await
        .unwrap();
    assert_eq!(rows.len(), want.len());
    assert!(rows.iter().all(|r| r[1] == due.request_id));
    // The find's ACK, its registration at the CAS, the reveal and the decision, by PeI.
    let outcomes: Vec<&str> = rows.iter().map(|r| &r[8]).collect();
    for o in ["reveal", "resolved-no"] {
        assert!(outcomes.contains(&o), "{o}: {outcomes:?}");
    }
    assert!(rows
        .iter()
        .any(|r| &r[8] == "resolved-no" && r[4].contains(&pei_target(&due.matched.pei))));

    if std::env::var_os("PDP_CONSOLE_SCREENSHOTS").is_some() {
        for page in ["schemes", "reports", "downtime"] {
            c.goto(&format!("{base}/{page}")).await.unwrap();
            shot(page).await;
        }
    }

    // A primary technical contact added: none is missing now; theirs are the certificates and
    // keys, each with its date, and the dev PKI's long-lived ones are not due.
    assert_eq!(b.save_user("ptc", &[Role::Ptc], "").await.status, 303);
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chromium_sign_in(&c, &base, "ptc").await;
    c.goto(&format!("{base}/")).await.unwrap();
    c.wait().for_element(Locator::Id("to-do")).await.unwrap();
    assert_eq!(count("missing-contacts").await, "0");
    let expiring = count("expiring").await;
    let due_now = c
        .find(Locator::Css("#expiring td:last-child"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        expiring,
        due_now
            .split("; ")
            .filter(|d| !d.is_empty())
            .count()
            .to_string(),
        "{due_now}"
    );
    c.goto(&format!("{base}/certificates")).await.unwrap();
    let table = c
        .wait()
        .for_element(Locator::Id("certificates"))
        .await
        .unwrap();
    let text = table.text().await.unwrap();
    assert!(
        text.contains("CAS client certificate") && text.contains("view signing key"),
        "{text}"
    );
    let year = chrono::Utc::now().format("%Y").to_string();
    assert!(
        text.contains(&year) || text.lines().any(|l| l.contains('-')),
        "{text}"
    );
    shot("certificates").await;
    c.close().await.unwrap();
    s.server.stop().await;
}

#[tokio::test]
async fn planned_downtime_is_checked_before_saving_and_changed_or_cancelled_before_it_starts() {
    let s = setup().await;
    let (pei, _) = searched(&s, member_with(&s.members, 1), "Searchedone").await;
    let h = pei.matched.holdername.to_string();
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    assert_eq!(
        b.save_user("svc", &[Role::ServiceManager], "").await.status,
        303
    );
    let mut svc = Browser::new(&s.env, &s.server);
    assert!(svc.sign_in("svc", PASSWORD).await.signed_in());
    let page = svc.get("/downtime").await;
    // Schemes are chosen by name.
    assert!(page.body.contains(&format!("<option value=\"{h}\">")));
    assert!(page.body.contains(&pei.matched.scheme_name));
    let csrf = Browser::csrf(&page);
    let at = |hours: i64| {
        (chrono::Utc::now() + chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let window = |from: String, to: String, holdername: &str, confirm: bool| {
        let mut f = vec![
            ("csrf".to_owned(), csrf.clone()),
            ("service".into(), "find".into()),
            ("from".into(), from),
            ("to".into(), to),
            ("reason".into(), "Database upgrade".into()),
            ("holdername".into(), holdername.to_owned()),
        ];
        if confirm {
            f.push(("confirm".into(), "yes".into()));
        }
        f
    };
    let post = crate::console::post_owned;
    let store = s.env.store();
    let stored = || async { s.env.store().unavailability(0, i64::MAX).await.unwrap() };
    let day = 24;

    // An unknown holdername is refused; the notice rule speaks the console's words.
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = post(
        &mut svc,
        "/downtime",
        &window(at(21 * day), at(21 * day + 1), &unknown, true),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("not a scheme of this connection"),
        "{}",
        r.body
    );
    let r = post(
        &mut svc,
        "/downtime",
        &window(at(day), at(day + 1), "", true),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("mark it an emergency") && !r.body.contains("--"));

    // Checked first: what it does is shown, nothing is saved.
    let first = window(at(21 * day), at(21 * day + 1), &h, false);
    let r = post(&mut svc, "/downtime", &first).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"no-overlap\"") && r.body.contains("id=\"months\""));
    assert!(!r.body.contains("id=\"breach\""), "an hour is within 0.5%");
    assert!(stored().await.is_empty());
    let r = post(
        &mut svc,
        "/downtime",
        &window(at(21 * day), at(21 * day + 1), &h, true),
    )
    .await;
    assert_eq!(r.status, 303);
    let saved = stored().await;
    assert_eq!(saved.len(), 1);
    let id = saved[0].id;
    assert_eq!(saved[0].window.holdername, Some(pei.matched.holdername));

    // An overlapping window, and one of 10 days, say so before saving.
    let r = post(
        &mut svc,
        "/downtime",
        &window(at(21 * day), at(21 * day + 2), "", false),
    )
    .await;
    assert!(
        r.body.contains("It overlaps 1 announced window"),
        "{}",
        r.body
    );
    let r = post(
        &mut svc,
        "/downtime",
        &window(at(22 * day), at(32 * day), "", false),
    )
    .await;
    assert!(r.body.contains("id=\"breach\""), "{}", r.body);
    assert!(r.body.contains("below 99.5%"));
    assert_eq!(stored().await.len(), 1);

    // Changed before it starts: the form opens with it; the change is checked and saved.
    let edit = svc.get(&format!("/downtime?edit={id}")).await;
    assert!(edit.body.contains(&format!("name=\"id\" value=\"{id}\"")));
    let mut change = window(at(23 * day), at(23 * day + 3), &h, true);
    change.push(("id".into(), id.to_string()));
    assert_eq!(post(&mut svc, "/downtime", &change).await.status, 303);
    let saved = stored().await;
    assert_eq!(saved.len(), 1);
    assert_eq!(
        saved[0].window.ends_at - saved[0].window.starts_at,
        3 * 3_600_000_000
    );
    // Cancelled before it starts.
    let cancel = [
        ("csrf".to_owned(), csrf.clone()),
        ("id".into(), id.to_string()),
    ];
    assert_eq!(
        post(&mut svc, "/downtime/cancel", &cancel).await.status,
        303
    );
    assert!(stored().await.is_empty());
    // A window that has started stands.
    let now = pdp_provider::now_micros();
    let started = store
        .announce_unavailability(pdp_provider::model::NewUnavailability {
            service: pdp_provider::model::Service::Find,
            holdername: None,
            starts_at: now - 3_600_000_000,
            ends_at: now + 3_600_000_000,
            reason: "Outage".into(),
            emergency: true,
            announced_at: now - 3_600_000_000,
        })
        .await
        .unwrap();
    let cancel = [
        ("csrf".to_owned(), csrf.clone()),
        ("id".into(), started.to_string()),
    ];
    let r = post(&mut svc, "/downtime/cancel", &cancel).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("has started"));
    assert_eq!(stored().await.len(), 1);

    // Each audited with the window.
    let audit = console_audit(&s).await;
    for outcome in ["announced", "downtime_changed", "downtime_cancelled"] {
        assert!(
            audit.iter().any(|(who, e, o, _)| who == "console:svc"
                && o == outcome
                && e.contains(&format!("window={id}"))),
            "{outcome}: {audit:?}"
        );
    }
    s.server.stop().await;
}
