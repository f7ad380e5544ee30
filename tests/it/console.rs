//! The operator console over real sockets: HTTPS on its own listener, sign-in, CSRF, security
//! headers, role limits refused with the rule named, possible matches resolved through
//! `peis::resolve_possible` (the CAS sees the PATCH), reveals audited; and headless Chromium
//! doing the same through the pages (`console_in_chromium_*`).

use std::collections::HashMap;
use std::time::Duration;

use pdp_provider::members::generate::FindKind;
use pdp_provider::store::console::Role;
use pdp_provider::tls::pki::files;

use crate::harness::*;

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A browser-like client: follows no redirect, keeps cookies by name.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Browser {
    pub(crate) fn new(env: &Env, server: &Server) -> Self {
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(env.cert(files::CA)).unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Browser {
            http,
            base: format!("https://localhost:{}", server.console_addr.unwrap().port()),
            cookies: HashMap::new(),
        }
    }

    async fn take(&mut self, r: reqwest::Response) -> Page {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (nv, _) = v.split_once(';').unwrap_or((v, ""));
            let (n, val) = nv.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(n);
            } else {
                self.cookies.insert(n.to_owned(), val.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    /// The CSRF token in the last page's forms.
    pub(crate) fn csrf(page: &Page) -> String {
        let i = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &page.body[i + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    pub(crate) async fn sign_in(&mut self, user: &str, password: &str) -> Page {
        let p = self.get("/sign-in").await;
        let csrf = Self::csrf(&p);
        let r = self
            .post(
                "/sign-in",
                &[("csrf", &csrf), ("username", user), ("password", password)],
            )
            .await;
        if r.status != 303 {
            return r;
        }
        // The second step: a TOTP code (enrolling first when the user has no second factor).
        self.second_factor(user).await
    }

    /// Saves a user through the users page's form, as a PBC does.
    pub(crate) async fn save_user(
        &mut self,
        username: &str,
        roles: &[Role],
        holdernames: &str,
    ) -> Page {
        let p = self.get("/users").await;
        let csrf = Self::csrf(&p);
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("username", username),
            ("display_name", username),
            ("email", "ops@example.invalid"),
            ("password", PASSWORD),
            ("holdernames", holdernames),
        ];
        for r in roles {
            form.push(("role", r.as_str()));
        }
        self.post("/users", &form).await
    }
}

pub(crate) struct Setup {
    pub(crate) env: Env,
    pub(crate) cas: pdp_sim::cas::CasSim,
    pub(crate) server: Server,
    pub(crate) members: Vec<pdp_provider::members::record::MemberRecord>,
}

pub(crate) async fn setup() -> Setup {
    setup_with(|_| {}).await
}

pub(crate) async fn setup_with(tweak: impl FnOnce(&mut pdp_provider::config::Config)) -> Setup {
    let env = Env::new();
    let members = env.with_members(200).await;
    let store = env.open_store().await;
    pdp_provider::console::create_first_pbc(
        &store,
        "pbc",
        "Pat Business",
        "pbc@example.invalid",
        PASSWORD.into(),
    )
    .await
    .unwrap();
    store.close().await;
    let cas = cas_sim(&env).await;
    let mut config = env.config_with_cas(&cas);
    config.console.enabled = true;
    config.console.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut config);
    let server = Server::start(config).await;
    Setup {
        env,
        cas,
        server,
        members,
    }
}

impl Setup {
    /// Sends a find meant to possibly match `m`; the possible match it registered.
    pub(crate) async fn possible(
        &self,
        m: &pdp_provider::members::record::MemberRecord,
    ) -> pdp_provider::store::StoredPei {
        let id = uuid::Uuid::new_v4().to_string();
        post_find(
            &self.env.pfs(),
            &self.server.url("/find-requests"),
            &id,
            &find_for(m, FindKind::Possible),
        )
        .await;
        self.env.ended(&id).await;
        let peis = self.env.store().peis_for_request(&id).await.unwrap();
        assert!(!peis.is_empty(), "the find registered a possible match");
        peis.into_iter().next().unwrap()
    }

    pub(crate) async fn audit_outcomes(&self) -> Vec<(String, String)> {
        let s = self.env.store();
        s.audit_records(0, i64::MAX, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.party.starts_with("console:"))
            .map(|r| (r.party, r.outcome))
            .collect()
    }
}

#[tokio::test]
async fn console_signs_in_with_csrf_headers_and_role_rules_named() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    // Not signed in: sent to sign in; a wrong password is refused.
    assert_eq!(b.get("/").await.status, 303);
    assert_eq!(b.sign_in("pbc", "wrong password!!").await.status, 401);
    // A sign-in form without its CSRF cookie is refused.
    let mut other = Browser::new(&s.env, &s.server);
    let p = other.get("/sign-in").await;
    other.cookies.clear();
    let csrf = Browser::csrf(&p);
    let r = other
        .post(
            "/sign-in",
            &[("csrf", &csrf), ("username", "pbc"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 403);

    let r = b.sign_in("pbc", PASSWORD).await;
    assert!(r.signed_in(), "{}", r.body);
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-pdp-console="))
        .unwrap();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(home.headers["x-frame-options"], "DENY");
    assert_eq!(home.headers["x-content-type-options"], "nosniff");
    assert_eq!(home.headers["cache-control"], "no-store");
    assert!(home.headers.contains_key("strict-transport-security"));

    // A form without the session's CSRF token, or from another origin, is refused.
    let r = b
        .post("/users", &[("username", "x"), ("role", "ptc")])
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .http
        .post(format!("{}/users", b.base))
        .header("cookie", b.cookie_header())
        .header("origin", "https://evil.example")
        .form(&[("username", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The portal's rules, each refusal naming its rule.
    let h = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    assert_eq!(
        b.save_user("pbc2", &[Role::Pbc, Role::SecurityLead], "")
            .await
            .status,
        303
    );
    let r = b.save_user("pbc3", &[Role::Pbc], "").await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("PBC_MAX"), "{}", r.body);
    let r = b
        .save_user("both", &[Role::Ptc, Role::SchemeAdmin], h)
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("ONE_PRIMARY_ROLE"));
    assert_eq!(
        b.save_user(
            "ptc",
            &[Role::Ptc, Role::TestManager, Role::ServiceManager],
            ""
        )
        .await
        .status,
        303
    );
    for i in 0..4 {
        assert_eq!(
            b.save_user(&format!("admin{i}"), &[Role::SchemeAdmin], h)
                .await
                .status,
            303
        );
    }
    let r = b.save_user("admin4", &[Role::SchemeAdmin], h).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("SCHEME_ADMIN_MAX"));
    let r = b.save_user("nohold", &[Role::TestManager], "").await;
    assert_eq!(r.status, 303);
    let r = b.save_user("tm3", &[Role::TestManager], "").await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("TEST_MANAGER_MAX"));
    // The only PTC keeps the role.
    let r = b.edit_user("ptc", &[Role::TestManager], "").await;
    assert!(r.body.contains("PTC_MIN"), "{}", r.body);

    // A PTC may not review matches nor manage users.
    let mut ptc = Browser::new(&s.env, &s.server);
    assert!(ptc.sign_in("ptc", PASSWORD).await.signed_in());
    assert_eq!(ptc.get("/possible-matches").await.status, 403);
    assert_eq!(ptc.get("/users").await.status, 403);
    assert_eq!(ptc.get("/certificates").await.status, 200);
    assert_eq!(ptc.get("/sla").await.status, 200);

    // Everything audited with who did it.
    let audited = s.audit_outcomes().await;
    for (party, outcome) in [
        ("console:pbc", "sign_in_refused"),
        ("console:pbc", "signed_in"),
        ("console:pbc", "csrf_refused"),
        (
            "console:pbc",
            "user_added user=pbc2 roles=pbc,security-lead",
        ),
        ("console:pbc", "refused"),
        ("console:ptc", "signed_in"),
    ] {
        assert!(
            audited
                .iter()
                .any(|(p, o)| p == party && o.starts_with(outcome)),
            "{party} {outcome} not audited: {audited:?}"
        );
    }
    s.server.stop().await;
}

#[tokio::test]
async fn console_resolves_possible_matches_through_peis_resolve_and_audits_reveals() {
    let s = setup().await;
    let yes = s.possible(member_with(&s.members, 1)).await;
    let no = s.possible(member_with(&s.members[20..], 1)).await;
    let mut b = Browser::new(&s.env, &s.server);
    b.sign_in("pbc", PASSWORD).await;
    // A scheme admin of another holdername sees neither.
    let other = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        b.save_user("admin", &[Role::SchemeAdmin], &other)
            .await
            .status,
        303
    );
    let mut admin = Browser::new(&s.env, &s.server);
    admin.sign_in("admin", PASSWORD).await;
    let page = admin.get("/possible-matches").await;
    assert!(!page.body.contains(&yes.matched.asset_guid.to_string()));

    let page = b.get("/possible-matches").await;
    assert_eq!(page.status, 200);
    let guid = yes.matched.asset_guid.to_string();
    assert!(page.body.contains(&guid));
    assert!(
        page.body.contains(&yes.matched.reason),
        "the reason code is shown"
    );
    // Masked: the member ID and NINO never appear whole.
    let record = s
        .env
        .store()
        .member_record(&yes.matched.member_id)
        .await
        .unwrap()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert!(!page.body.contains(&yes.matched.member_id));
    if let Some(nino) = record["nino"].as_str() {
        assert!(!page.body.contains(nino));
    }
    let csrf = Browser::csrf(&page);
    // The admin cannot act on another holdername's match.
    let acsrf = Browser::csrf(&admin.get("/possible-matches").await);
    let r = admin
        .post(
            "/possible-matches/resolve",
            &[("csrf", &acsrf), ("asset_guid", &guid), ("as", "yes")],
        )
        .await;
    assert_eq!(r.status, 404);

    // Reveal: shown, and audited with the find request ID.
    let r = b
        .post(
            "/possible-matches/reveal",
            &[("csrf", &csrf), ("asset_guid", &guid)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&yes.matched.member_id));
    let audit = s
        .env
        .store()
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.party == "console:pbc"
        && a.outcome == "reveal"
        && a.request_id.as_deref() == Some(yes.request_id.as_str())));

    // Yes: the CAS gets the PATCH to match-yes, as `peis resolve` sends it.
    let r = b
        .post(
            "/possible-matches/resolve",
            &[
                ("csrf", &csrf),
                ("asset_guid", &guid),
                ("as", "yes"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let at_cas = |pei: &str| {
        s.cas
            .state
            .registrations()
            .into_iter()
            .find(|r| r.name == pei)
            .unwrap()
    };
    assert_eq!(at_cas(&yes.matched.pei).match_status, "match-yes");
    let r = b
        .post(
            "/possible-matches/resolve",
            &[
                ("csrf", &csrf),
                ("asset_guid", &no.matched.asset_guid.to_string()),
                ("as", "no"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(at_cas(&no.matched.pei).deleted.as_deref(), Some("match-no"));
    let page = b.get("/possible-matches").await;
    assert!(!page.body.contains(&guid));
    let outcomes = s.audit_outcomes().await;
    assert!(outcomes.contains(&("console:pbc".into(), "resolved-yes".into())));
    assert!(outcomes.contains(&("console:pbc".into(), "resolved-no".into())));
    s.server.stop().await;
}

#[tokio::test]
async fn console_deregisters_a_pei_as_peis_deregister_does_for_the_roles_that_may() {
    let s = setup().await;
    let id = uuid::Uuid::new_v4().to_string();
    let m = member_with(&s.members, 1);
    post_find(
        &s.env.pfs(),
        &s.server.url("/find-requests"),
        &id,
        &find_for(m, FindKind::Yes),
    )
    .await;
    s.env.ended(&id).await;
    let pei = s.env.store().peis_for_request(&id).await.unwrap().remove(0);
    let guid = pei.matched.asset_guid.to_string();
    let mut b = Browser::new(&s.env, &s.server);
    b.sign_in("pbc", PASSWORD).await;

    // A technical contact may not; a scheme admin of another holdername does not see it.
    assert_eq!(b.save_user("tech", &[Role::Ptc], "").await.status, 303);
    let mut tech = Browser::new(&s.env, &s.server);
    tech.sign_in("tech", PASSWORD).await;
    assert_eq!(tech.get("/deregister").await.status, 403);
    let other = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        b.save_user("admin", &[Role::SchemeAdmin], &other)
            .await
            .status,
        303
    );
    let mut admin = Browser::new(&s.env, &s.server);
    admin.sign_in("admin", PASSWORD).await;
    let acsrf = Browser::csrf(&admin.get("/deregister").await);
    let r = admin
        .post(
            "/deregister",
            &[
                ("csrf", &acsrf),
                ("asset_guid", &guid),
                ("reason", "match-withdrawn"),
            ],
        )
        .await;
    assert_eq!(r.status, 404);

    // A reason the PeI's match status does not allow is refused, naming why.
    let page = b.get("/deregister").await;
    assert_eq!(page.status, 200);
    let csrf = Browser::csrf(&page);
    let r = b
        .post(
            "/deregister",
            &[
                ("csrf", &csrf),
                ("asset_guid", &guid),
                ("reason", "match-no"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("not a valid deletion reason"), "{}", r.body);
    let at_cas = || {
        s.cas
            .state
            .registrations()
            .into_iter()
            .find(|r| r.name == pei.matched.pei)
            .unwrap()
    };
    assert_eq!(at_cas().deleted, None);

    // The PBC de-registers it: the CAS is told why, it is never served again, and the action
    // is audited with who did it and the find it came from.
    let r = b
        .post(
            "/deregister",
            &[
                ("csrf", &csrf),
                ("asset_guid", &guid),
                ("reason", "match-withdrawn"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(at_cas().deleted.as_deref(), Some("match-withdrawn"));
    let stored = s
        .env
        .store()
        .pei_by_asset_guid(pei.matched.asset_guid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, pdp_provider::store::PeiState::Deregistered);
    let audit = s
        .env
        .store()
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap();
    assert!(audit.iter().any(|a| a.party == "console:pbc"
        && a.outcome == "deregistered"
        && a.request_id.as_deref() == Some(id.as_str())));
    s.server.stop().await;
}

pub(crate) async fn post_owned(b: &mut Browser, path: &str, form: &[(String, String)]) -> Page {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post(path, &form).await
}

#[tokio::test]
async fn console_announces_planned_downtime_and_shows_the_sla_per_holdername() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    b.sign_in("pbc", PASSWORD).await;
    assert_eq!(
        b.save_user("svc", &[Role::ServiceManager], "").await.status,
        303
    );
    // Not a service manager's page for a PBC alone.
    assert_eq!(b.get("/downtime").await.status, 403);
    let mut svc = Browser::new(&s.env, &s.server);
    svc.sign_in("svc", PASSWORD).await;
    let page = svc.get("/downtime").await;
    assert_eq!(page.status, 200);
    let csrf = Browser::csrf(&page);
    let at = |days: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let window = |from: String, to: String, emergency: bool| {
        let mut f = vec![
            ("csrf".to_owned(), csrf.clone()),
            ("service".into(), "find".into()),
            ("from".into(), from),
            ("to".into(), to),
            ("reason".into(), "Database upgrade".into()),
            // Saved as checked: the check alone shows what the window does.
            ("confirm".into(), "yes".into()),
        ];
        if emergency {
            f.push(("emergency".into(), "on".into()));
        }
        f
    };
    // Tomorrow, without the emergency mark: refused, naming the rule.
    let r = post_owned(&mut svc, "/downtime", &window(at(1), at(2), false)).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("CoCo2.2.1"), "{}", r.body);
    // As an emergency: accepted, reported unscheduled; three weeks ahead: scheduled.
    let r = post_owned(&mut svc, "/downtime", &window(at(1), at(2), true)).await;
    assert_eq!(r.status, 303);
    let r = post_owned(&mut svc, "/downtime", &window(at(21), at(22), false)).await;
    assert_eq!(r.status, 303);
    let page = svc.get("/downtime").await;
    assert!(
        page.body.contains("unscheduled (emergency)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>scheduled</td>"), "{}", page.body);
    let stored = s.env.store().unavailability(0, i64::MAX).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|u| u.window.emergency)
            .collect::<Vec<_>>(),
        [true, false]
    );
    let outcomes = s.audit_outcomes().await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|(who, o)| who == "console:svc" && o == "announced")
            .count(),
        2
    );

    // The month's SLA, per holdername: a matching find's completion is counted for its scheme.
    let m = member_with(&s.members, 1);
    let id = uuid::Uuid::new_v4().to_string();
    post_find(
        &s.env.pfs(),
        &s.server.url("/find-requests"),
        &id,
        &find_for(m, FindKind::Yes),
    )
    .await;
    s.env.ended(&id).await;
    let page = svc.get("/sla").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!(
            "Completion (CoCo2.1.2), holdername {}",
            m.holdername
        )),
        "{}",
        page.body
    );
    s.server.stop().await;
}

#[tokio::test]
async fn console_shows_test_managers_the_recorded_load_runs_and_their_verdicts() {
    let runs = tempfile::tempdir().unwrap();
    let result = |started: &str, passed: bool| {
        serde_json::json!({
            "tool": "pdp-provider load", "scenario": "steady", "started_at": started,
            "config": {"target": "https://127.0.0.1:18454"},
            "phases": [{"name": "main", "achieved_rate": 1499.6}],
            "verdict": {"passed": passed, "checks": [
                {"what": "ack p99.9", "passed": passed},
                {"what": "error rate", "passed": true}
            ]}
        })
        .to_string()
    };
    for (dir, started, passed) in [
        ("2026-11-29-host/steady", "2026-11-29T10:00:00Z", true),
        ("2026-11-30-host/steady", "2026-11-30T10:00:00Z", false),
    ] {
        let d = runs.path().join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("result.json"), result(started, passed)).unwrap();
    }
    std::fs::write(runs.path().join("notes.json"), "{}").unwrap();
    let path = runs.path().to_owned();
    let s = setup_with(move |c| c.console.load_results_dir = path).await;
    let mut b = Browser::new(&s.env, &s.server);
    b.sign_in("pbc", PASSWORD).await;
    assert_eq!(b.get("/testing").await.status, 403);
    assert_eq!(
        b.save_user("tm", &[Role::TestManager], "").await.status,
        303
    );
    let mut tm = Browser::new(&s.env, &s.server);
    tm.sign_in("tm", PASSWORD).await;
    let page = tm.get("/testing").await;
    assert_eq!(page.status, 200);
    let newest = page
        .body
        .find("2026-11-30T10:00:00Z")
        .expect("the newer run");
    let older = page
        .body
        .find("2026-11-29T10:00:00Z")
        .expect("the older run");
    assert!(newest < older, "newest first");
    assert!(page.body.contains("main 1500"));
    assert!(page.body.contains("FAILED") && page.body.contains("passed"));
    s.server.stop().await;
}

