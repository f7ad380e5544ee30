//! Console users over real sockets, as operators use them: an edit that changes only what was
//! changed, suspension as its own action, the last active PBC kept, command-line recovery of a
//! locked-out organisation (the real binary), the TOTP second factor (enrolment from a QR code,
//! a code accepted once, recovery codes, a reset), users' own passwords, failed sign-ins that
//! store no typed text and are throttled per source address as well as per user; the demo
//! starting its console; and headless Chromium doing the same through the pages.
//!
//! TOTP codes are computed here from the secret the enrolment page shows, as an authenticator
//! app does (RFC 6238).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use pdp_provider::store::console::Role;
use pdp_provider::tls::pki::files;

use crate::console::{chromium, setup, spki_hash, Browser, Page, Setup, PASSWORD};
use crate::harness::*;

/// Each user's TOTP secret (base32) and the last time step a code was made for, by console
/// and username: a code's step is accepted once, so each sign-in takes a later one.
static SECRETS: LazyLock<Mutex<Secrets>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// (console, username) → (secret, last step).
type Secrets = HashMap<(String, String), (String, u64)>;

fn now_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The 6-digit code of `secret` (base32) for time step `step` (RFC 6238: HMAC-SHA1, 30 s).
pub(crate) fn code_at(secret: &str, step: u64) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate(step * 30)
        .to_string()
}

/// Notes the secret a user's enrolment page showed.
fn enrolled(base: &str, user: &str, secret: &str) {
    SECRETS
        .lock()
        .unwrap()
        .insert((base.into(), user.into()), (secret.to_owned(), 0));
}

/// The secret a user enrolled with.
fn secret_of(base: &str, user: &str) -> String {
    SECRETS.lock().unwrap()[&(base.to_owned(), user.to_owned())]
        .0
        .clone()
}

/// A code for the user's next sign-in: the current step's, or a later one than the last used
/// (the server takes one step of skew; past that, this waits for the clock).
pub(crate) async fn next_code(base: &str, user: &str) -> String {
    let (secret, step) = {
        let mut map = SECRETS.lock().unwrap();
        let e = map
            .get_mut(&(base.to_owned(), user.to_owned()))
            .unwrap_or_else(|| panic!("{user} enrolled in this test"));
        e.1 = e.1.max(now_step() - 1) + 1;
        (e.0.clone(), e.1)
    };
    while step > now_step() + 1 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    code_at(&secret, step)
}

/// The text between `start` and the next `end` in `body`.
fn between<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = body.find(start)? + start.len();
    Some(&body[i..i + body[i..].find(end)?])
}

/// The value of a form field `name` on a page.
fn field(page: &Page, name: &str) -> String {
    let tag = between(&page.body, &format!("name=\"{name}\""), ">")
        .unwrap_or_else(|| panic!("no field {name}: {}", page.body));
    between(tag, "value=\"", "\"")
        .unwrap_or_default()
        .to_owned()
}

impl Page {
    /// Whether the answer started a session (set its cookie).
    pub(crate) fn signed_in(&self) -> bool {
        self.headers.get_all("set-cookie").iter().any(|v| {
            let v = v.to_str().unwrap();
            v.starts_with("__Host-pdp-console=") && !v.starts_with("__Host-pdp-console=;")
        })
    }
}

