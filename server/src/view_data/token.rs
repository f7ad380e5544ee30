//! The signed view data token (wire contract §3.2) and the provider's public JWK set.
//!
//! A compact JWS, RS256 by default (PS256 or ES256 configurable: an RSA key for the first two, a
//! P-256 key for ES256), header `kid` and `typ: JWT`; claims
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

use crate::config::Config;

/// How long a view signing key is used before it is replaced: one year.
///
/// The key is a bare PKCS#8 key, with no validity of its own, and PDP publishes the JWK set the
/// provider gives it without an end date; so the key's "expiry" is the end of its cryptoperiod,
/// counted from when its file was last written (made, or put in place with `mv`). One year is
/// the short end of the one to three years NIST SP 800-57 Part 1 (§5.3.6) suggests for a private
/// signature key's use. `pdp_signing_key_expiry_seconds` counts down to it; rotate with the
/// publish, wait, switch, retire steps, which write a new key file.
pub const SIGNING_KEY_CRYPTOPERIOD: std::time::Duration =
    std::time::Duration::from_secs(365 * 86_400);

/// Seconds from `now` until the key file at `path` reaches the end of its
/// [`SIGNING_KEY_CRYPTOPERIOD`], counted from its modification time (negative once past).
pub fn key_expiry(path: &Path, now: std::time::SystemTime) -> std::io::Result<i64> {
    let written = std::fs::metadata(path)?.modified()?;
    let due = written + SIGNING_KEY_CRYPTOPERIOD;
    Ok(match due.duration_since(now) {
        Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
    })
}

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
    /// The key is not an RSA or P-256 PKCS#8 PEM key.
    #[error("{0}: not an RSA or P-256 private key (PKCS#8 PEM)")]
    Key(String),
    /// The algorithm is not supported.
    #[error("view.algorithm: {0} is not supported (RS256, PS256 or ES256)")]
    Algorithm(String),
    /// The key does not suit the algorithm.
    #[error("view.algorithm: {algorithm} needs {needs}")]
    KeyType {
        /// The configured algorithm.
        algorithm: String,
        /// The kind of key it needs.
        needs: &'static str,
    },
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
    /// `RS256`, `PS256` or `ES256`.
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

/// A fresh P-256 key as PKCS#8 PEM (for `view.algorithm = "ES256"`).
pub fn generate_ec_pem() -> Result<String, SignError> {
    use p256::pkcs8::EncodePrivateKey as _;
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    Ok(key
        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
        .map_err(|e| SignError::Key(e.to_string()))?
        .to_string())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key's public JWK (with `alg`) and RFC 7638 thumbprint, and its encoding key.
struct KeyParts {
    jwk: serde_json::Value,
    kid: String,
    key: EncodingKey,
}

/// Reads a PKCS#8 PEM private key for `alg`: RSA for RS256 and PS256, P-256 for ES256.
fn key_parts(pem: &str, alg: Algorithm, alg_name: &str) -> Result<KeyParts, SignError> {
    let key_error = |e: &dyn std::fmt::Display| SignError::Key(e.to_string());
    let wrong = |needs| SignError::KeyType {
        algorithm: alg_name.to_owned(),
        needs,
    };
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let (thumbprint, mut jwk, key) = match alg {
        Algorithm::ES256 => {
            let private = p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| {
                if rsa::RsaPrivateKey::from_pkcs8_pem(pem).is_ok() {
                    wrong("a P-256 key, not an RSA one")
                } else {
                    key_error(&e)
                }
            })?;
            let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                &private.public_key(),
                false,
            );
            let (x, y) = match (point.x(), point.y()) {
                (Some(x), Some(y)) => (b64(x), b64(y)),
                _ => return Err(key_error(&"a P-256 point without coordinates")),
            };
            // Re-encoded: ring signs only from a PKCS#8 document that carries the public key,
            // which a valid file may leave out; p256 always writes it.
            let der =
                p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&private).map_err(|e| key_error(&e))?;
            (
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                EncodingKey::from_ec_der(der.as_bytes()),
            )
        }
        _ => {
            let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| {
                if p256::SecretKey::from_pkcs8_pem(pem).is_ok() {
                    wrong("an RSA key, not a P-256 one")
                } else {
                    key_error(&e)
                }
            })?;
            let n = b64(&private.n().to_bytes_be());
            let e = b64(&private.e().to_bytes_be());
            (
                format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
                serde_json::json!({"kty": "RSA", "n": n, "e": e}),
                EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| key_error(&e))?,
            )
        }
    };
    let kid = b64(&sha2::Sha256::digest(thumbprint.as_bytes()));
    jwk["use"] = "sig".into();
    jwk["alg"] = alg_name.into();
    jwk["kid"] = kid.clone().into();
    Ok(KeyParts { jwk, kid, key })
}

// === impl Signer ===