/// chromedriver on a free port, with headless Chromium as root needs it; killed on drop.
pub(crate) struct Driver {
    child: std::process::Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The base64 SHA-256 of a certificate's public key, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it (the dev certificate trusted as valid, so
/// the page is a secure context whose `Secure` cookies are kept).
pub(crate) fn spki_hash(pem: &std::path::Path) -> String {
    use base64::Engine;
    let certs = pdp_provider::tls::load_certs(pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(cert.tbs_certificate.subject_pki.raw);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Saves what `c` shows as `<name>.png` in the directory `PDP_CONSOLE_SCREENSHOTS` names, when
/// it is set (how docs/console/ is made); nothing otherwise.
pub(crate) async fn screenshot(c: &fantoccini::Client, name: &str) {
    let Some(dir) = std::env::var_os("PDP_CONSOLE_SCREENSHOTS").map(std::path::PathBuf::from)
    else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

pub(crate) async fn chromium(spki: &str) -> (Driver, fantoccini::Client) {
    chromium_with(spki, None).await
}

/// As [`chromium`], saving downloads (an attachment such as the audit export) into `downloads`.
pub(crate) async fn chromium_with(
    spki: &str,
    downloads: Option<&std::path::Path>,
) -> (Driver, fantoccini::Client) {
    assert!(
        std::path::Path::new("/usr/bin/chromedriver").exists(),
        "the browser test needs Debian's chromium and chromium-driver: run scripts/test, which installs them"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let prefs = match downloads {
        Some(dir) => serde_json::json!({
            "download.default_directory": dir,
            "download.prompt_for_download": false,
        }),
        None => serde_json::json!({}),
    };
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "prefs": prefs,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--window-size=1400,900",
                format!("--ignore-certificate-errors-spki-list={spki}"),
                format!("--user-data-dir={}", driver._profile.path().display()),
            ]
        }
    }))
    .unwrap();
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match fantoccini::ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "chromedriver did not start: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    (driver, client)
}