impl Browser {
    /// A browser whose connections come from `ip` (a loopback address of its own).
    fn from_address(env: &Env, server: &crate::harness::Server, ip: IpAddr) -> Self {
        let mut b = Browser::new(env, server);
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(env.cert(files::CA)).unwrap()).unwrap();
        b.http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        b
    }

    /// The second step of signing in: the code page (or the enrolment, whose secret is noted),
    /// and a code computed from the secret; the answer.
    pub(crate) async fn second_factor(&mut self, user: &str) -> Page {
        let p = self.get("/sign-in/code").await;
        assert_eq!(p.status, 200, "{}", p.body);
        if let Some(secret) = between(&p.body, "id=\"totp-secret\">", "<") {
            assert!(p.body.contains("src=\"data:image/png;base64,"), "a QR code");
            enrolled(&self.base, user, secret);
        }
        let csrf = Browser::csrf(&p);
        let code = next_code(&self.base, user).await;
        self.post("/sign-in/code", &[("csrf", &csrf), ("code", &code)])
            .await
    }

    /// Changes a user from their edit page, as a PBC does: the page pre-filled, the roles and
    /// holdernames given ticked, everything else as the page showed it.
    pub(crate) async fn edit_user(
        &mut self,
        username: &str,
        roles: &[Role],
        holdernames: &str,
    ) -> Page {
        let page = self.get(&format!("/users/edit?username={username}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let (csrf, shown, shown_h) = (
            Browser::csrf(&page),
            field(&page, "original_roles"),
            field(&page, "original_holdernames"),
        );
        let (name, email) = (field(&page, "display_name"), field(&page, "email"));
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("username", username),
            ("original_roles", &shown),
            ("original_holdernames", &shown_h),
            ("display_name", &name),
            ("email", &email),
            ("holdernames", holdernames),
        ];
        for r in roles {
            form.push(("role", r.as_str()));
        }
        self.post("/users", &form).await
    }

    async fn action(&mut self, path: &str, username: &str) -> Page {
        let csrf = Browser::csrf(&self.get("/users").await);
        self.post(path, &[("csrf", &csrf), ("username", username)])
            .await
    }
}

impl Setup {
    async fn user(&self, username: &str) -> pdp_provider::store::console::ConsoleUser {
        self.env
            .store()
            .console_user(username)
            .await
            .unwrap()
            .unwrap()
    }

    async fn audited(&self, party: &str, outcome: &str) -> bool {
        self.audit_outcomes()
            .await
            .iter()
            .any(|(p, o)| p == party && o == outcome)
    }
}

#[tokio::test]
async fn an_edit_changes_only_what_was_changed_and_the_last_active_pbc_stays() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    let h = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    for (name, roles, hold) in [
        ("ptc", &[Role::Ptc, Role::TestManager][..], ""),
        ("admin", &[Role::SchemeAdmin], h),
    ] {
        assert_eq!(b.save_user(name, roles, hold).await.status, 303);
    }
    // The edit page opens with what the user has.
    let page = b.get("/users/edit?username=ptc").await;
    assert!(page.body.contains("value=\"ops@example.invalid\""));
    assert!(page.body.contains("value=\"ptc\" checked"), "{}", page.body);
    assert!(page.body.contains("value=\"test-manager\" checked"));
    assert!(!page.body.contains("value=\"service-manager\" checked"));

    // Only the email changed: the roles stay; the audit record names the user and the change.
    let csrf = Browser::csrf(&page);
    let r = b
        .post(
            "/users",
            &[
                ("csrf", &csrf),
                ("username", "ptc"),
                ("original_roles", "ptc,test-manager"),
                ("original_holdernames", ""),
                ("display_name", "ptc"),
                ("email", "new@example.invalid"),
                ("role", "ptc"),
                ("role", "test-manager"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ptc = s.user("ptc").await;
    assert_eq!(ptc.roles, [Role::Ptc, Role::TestManager]);
    assert_eq!(ptc.email, "new@example.invalid");
    assert!(
        s.audited("console:pbc", "user_changed user=ptc email")
            .await
    );

    // A role given meanwhile (another PBC, another instance) stays when this page adds one.
    let page = b.get("/users/edit?username=ptc").await;
    let store = s.env.store();
    let mut meanwhile = s.user("ptc").await;
    meanwhile.roles.push(Role::ServiceManager);
    pdp_provider::console::save_user(&store, meanwhile, None, 4)
        .await
        .unwrap();
    let csrf = Browser::csrf(&page);
    let form = [
        ("csrf", csrf.as_str()),
        ("username", "ptc"),
        ("original_roles", "ptc,test-manager"),
        ("original_holdernames", ""),
        ("display_name", "ptc"),
        ("email", "new@example.invalid"),
        ("role", "ptc"),
        ("role", "test-manager"),
        ("role", "security-lead"),
    ];
    assert_eq!(b.post("/users", &form).await.status, 303);
    let roles = s.user("ptc").await.roles;
    assert_eq!(
        roles,
        [
            Role::Ptc,
            Role::TestManager,
            Role::ServiceManager,
            Role::SecurityLead
        ]
    );
    assert!(
        s.audited("console:pbc", "user_changed user=ptc roles=+security-lead")
            .await
    );

    // The add form does not overwrite a user.
    let r = b.save_user("ptc", &[Role::TestManager], "").await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("USERNAME_TAKEN"), "{}", r.body);
    assert_eq!(s.user("ptc").await.roles.len(), 4);

    // Suspending keeps roles and holdernames; unsuspending gives the same user back.
    assert_eq!(b.action("/users/suspend", "admin").await.status, 303);
    let admin = s.user("admin").await;
    assert!(admin.suspended);
    assert_eq!(admin.roles, [Role::SchemeAdmin]);
    assert_eq!(admin.holdernames[0].to_string(), h);
    assert_eq!(b.action("/users/unsuspend", "admin").await.status, 303);
    assert!(!s.user("admin").await.suspended);
    assert!(s.audited("console:pbc", "user_suspended user=admin").await);
    assert!(
        s.audited("console:pbc", "user_unsuspended user=admin")
            .await
    );

    // The only PBC can neither be suspended nor lose the role.
    let r = b.action("/users/suspend", "pbc").await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("LAST_ACTIVE_PBC"), "{}", r.body);
    assert!(!s.user("pbc").await.suspended);
    let r = b.edit_user("pbc", &[Role::SecurityLead], "").await;
    assert_eq!(r.status, 422);
    assert!(s.user("pbc").await.has(Role::Pbc));

    // With a second PBC, one may suspend the other, but not then themselves.
    assert_eq!(b.save_user("pbc2", &[Role::Pbc], "").await.status, 303);
    let mut other = Browser::new(&s.env, &s.server);
    assert!(other.sign_in("pbc2", PASSWORD).await.signed_in());
    assert_eq!(other.action("/users/suspend", "pbc").await.status, 303);
    assert_eq!(
        b.get("/").await.status,
        303,
        "the suspended PBC's session ended"
    );
    let r = other.action("/users/suspend", "pbc2").await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("LAST_ACTIVE_PBC"));
    assert!(!s.user("pbc2").await.suspended);
    s.server.stop().await;
}

