//! Sign-in, sessions and CSRF tokens.
//!
//! - Passwords are argon2id PHC strings (the `argon2` crate's defaults: 19 MiB, 2 passes),
//!   hashed and verified off the runtime. A failed sign-in answers the same whether the user
//!   exists or not (a dummy hash is verified for an unknown one). [`MAX_FAILURES`] failures in a
//!   row lock a user for [`LOCKOUT`], counted in the store across every instance under a keyed
//!   digest of the name typed (never the text itself: people type passwords there), and
//!   [`MAX_SOURCE_FAILURES`] passwords lock a source address (an IPv6 address by its /64),
//!   whoever it tries: one address cannot lock a user out on its own. A code after a right
//!   password counts for the user alone.
//! - A password alone signs nobody in: it opens a pending sign-in ([`Pending`], 5 minutes, its
//!   own `__Host-` cookie) that a TOTP code (RFC 6238) or a recovery code completes; a user
//!   without a second factor enrols one there first ([`super::mfa`]).
//! - A session is a 256-bit random token in a `__Host-` cookie (`Secure`, `HttpOnly`,
//!   `SameSite=Strict`, `Path=/`); the server keeps only its SHA-256, with the user's id, its
//!   CSRF token, its times and a digest of the credential it signed in with (the password hash
//!   and when the second factor was enrolled, [`credential`]). Sessions end
//!   after `console.session_idle_timeout_s` without a request, `console.session_max_age_s`
//!   after sign-in, at sign-out, at restart (kept in memory, per instance; rejected option: a
//!   sessions table, which would let a session outlive the operator's intent across restarts
//!   for no gain here), and at the first request after the user is suspended, their password
//!   changes or their second factor is reset, whichever instance (or command) made the change:
//!   each request reads the user as stored.
//! - CSRF: every form carries the session's token (synchroniser pattern); sign-in, before any
//!   session, carries a token also set in a short-lived `__Host-` cookie (double submit). Every
//!   `POST` must also come from the console's own origin when the browser says (`Origin`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-pdp-console";
/// The sign-in form's CSRF cookie.
pub const LOGIN_COOKIE: &str = "__Host-pdp-console-login";
/// How long a username is locked after [`MAX_FAILURES`] failed sign-ins.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Failed sign-ins (passwords or codes) in a row before a user is locked out.
pub const MAX_FAILURES: u32 = 10;
/// Failed sign-ins in a row from one source address before it is locked out: fewer than
/// [`MAX_FAILURES`], so that one address cannot lock a user out.
pub const MAX_SOURCE_FAILURES: u32 = 5;
/// The pending sign-in's cookie: a password was right, a code is due.
pub const PENDING_COOKIE: &str = "__Host-pdp-console-mfa";
/// How long a pending sign-in waits for its code.
pub const PENDING_FOR: Duration = Duration::from_secs(5 * 60);

/// A password hashing failure (never the password).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// Hashes a password (argon2id, random salt) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| HashError)
}

/// Whether `password` is the one `phc` was made from.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A fresh random token, URL-safe.
pub fn token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn digest(token: &str) -> [u8; 32] {
    <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into()
}

/// Compares two strings in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's id.
    pub user_id: i64,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The digest of the credential it signed in with (the password hash and when the second
    /// factor was enrolled, [`credential`]): a new password or a reset second factor ends it.
    credential: [u8; 32],
    created: Instant,
    last_seen: Instant,
}

// === impl Session ===

impl Session {
    /// Whether it signed in with `credential` (see [`credential`]).
    pub fn signed_in_with(&self, credential: &str) -> bool {
        self.credential == digest(credential)
    }
}

/// What a session signs in with: the password hash and when the second factor was enrolled.
pub fn credential(password_hash: &str, mfa_enrolled_at: Option<i64>) -> String {
    format!("{password_hash}\n{}", mfa_enrolled_at.unwrap_or(0))
}

/// A sign-in whose password was right, waiting for its code.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The user's id.
    pub user_id: i64,
    /// The token its code form carries.
    pub csrf: String,
    /// The password hash it was opened with.
    pub password_hash: String,
    /// A user enrolling: the secret offered (kept here until a code confirms it).
    pub enrolling: Option<Vec<u8>>,
    created: Instant,
}

/// The pending sign-ins of this instance.
#[derive(Default)]
pub struct PendingSignIns {
    by_digest: Mutex<HashMap<[u8; 32], Pending>>,
}

// === impl PendingSignIns ===

