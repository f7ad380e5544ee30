//! The claims of a compact JWT, read without verifying it: for the few places that only need to
//! look inside a token another party verifies (a PAT's `exp`, a UAT's `sub`; the simulators'
//! view of the tokens they mint). Never use it to trust a token: `view_data::token` verifies.

use base64::Engine;

/// The payload of `token` (`header.payload.signature`) as JSON, or `None` when it is not a
/// readable JWT.
pub fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