/// Runs the real binary's `console` subcommand `args` on `config`, with `env` set; its output.
fn console_cli(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .arg("console")
        .args(args)
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test]
async fn a_locked_out_organisation_recovers_on_the_command_line_audited() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    // Locked out as the console now refuses to let anyone do: the only PBC suspended (written
    // to the store past the role rules).
    let store = s.env.store();
    let mut pbc = s.user("pbc").await;
    pbc.suspended = true;
    pbc.password_hash.clear();
    store
        .save_console_user(pbc, Box::new(|_, _| Ok(())))
        .await
        .unwrap();
    let mut locked = Browser::new(&s.env, &s.server);
    assert_eq!(locked.sign_in("pbc", PASSWORD).await.status, 401);
    let config = s.env.dir.path().join("cli.toml");
    let toml = s
        .env
        .serve_toml(&s.env.cert(files::DATA_KEY), &s.cas.base_url(), "");
    std::fs::write(&config, toml).unwrap();

    // Unsuspended: the PBC signs in again.
    console_cli(&config, &["unsuspend", "pbc"], &[]);
    assert!(locked.sign_in("pbc", PASSWORD).await.signed_in());
    // A new password: the old one no longer signs in, and sessions signed in with it end.
    let new = "a brand new passphrase";
    console_cli(
        &config,
        &["reset-password", "pbc"],
        &[("PDP_CONSOLE_PASSWORD", new)],
    );
    assert_eq!(locked.get("/").await.status, 303, "the old session ended");
    assert_eq!(locked.sign_in("pbc", PASSWORD).await.status, 401);
    assert!(locked.sign_in("pbc", new).await.signed_in());
    // The second factor removed: the next sign-in enrols again (a new secret, a QR code).
    let before = secret_of(&locked.base, "pbc");
    console_cli(&config, &["reset-mfa", "pbc"], &[]);
    assert_eq!(
        locked.get("/").await.status,
        303,
        "sessions end with the factor"
    );
    assert!(locked.sign_in("pbc", new).await.signed_in());
    assert_ne!(secret_of(&locked.base, "pbc"), before);

    let audit = store.audit_records(0, i64::MAX, None).await.unwrap();
    for (endpoint, outcome) in [
        ("console unsuspend pbc", "user_unsuspended user=pbc"),
        ("console reset-password pbc", "password_reset user=pbc"),
        ("console reset-mfa pbc", "mfa_reset user=pbc"),
    ] {
        assert!(
            audit.iter().any(|a| a.endpoint == endpoint
                && a.outcome == outcome
                && a.party.starts_with("operator")),
            "{endpoint}"
        );
    }
    // An unknown user is an error, not a silent success.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args(["console", "unsuspend", "nobody", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no console user \"nobody\""));
    s.server.stop().await;
}

