//! The signed view data token (SPEC §3.2) and the provider's public JWK set.
//!
//! A compact JWS, RS256 by default (PS256 configurable), header `kid` and `typ: JWT`; claims
//! `iss`, `sub` (the PeI), `aud`, `iat`, `nbf`, `exp`, `jti` and `view_data`, the payload
//! serialised as a JSON *string*. Dashboards verify it against the JWK set the CAS publishes at
//! `jwk_uri`; the provider serves the same set at `/jwks.json` and prints it for onboarding.
//! The `kid` is the key's RFC 7638 thumbprint, so it changes exactly when the key does.

use std::path::Path;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use sha2::Digest;

/// Why the signer could not be built or a token signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key is not an RSA PKCS#8 PEM key.
    #[error("{0}: not an RSA private key (PKCS#8 PEM)")]
    Key(String),
    /// The algorithm is not supported.
    #[error("view.algorithm: {0} is not supported (RS256 or PS256)")]
    Algorithm(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
}

/// Who the tokens are from and for, and how long they live.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// `exp - iat`, seconds.
    pub ttl_s: i64,
    /// `RS256` or `PS256`.
    pub algorithm: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    view_data: &'a str,
}

/// Signs view data tokens with the provider's key.
pub struct Signer {
    key: EncodingKey,
    header: Header,
    settings: TokenSettings,
    jwks: serde_json::Value,
    kid: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("key", &"[secret key elided]")
            .finish()
    }
}

/// A fresh 2048-bit RSA key as PKCS#8 PEM (for `certs init`).
pub fn generate_rsa_pem() -> Result<String, SignError> {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .map_err(|e| SignError::Key(e.to_string()))?;
    Ok(key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| SignError::Key(e.to_string()))?
        .to_string())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// === impl Signer ===

impl Signer {
    /// Loads the signing key from a PEM file.
    pub fn load(path: &Path, settings: TokenSettings) -> Result<Self, SignError> {
        let pem = std::fs::read_to_string(path).map_err(|source| SignError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem, settings).map_err(|e| match e {
            SignError::Key(_) => SignError::Key(path.display().to_string()),
            e => e,
        })
    }

    /// Loads the active signing key and the keys published beside it (PDP is given a new key
    /// before it signs, and an old one stays published until tokens it signed have expired).
    pub fn load_keyring(
        active: &Path,
        published: &[std::path::PathBuf],
        settings: TokenSettings,
    ) -> Result<Self, SignError> {
        let mut signer = Self::load(active, settings.clone())?;
        for path in published {
            let other = Self::load(path, settings.clone())?;
            signer.publish(&other);
        }
        Ok(signer)
    }

    /// Adds `other`'s public key to the published set (once).
    fn publish(&mut self, other: &Signer) {
        let keys = self.jwks["keys"].as_array_mut().expect("a keys array");
        if !keys.iter().any(|k| k["kid"] == other.kid.as_str()) {
            keys.extend(other.jwks["keys"].as_array().into_iter().flatten().cloned());
        }
    }