impl PendingSignIns {
    /// Opens a pending sign-in for `user_id`; its cookie token.
    pub fn start(&self, user_id: i64, password_hash: &str) -> String {
        let t = token();
        let now = Instant::now();
        let mut map = self.by_digest.lock().unwrap();
        map.retain(|_, p| now.duration_since(p.created) <= PENDING_FOR);
        map.insert(
            digest(&t),
            Pending {
                user_id,
                csrf: token(),
                password_hash: password_hash.to_owned(),
                enrolling: None,
                created: now,
            },
        );
        t
    }

    /// The pending sign-in of a cookie token, while it lasts.
    pub fn get(&self, token: &str) -> Option<Pending> {
        let mut map = self.by_digest.lock().unwrap();
        let key = digest(token);
        let p = map.get(&key)?;
        if p.created.elapsed() > PENDING_FOR {
            map.remove(&key);
            return None;
        }
        Some(p.clone())
    }

    /// The secret a user enrolling is offered: the one offered before, or `fresh`.
    pub fn offer(&self, token: &str, fresh: Vec<u8>) -> Option<Vec<u8>> {
        let mut map = self.by_digest.lock().unwrap();
        let p = map.get_mut(&digest(token))?;
        Some(p.enrolling.get_or_insert(fresh).clone())
    }

    /// Ends a pending sign-in (completed, or given up).
    pub fn end(&self, token: &str) {
        self.by_digest.lock().unwrap().remove(&digest(token));
    }
}

/// Every live session of this instance.
pub struct Sessions {
    idle: Duration,
    max_age: Duration,
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

// === impl Sessions ===

impl Sessions {
    /// Sessions that end after `idle` without a request, or `max_age` after sign-in.
    pub fn new(idle: Duration, max_age: Duration) -> Self {
        Self {
            idle,
            max_age,
            by_digest: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `user_id`, signed in with `credential` (see [`credential`]); its
    /// cookie token.
    pub fn start(&self, user_id: i64, credential: &str) -> String {
        let t = token();
        let now = Instant::now();
        let mut map = self.by_digest.lock().unwrap();
        map.retain(|_, s| !self.expired(s, now));
        map.insert(
            digest(&t),
            Session {
                user_id,
                csrf: token(),
                credential: digest(credential),
                created: now,
                last_seen: now,
            },
        );
        t
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) > self.idle || now.duration_since(s.created) > self.max_age
    }

    /// The live session of a cookie token, touched.
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.by_digest.lock().unwrap();
        let key = digest(token);
        let s = map.get_mut(&key)?;
        if self.expired(s, now) {
            map.remove(&key);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    /// Ends a session.
    pub fn end(&self, token: &str) {
        self.by_digest.lock().unwrap().remove(&digest(token));
    }

    /// Ends every session of a user (suspended, password changed, second factor reset).
    pub fn end_user(&self, user_id: i64) {
        self.by_digest
            .lock()
            .unwrap()
            .retain(|_, s| s.user_id != user_id);
    }
}

/// A `Set-Cookie` value: `__Host-` rules (Secure, Path=/, no Domain), HttpOnly, SameSite=Strict.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>) -> String {
    let mut c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/");
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age.as_secs() as i64));
    }
    c.build().encoded().to_string()
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_passwords_hash_with_argon2_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn console_sessions_end_by_user_and_by_password() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(3600));
        let t = s.start(7, &credential("$argon2id$a", Some(1)));
        let session = s.get(&t).unwrap();
        assert!(session.signed_in_with(&credential("$argon2id$a", Some(1))));
        assert!(!session.signed_in_with(&credential("$argon2id$b", Some(1))));
        assert!(!session.signed_in_with(&credential("$argon2id$a", None)));
        assert_eq!(s.get(&t).unwrap().user_id, 7);
        assert!(s.get("other").is_none());
        s.end_user(7);
        assert!(s.get(&t).is_none());
        // A pending sign-in offers one secret until it ends.
        let pending = PendingSignIns::default();
        let p = pending.start(7, "$argon2id$a");
        assert_eq!(pending.offer(&p, vec![1]), Some(vec![1]));
        assert_eq!(pending.offer(&p, vec![2]), Some(vec![1]));
        assert_eq!(pending.get(&p).unwrap().user_id, 7);
        pending.end(&p);
        assert!(pending.get(&p).is_none() && pending.offer(&p, vec![3]).is_none());
        let c = set_cookie(SESSION_COOKIE, "abc", None);
        assert!(c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    }
}