#[tokio::test]
async fn every_user_needs_a_second_factor_whose_codes_sign_in_once() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    // The password alone opens no session.
    let p = b.get("/sign-in").await;
    let csrf = Browser::csrf(&p);
    let r = b
        .post(
            "/sign-in",
            &[("csrf", &csrf), ("username", "pbc"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/sign-in/code");
    assert!(!r.signed_in());
    assert_eq!(b.get("/").await.status, 303);
    assert_eq!(b.get("/users").await.status, 303);
    // Enrolment: a QR code and the key; a wrong code is refused and nothing is stored.
    let page = b.get("/sign-in/code").await;
    let secret = between(&page.body, "id=\"totp-secret\">", "<")
        .unwrap()
        .to_owned();
    assert!(page.body.contains("data:image/png;base64,"));
    let csrf = Browser::csrf(&page);
    let wrong = if code_at(&secret, now_step()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = b
        .post("/sign-in/code", &[("csrf", &csrf), ("code", wrong)])
        .await;
    assert_eq!(r.status, 401);
    let id = s.user("pbc").await.id;
    assert_eq!(s.env.store().console_mfa(id).await.unwrap().secret, None);
    // The right code: the secret stored sealed, recovery codes shown once and stored hashed.
    enrolled(&b.base, "pbc", &secret);
    let code = next_code(&b.base, "pbc").await;
    let r = b
        .post("/sign-in/code", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert!(r.signed_in(), "{}", r.body);
    let codes: Vec<String> = r
        .body
        .split("<li><code>")
        .skip(1)
        .map(|c| c[..c.find('<').unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 8, "{}", r.body);
    assert_eq!(b.get("/").await.status, 200);
    let mfa = s.env.store().console_mfa(id).await.unwrap();
    let raw: Vec<u8> =
        AsRef::<[u8]>::as_ref(&totp_rs::Secret::try_from_base32(&secret).unwrap()).to_vec();
    assert_eq!(mfa.secret.as_deref(), Some(&raw[..]));
    let sealed: Vec<u8> = s
        .env
        .sql()
        .query_row(
            "SELECT totp_sealed FROM console_users WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sealed.windows(raw.len()).any(|w| w == &raw[..]));
    assert!(mfa
        .recovery_hashes
        .iter()
        .all(|h| h.starts_with("$argon2id$")));

    // The same code again (someone who saw it) is refused; a later step's is accepted.
    let mut again = Browser::new(&s.env, &s.server);
    let p = again.get("/sign-in").await;
    let csrf = Browser::csrf(&p);
    again
        .post(
            "/sign-in",
            &[("csrf", &csrf), ("username", "pbc"), ("password", PASSWORD)],
        )
        .await;
    let page = again.get("/sign-in/code").await;
    assert!(!page.body.contains("totp-secret"), "enrolled once");
    let csrf = Browser::csrf(&page);
    let r = again
        .post("/sign-in/code", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(r.status, 401);
    // A recovery code signs in once.
    let r = again
        .post("/sign-in/code", &[("csrf", &csrf), ("code", &codes[0])])
        .await;
    assert!(r.signed_in());
    let mut third = Browser::new(&s.env, &s.server);
    let p = third.get("/sign-in").await;
    let csrf = Browser::csrf(&p);
    third
        .post(
            "/sign-in",
            &[("csrf", &csrf), ("username", "pbc"), ("password", PASSWORD)],
        )
        .await;
    let csrf = Browser::csrf(&third.get("/sign-in/code").await);
    let r = third
        .post("/sign-in/code", &[("csrf", &csrf), ("code", &codes[0])])
        .await;
    assert_eq!(r.status, 401, "a recovery code used twice");
    assert_eq!(
        s.env
            .store()
            .console_mfa(id)
            .await
            .unwrap()
            .recovery_hashes
            .len(),
        7
    );

    // A PBC resets another user's second factor: their session ends, and they enrol again.
    assert_eq!(
        b.save_user("tm", &[Role::TestManager], "").await.status,
        303
    );
    let mut tm = Browser::new(&s.env, &s.server);
    assert!(tm.sign_in("tm", PASSWORD).await.signed_in());
    let first = secret_of(&tm.base, "tm");
    assert_eq!(b.action("/users/reset-mfa", "tm").await.status, 303);
    assert_eq!(tm.get("/").await.status, 303);
    assert!(tm.sign_in("tm", PASSWORD).await.signed_in());
    assert_ne!(secret_of(&tm.base, "tm"), first);
    assert!(s.audited("console:pbc", "mfa_reset user=tm").await);
    assert!(
        s.audited("console:pbc", "signed_in recovery_code codes_left=7")
            .await
    );

    // A secret no configured data key opens (an old key removed before a re-seal): the code
    // page says so, no code from it passes, a recovery code still does, and the PBC's list
    // shows it needs a reset.
    let junk = vec![1u8; 60];
    s.env
        .sql()
        .execute(
            "UPDATE console_users SET totp_sealed = ?1 WHERE id = ?2",
            rusqlite::params![junk, id],
        )
        .unwrap();
    let mut lost = Browser::new(&s.env, &s.server);
    let p = lost.get("/sign-in").await;
    let csrf = Browser::csrf(&p);
    lost.post(
        "/sign-in",
        &[("csrf", &csrf), ("username", "pbc"), ("password", PASSWORD)],
    )
    .await;
    let page = lost.get("/sign-in/code").await;
    assert!(page.body.contains("cannot be read here"), "{}", page.body);
    assert!(!page.body.contains("totp-secret"), "no enrolment offered");
    let csrf = Browser::csrf(&page);
    let code = next_code(&b.base, "pbc").await;
    let r = lost
        .post("/sign-in/code", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(r.status, 401);
    let r = lost
        .post("/sign-in/code", &[("csrf", &csrf), ("code", &codes[1])])
        .await;
    assert!(r.signed_in());
    assert!(lost
        .get("/users")
        .await
        .body
        .contains("unreadable with the data keys"));
    s.server.stop().await;
}

#[tokio::test]
async fn users_change_their_own_password_and_their_other_sessions_end() {
    let s = setup().await;
    let mut b = Browser::new(&s.env, &s.server);
    assert!(b.sign_in("pbc", PASSWORD).await.signed_in());
    assert_eq!(
        b.save_user("svc", &[Role::ServiceManager], "").await.status,
        303
    );
    let mut svc = Browser::new(&s.env, &s.server);
    assert!(svc.sign_in("svc", PASSWORD).await.signed_in());
    let mut elsewhere = Browser::new(&s.env, &s.server);
    assert!(elsewhere.sign_in("svc", PASSWORD).await.signed_in());
    let page = svc.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("8 recovery codes left"), "{}", page.body);
    let csrf = Browser::csrf(&page);
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("current", current.to_owned()),
            ("new", new.to_owned()),
            ("confirm", confirm.to_owned()),
        ]
    };
    let post = async |b: &mut Browser, form: [(&str, String); 4]| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post("/account/password", &form).await
    };
    let new = "my own new passphrase";
    let r = post(&mut svc, change("not my password!", new, new)).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("current password is not right"));
    let r = post(&mut svc, change(PASSWORD, new, "something else entirely")).await;
    assert_eq!(r.status, 422);
    let r = post(&mut svc, change(PASSWORD, "short", "short")).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at least 12 characters"));
    let r = post(&mut svc, change(PASSWORD, new, new)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(svc.get("/").await.status, 200, "this session goes on");
    assert_eq!(elsewhere.get("/").await.status, 303, "the other one ended");
    let mut later = Browser::new(&s.env, &s.server);
    assert_eq!(later.sign_in("svc", PASSWORD).await.status, 401);
    assert!(later.sign_in("svc", new).await.signed_in());
    assert!(s.audited("console:svc", "password_changed user=svc").await);
    s.server.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_store_no_typed_text_and_are_throttled_per_address_and_per_user() {
    let s = setup().await;
    let from = |last: u8| IpAddr::from([127, 0, 0, last]);
    // A password typed into the username field: refused, audited as unknown, stored nowhere.
    let typed = "Hunter2-typed-in-the-wrong-box";
    let mut b = Browser::from_address(&s.env, &s.server, from(1));
    assert_eq!(b.sign_in(typed, "whatever it was").await.status, 401);
    assert!(s.audited("console:(unknown)", "sign_in_refused").await);
    let sql = s.env.sql();
    for table in [
        "audit_log",
        "console_sign_in_failures",
        "console_sign_in_sources",
    ] {
        let rows: Vec<String> = sql
            .prepare(&format!("SELECT * FROM {table}"))
            .unwrap()
            .query_map([], |r| {
                let n = r.as_ref().column_count();
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<String>())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!rows.is_empty() || table != "audit_log");
        assert!(
            rows.iter().all(|r| !r.contains("Hunter2")),
            "{table} holds the typed text: {rows:?}"
        );
    }

    // One address guessing the PBC's password is stopped (429) before the PBC is locked out:
    // the PBC signs in from another address.
    for _ in 0..4 {
        assert_eq!(b.sign_in("pbc", "a wrong guess!!").await.status, 401);
    }
    let r = b.sign_in("pbc", PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("from your address"), "{}", r.body);
    let mut pbc = Browser::from_address(&s.env, &s.server, from(2));
    assert!(pbc.sign_in("pbc", PASSWORD).await.signed_in());

    // Guesses from several addresses lock the user (wherever they sign in from), not the
    // addresses' other users.
    for last in [3, 4] {
        let mut g = Browser::from_address(&s.env, &s.server, from(last));
        for _ in 0..5 {
            assert_eq!(g.sign_in("pbc", "a wrong guess!!").await.status, 401);
        }
    }
    let mut pbc = Browser::from_address(&s.env, &s.server, from(5));
    let r = pbc.sign_in("pbc", PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many failed sign-ins: try again"));
    s.server.stop().await;
}

/// The second step of signing in, in Chromium: the enrolment (its QR code and key; the key
/// noted, a code typed, the recovery codes shown, on to the console) or the code page.
pub(crate) async fn chromium_second_factor(c: &fantoccini::Client, base: &str, user: &str) {
    use fantoccini::Locator;
    c.wait().for_element(Locator::Id("code")).await.unwrap();
    let enrolling = match c.find(Locator::Id("totp-secret")).await {
        Ok(el) => {
            enrolled(base, user, &el.text().await.unwrap());
            let qr = c.find(Locator::Id("totp-qr")).await.unwrap();
            let src = qr.attr("src").await.unwrap().unwrap();
            assert!(src.starts_with("data:image/png;base64,"));
            true
        }
        Err(_) => false,
    };
    let code = next_code(base, user).await;
    c.find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    c.find(Locator::Id("verify"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if enrolling {
        let list = c
            .wait()
            .for_element(Locator::Id("recovery-codes"))
            .await
            .unwrap();
        assert_eq!(list.find_all(Locator::Css("li")).await.unwrap().len(), 8);
        c.find(Locator::Id("continue"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
}

/// Signs in through the sign-in page in Chromium, both steps; `shot` takes the code page's
/// screenshot.
async fn chromium_sign_in<F, Fut>(c: &fantoccini::Client, base: &str, user: &str, shot: Option<&F>)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use fantoccini::Locator;
    c.goto(&format!("{base}/sign-in")).await.unwrap();
    for (id, text) in [("username", user), ("password", PASSWORD)] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    if let Some(shot) = shot {
        c.wait().for_element(Locator::Id("code")).await.unwrap();
        shot("mfa-code").await;
    }
    chromium_second_factor(c, base, user).await;
    c.wait().for_element(Locator::Css("nav")).await.unwrap();
}

#[tokio::test]
async fn console_in_chromium_enrols_mfa_keeps_roles_on_edit_and_refuses_the_last_pbc() {
    use fantoccini::Locator;
    let s = setup().await;
    let store = s.env.store();
    let ptc = pdp_provider::store::console::ConsoleUser {
        id: 0,
        username: "ptc".into(),
        display_name: "Pat Technical".into(),
        email: "ptc@example.invalid".into(),
        password_hash: String::new(),
        roles: vec![Role::Ptc, Role::TestManager],
        holdernames: Vec::new(),
        suspended: false,
        confirmed_at: None,
        updated_at: 0,
    };
    pdp_provider::console::save_user(&store, ptc, Some(PASSWORD.into()), 4)
        .await
        .unwrap();
    let (_driver, c) = chromium(&spki_hash(&s.env.cert(files::SERVER))).await;
    let base = format!(
        "https://localhost:{}",
        s.server.console_addr.unwrap().port()
    );
    let shot = |name: &'static str| crate::console::screenshot(&c, name);

    // Enrolment at the first sign-in: the QR code, a code from the secret, recovery codes.
    c.goto(&format!("{base}/sign-in")).await.unwrap();
    for (id, text) in [("username", "pbc"), ("password", PASSWORD)] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("totp-qr")).await.unwrap();
    shot("mfa-enrol").await;
    chromium_second_factor(&c, &base, "pbc").await;
    c.wait().for_element(Locator::Css("nav")).await.unwrap();

    // The edit page opens pre-filled; changing the email alone keeps both roles.
    c.goto(&format!("{base}/users")).await.unwrap();
    c.find(Locator::Css("tr[data-username=\"ptc\"] button.edit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let email = c.wait().for_element(Locator::Id("email")).await.unwrap();
    assert_eq!(
        email.prop("value").await.unwrap().as_deref(),
        Some("ptc@example.invalid")
    );
    shot("user-edit").await;
    email.clear().await.unwrap();
    email.send_keys("tech@example.invalid").await.unwrap();
    c.find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("Saved"));
    shot("users").await;
    let ptc = s.user("ptc").await;
    assert_eq!(ptc.email, "tech@example.invalid");
    assert_eq!(ptc.roles, [Role::Ptc, Role::TestManager]);

    // The only PBC suspending themselves is refused, naming the rule.
    c.find(Locator::Css("tr[data-username=\"pbc\"] button.suspend"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = c.wait().for_element(Locator::Css(".error")).await.unwrap();
    assert!(error.text().await.unwrap().contains("LAST_ACTIVE_PBC"));
    assert!(!s.user("pbc").await.suspended);

    // Signing in again asks for a code only (no new enrolment).
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("username")).await.unwrap();
    chromium_sign_in(&c, &base, "pbc", Some(&shot)).await;
    assert!(s.audited("console:pbc", "signed_in").await);
    c.close().await.unwrap();
    s.server.stop().await;
}

#[tokio::test]
async fn the_demo_starts_its_console_and_create_pbc_on_its_config_writes_to_its_store() {
    let dir = tempfile::tempdir().unwrap();
    // config/dev.toml with every listener on port 0, so that tests run side by side.
    let dev = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml"))
        .unwrap()
        .replace("127.0.0.1:8443", "127.0.0.1:0")
        .replace("127.0.0.1:9090", "127.0.0.1:0")
        .replace("127.0.0.1:9443", "127.0.0.1:0");
    assert!(
        dev.contains("[console]"),
        "config/dev.toml has a [console] section"
    );
    let config = dir.path().join("dev.toml");
    std::fs::write(
        &config,
        format!("{dev}\n[cas]\nbase_url = \"https://127.0.0.1:0\"\n"),
    )
    .unwrap();
    let (certs, data) = (dir.path().join("certs"), dir.path().join("demo"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args([
            "demo",
            "--exit",
            "--members",
            "60",
            "--finds",
            "3",
            "--config",
        ])
        .arg(&config)
        .arg("--certs")
        .arg(&certs)
        .arg("--dir")
        .arg(&data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("operator console on https://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no console address: {text}"));
    assert!(!line.contains("127.0.0.1:0 "), "{line}");
    let demo_config = data.join("demo.toml");
    assert!(
        text.contains(&format!(
            "console create-pbc \\\n    --config {}",
            demo_config.display()
        )),
        "{text}"
    );
    // The command it prints, run as printed, creates the PBC in the demo's store.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args([
            "console",
            "create-pbc",
            "--username",
            "pbc",
            "--name",
            "Pat",
        ])
        .args(["--email", "pbc@example.invalid", "--config"])
        .arg(&demo_config)
        .env("PDP_CONSOLE_PASSWORD", PASSWORD)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = pdp_provider::sealed::DataKey::from_hex(
        &std::fs::read_to_string(certs.join(files::DATA_KEY)).unwrap(),
    )
    .unwrap();
    let store = pdp_provider::store::Store::open(
        &data.join("pdp.sqlite"),
        key,
        pdp_provider::store::StoreLimits::default(),
    )
    .unwrap();
    let pbc = store.console_user("pbc").await.unwrap().unwrap();
    assert!(pbc.has(Role::Pbc));
    store.close().await;
}