impl Signer {
    /// The signer `config` describes (`[view]`): the active key and those published beside it;
    /// the audience defaults to the CAS token endpoint.
    pub fn from_config(config: &Config) -> Result<Self, SignError> {
        let v = &config.view;
        Self::load_keyring(
            &v.signing_key,
            &v.published_keys,
            TokenSettings {
                issuer: v.issuer.clone(),
                audience: v
                    .audience
                    .clone()
                    .unwrap_or_else(|| config.cas.token_endpoint()),
                ttl_s: v.token_ttl_s,
                algorithm: v.algorithm.clone(),
            },
        )
    }

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
            // A published key may be of the other family (a move from RSA to P-256 or back):
            // it is published without `alg`, since which of its family's algorithms signed
            // with it (RS256 or PS256) is not known here; verifiers take the token's.
            let other = Self::load(path, settings.clone()).or_else(|e| match e {
                SignError::KeyType { .. } => {
                    let algorithm = if settings.algorithm == "ES256" {
                        "RS256"
                    } else {
                        "ES256"
                    };
                    let mut other = Self::load(
                        path,
                        TokenSettings {
                            algorithm: algorithm.into(),
                            ..settings.clone()
                        },
                    )?;
                    if let Some(jwk) = other.jwks["keys"][0].as_object_mut() {
                        jwk.remove("alg");
                    }
                    Ok(other)
                }
                e => Err(e),
            })?;
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
            "ES256" => Algorithm::ES256,
            other => return Err(SignError::Algorithm(other.to_owned())),
        };
        let KeyParts { jwk, kid, key } = key_parts(pem, alg, &settings.algorithm)?;
        let jwks = serde_json::json!({ "keys": [jwk] });
        let mut header = Header::new(alg);
        header.kid = Some(kid.clone());
        header.typ = Some("JWT".into());
        let signer = Self {
            key,
            header,
            settings,
            jwks,
            kid,
        };
        // A key that loads but cannot sign is refused now, not at the first view.
        signer.sign("urn:pei:check", "{}")?;
        Ok(signer)
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
    fn es256_tokens_verify_against_their_ec_jwk() {
        let mut s = settings();
        s.algorithm = "ES256".into();
        let signer = Signer::from_pem(&generate_ec_pem().unwrap(), s.clone()).unwrap();
        let jwk = &signer.jwks()["keys"][0];
        assert_eq!(
            (
                jwk["kty"].as_str(),
                jwk["crv"].as_str(),
                jwk["alg"].as_str()
            ),
            (Some("EC"), Some("P-256"), Some("ES256"))
        );
        // The kid is the RFC 7638 thumbprint of the public key.
        let thumbprint = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        assert_eq!(
            signer.kid(),
            b64(&sha2::Sha256::digest(thumbprint.as_bytes()))
        );
        let token = signer.sign("urn:pei:a:b", "{}").unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().alg,
            Algorithm::ES256
        );
        assert!(verifies(&token, signer.jwks()));
        // An RSA key for ES256, or a P-256 key for RS256, is named as the wrong kind.
        let e = Signer::from_pem(&generate_rsa_pem().unwrap(), s).unwrap_err();
        assert!(e.to_string().contains("needs a P-256 key"), "{e}");
        let e = Signer::from_pem(&generate_ec_pem().unwrap(), settings()).unwrap_err();
        assert!(e.to_string().contains("needs an RSA key"), "{e}");
    }

    #[test]
    fn a_move_from_rsa_to_p256_publishes_both_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (rsa, ec) = (dir.path().join("rsa.key"), dir.path().join("ec.key"));
        std::fs::write(&rsa, generate_rsa_pem().unwrap()).unwrap();
        std::fs::write(&ec, generate_ec_pem().unwrap()).unwrap();
        let old = Signer::load(&rsa, settings()).unwrap();
        let signed_before = old.sign("urn:pei:a:b", "{}").unwrap();
        let mut s = settings();
        s.algorithm = "ES256".into();
        let new = Signer::load_keyring(&ec, std::slice::from_ref(&rsa), s).unwrap();
        let algs: Vec<Option<&str>> = new.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["alg"].as_str())
            .collect();
        assert_eq!(
            algs,
            [Some("ES256"), None],
            "the RSA key's algorithm is the token's"
        );
        assert!(verifies(&signed_before, new.jwks()));
        assert!(verifies(
            &new.sign("urn:pei:a:b", "{}").unwrap(),
            new.jwks()
        ));
    }

    #[test]
    fn a_signing_key_is_due_a_year_after_its_file_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("view-signing.key");
        std::fs::write(&path, generate_ec_pem().unwrap()).unwrap();
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(key_expiry(&path, written).unwrap(), 365 * 86_400);
        assert_eq!(key_expiry(&path, written + 358 * day).unwrap(), 7 * 86_400);
        assert_eq!(key_expiry(&path, written + 366 * day).unwrap(), -86_400);
        // A key put in place later (a rotation) starts its own year.
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(written + 300 * day).unwrap();
        assert_eq!(
            key_expiry(&path, written + 358 * day).unwrap(),
            307 * 86_400
        );
        assert!(key_expiry(&dir.path().join("absent.key"), written).is_err());
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
        let alg = jsonwebtoken::decode_header(token).unwrap().alg;
        let mut v = jsonwebtoken::Validation::new(alg);
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