    /// Builds a signer from PKCS#8 PEM text.
    pub fn from_pem(pem: &str, settings: TokenSettings) -> Result<Self, SignError> {
        let alg = match settings.algorithm.as_str() {
            "RS256" => Algorithm::RS256,
            "PS256" => Algorithm::PS256,
            other => return Err(SignError::Algorithm(other.to_owned())),
        };
        let private =
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| SignError::Key(e.to_string()))?;
        let n = b64(&private.n().to_bytes_be());
        let e = b64(&private.e().to_bytes_be());
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let thumbprint = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = b64(&sha2::Sha256::digest(thumbprint.as_bytes()));
        let jwks = serde_json::json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": settings.algorithm, "kid": kid, "n": n, "e": e
        }]});
        let key =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| SignError::Key(e.to_string()))?;
        let mut header = Header::new(alg);
        header.kid = Some(kid.clone());
        header.typ = Some("JWT".into());
        Ok(Self {
            key,
            header,
            settings,
            jwks,
            kid,
        })
    }

    /// Signs a view data token for `pei` carrying `view_data` (already serialised JSON).
    pub fn sign(&self, pei: &str, view_data: &str) -> Result<String, SignError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.settings.issuer,
            sub: pei,
            aud: &self.settings.audience,
            iat: now,
            nbf: now,
            exp: now + self.settings.ttl_s,
            jti: uuid::Uuid::new_v4().hyphenated().to_string(),
            view_data,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| SignError::Sign(e.to_string()))
    }

    /// The public JWK set: `{"keys": [...]}`, the active key first, then the other published
    /// ones.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// The key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "pdp-provider".into(),
            audience: "https://cas.example.org/token".into(),
            ttl_s: 600,
            algorithm: "RS256".into(),
        }
    }

    #[test]
    fn tokens_verify_against_the_published_jwk_and_carry_view_data_as_a_string() {
        let signer = Signer::from_pem(&generate_rsa_pem().unwrap(), settings()).unwrap();
        let token = signer
            .sign("urn:pei:a:b", r#"{"arrangements":[]}"#)
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(signer.kid()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(signer.jwks()["keys"][0].clone()).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.validate_aud = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "urn:pei:a:b");
        assert_eq!(data.claims["view_data"], r#"{"arrangements":[]}"#);
        assert_eq!(
            data.claims["exp"].as_i64().unwrap() - data.claims["iat"].as_i64().unwrap(),
            600
        );
        // Another key does not verify it.
        let other = Signer::from_pem(&generate_rsa_pem().unwrap(), settings()).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(other.jwks()["keys"][0].clone()).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &v
        )
        .is_err());
    }

    #[test]
    fn unsupported_algorithms_and_bad_keys_are_refused() {
        let mut s = settings();
        s.algorithm = "HS256".into();
        assert!(matches!(
            Signer::from_pem(&generate_rsa_pem().unwrap(), s),
            Err(SignError::Algorithm(_))
        ));
        assert!(matches!(
            Signer::from_pem("nope", settings()),
            Err(SignError::Key(_))
        ));
    }

    /// Verifies `token` against the JWK set as a dashboard does: the key named by its `kid`.
    fn verifies(token: &str, jwks: &serde_json::Value) -> bool {
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let Some(jwk) = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
        else {
            return false;
        };
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &v,
        )
        .is_ok()
    }

    #[test]
    fn a_rotation_keeps_tokens_of_both_keys_verifiable_against_the_published_set() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old.key"), dir.path().join("new.key"));
        std::fs::write(&old, generate_rsa_pem().unwrap()).unwrap();
        std::fs::write(&new, generate_rsa_pem().unwrap()).unwrap();
        // Publish: the old key signs, the new one is published beside it.
        let before = Signer::load_keyring(&old, std::slice::from_ref(&new), settings()).unwrap();
        assert_eq!(before.jwks()["keys"].as_array().unwrap().len(), 2);
        let signed_before = before.sign("urn:pei:a:b", "{}").unwrap();
        // Switch: the new key signs, the old one stays published.
        let after = Signer::load_keyring(&new, std::slice::from_ref(&old), settings()).unwrap();
        let signed_after = after.sign("urn:pei:a:b", "{}").unwrap();
        assert_ne!(before.kid(), after.kid());
        assert_eq!(after.jwks()["keys"][0]["kid"], after.kid());
        for token in [&signed_before, &signed_after] {
            assert!(verifies(token, after.jwks()));
        }
        // The set published before the switch already verifies what is signed after it.
        assert!(verifies(&signed_after, before.jwks()));
        // Retire: once the old key is dropped, only new tokens verify.
        let retired = Signer::load_keyring(&new, &[], settings()).unwrap();
        assert!(!verifies(&signed_before, retired.jwks()));
        assert!(verifies(&signed_after, retired.jwks()));
    }
}