#[tokio::test]
async fn console_in_chromium_signs_in_and_resolves_a_possible_match_seen_at_the_cas() {
    use fantoccini::Locator;
    let s = setup().await;
    let pei = s.possible(member_with(&s.members, 1)).await;
    let guid = pei.matched.asset_guid.to_string();
    // The PBC also runs the service (service manager) and security (security lead).
    let store = s.env.store();
    let mut pbc = store.console_user("pbc").await.unwrap().unwrap();
    pbc.roles
        .extend([Role::ServiceManager, Role::SecurityLead, Role::TestManager]);
    pdp_provider::console::save_user(&store, pbc, None, 4)
        .await
        .unwrap();
    let (_driver, c) = chromium(&spki_hash(&s.env.cert(files::SERVER))).await;
    let base = format!(
        "https://localhost:{}",
        s.server.console_addr.unwrap().port()
    );
    let shot = |name: &'static str| crate::console::screenshot(&c, name);

    c.goto(&format!("{base}/")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/sign-in"));
    shot("sign-in").await;
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("pbc")
        .await
        .unwrap();
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
    crate::console_users::chromium_second_factor(&c, &base, "pbc").await;
    if c.wait().for_element(Locator::Css("nav")).await.is_err() {
        panic!(
            "not signed in: at {} showing {}",
            c.current_url().await.unwrap(),
            c.source().await.unwrap()
        );
    }
    shot("overview").await;

    c.goto(&format!("{base}/possible-matches")).await.unwrap();
    let row = format!("tr[data-asset-guid=\"{guid}\"]");
    c.wait().for_element(Locator::Css(&row)).await.unwrap();
    shot("possible-matches").await;
    c.find(Locator::Css(&format!("{row} .resolve-yes")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Decided on a page of its own that says what the decision does.
    c.wait()
        .for_element(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("match-yes"));
    // The CAS simulator saw the PATCH to match-yes.
    let at_cas = s
        .cas
        .state
        .registrations()
        .into_iter()
        .find(|r| r.name == pei.matched.pei)
        .unwrap();
    assert_eq!(at_cas.match_status, "match-yes");
    assert!(
        s.cas
            .state
            .calls()
            .iter()
            .any(|call| call.endpoint.starts_with("PATCH")),
        "{:?}",
        s.cas
            .state
            .calls()
            .iter()
            .map(|c| c.endpoint.clone())
            .collect::<Vec<_>>()
    );

    if std::env::var_os("PDP_CONSOLE_SCREENSHOTS").is_some() {
        for page in [
            "flagged",
            "calculations",
            "failed-finds",
            "sla",
            "reports",
            "downtime",
            "deregister",
            "testing",
            "organisation",
            "users",
        ] {
            c.goto(&format!("{base}/{page}")).await.unwrap();
            shot(page).await;
        }
    }
    c.close().await.unwrap();
    s.server.stop().await;
}

#[tokio::test]
async fn a_password_changed_elsewhere_ends_the_sessions_signed_in_with_the_old_one() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    assert_eq!(b.get("/").await.status, 200);
    // The password changed by another instance (or an operator command): this instance's
    // sessions were not told.
    let store = s.env.open_store().await;
    let user = store.console_user("pbc").await.unwrap().unwrap();
    pdp_provider::console::save_user(&store, user, Some("a new long passphrase".into()), 10)
        .await
        .unwrap();
    store.close().await;
    let p = b.get("/").await;
    assert_eq!(p.status, 303, "the old session still served a page");
    assert_eq!(b.get("/").await.status, 303, "ended, not just refused once");
    assert_eq!(b.sign_in("pbc", PASSWORD).await.status, 401);
    assert!(b.sign_in("pbc", "a new long passphrase").await.signed_in());
    assert_eq!(b.get("/").await.status, 200);
    s.server.stop().await;
}
