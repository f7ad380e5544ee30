//! The second factor every console user has: TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second
//! steps, one step of clock skew either way; the `totp-rs` crate), enrolled at the first
//! sign-in from a QR code, and recovery codes for a lost authenticator.
//!
//! - The secret is 20 random bytes (RFC 4226's recommended length), sealed at rest with the
//!   data key; a code's time step is accepted once ([`crate::store::Store::accept_totp_step`]).
//! - [`RECOVERY_CODES`] recovery codes are shown once, at enrolment; the store keeps their
//!   argon2 hashes, and each signs in once. A PBC (in the console) or an operator on the server
//!   (`console reset-mfa USER`) removes a user's second factor: they enrol again at their next
//!   sign-in. Each of these is audited.

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Totp};

/// The issuer an authenticator app shows beside the account.
pub const ISSUER: &str = "pdp-provider console";
/// Bytes of a TOTP secret.
pub const SECRET_BYTES: usize = 20;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 8;

/// A TOTP that could not be built or drawn. It names the step only: the library's own error
/// may hold the key URI, and so the secret.
#[derive(Debug, thiserror::Error)]
#[error("TOTP: the {0} failed")]
pub struct MfaError(&'static str);

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut b = vec![0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// The TOTP of `secret` for account `username` (a `:` in it, which the key URI reserves, shown
/// as `-`).
pub fn totp(secret: &[u8], username: &str) -> Result<Totp, MfaError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(secret.to_vec())
        .with_account_name(username.replace(':', "-"))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|_| MfaError("secret's check"))
}

/// What the enrolment page shows: the QR code (a PNG, base64) of the key URI, and the secret
/// in base32 for typing in by hand.
pub fn enrolment(totp: &Totp) -> Result<(String, String), MfaError> {
    let qr = totp.to_qr_base64().map_err(|_| MfaError("QR code"))?;
    Ok((qr, totp.secret().to_base32()))
}

/// The time step a code is for, if it is right at `now_s` (seconds since the epoch), within one
/// step either way. Spaces in the code are ignored.
pub fn check(totp: &Totp, code: &str, now_s: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    totp.check(&code, now_s)
        .and_then(|step| i64::try_from(step).ok())
}

/// Fresh recovery codes: 10 random bytes each, as four groups of four base32 letters.
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 10];
            rand::thread_rng().fill_bytes(&mut b);
            let s = base32(&b);
            format!("{}-{}-{}-{}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
        })
        .collect()
}

/// A recovery code as typed, in the spelling hashed: letters upper-case, no spaces or dashes.
pub fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether what was typed looks like a recovery code rather than a TOTP code.
pub fn is_recovery(code: &str) -> bool {
    normalise_recovery(code).len() == 16
}

/// RFC 4648 base32 without padding (the alphabet of the recovery codes).
fn base32(bytes: &[u8]) -> String {
    totp_rs::Secret::from(bytes.to_vec()).to_base32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_totp_follows_rfc_6238_and_accepts_one_step_of_skew() {
        // RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" gives 94287082 at
        // 59 s (8 digits); its last 6 digits are the 6-digit code.
        let t = totp(b"12345678901234567890", "pbc").unwrap();
        assert_eq!(check(&t, "287082", 59), Some(1));
        assert_eq!(check(&t, "287 082", 59 + 30), Some(1), "one step late");
        assert_eq!(check(&t, "287082", 59 + 90), None, "three steps late");
        assert_eq!(check(&t, "000000", 59), None);
        let (qr, secret) = enrolment(&totp(&new_secret(), "a:b").unwrap()).unwrap();
        assert!(qr.len() > 100 && secret.len() == 32);
    }

    #[test]
    fn console_recovery_codes_are_random_and_typed_loosely() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_ne!(codes[0], codes[1]);
        assert!(is_recovery(&codes[0]) && is_recovery(&codes[0].to_lowercase()));
        assert!(!is_recovery("123456"));
        assert_eq!(
            normalise_recovery("abcd-efgh ijkl-mnop"),
            "ABCDEFGHIJKLMNOP"
        );
    }
}
