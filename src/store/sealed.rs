//! Find data sealed at rest with AES-256-GCM.
//!
//! Record format: a 12-byte random nonce followed by the ciphertext and its 16-byte tag. The
//! find request ID is the associated data, so a sealed blob moved to another row fails to open.
//! The key lives outside the database (a file or an environment variable named in config).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::config::CryptoConfig;

const NONCE_LEN: usize = 12;

/// Why a key could not be loaded or a blob opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Neither a key file nor a key variable is configured or present.
    #[error("no data key: {0}")]
    NoKey(String),
    /// The key is not 64 hex digits.
    #[error("data key is not 64 hex digits (32 bytes)")]
    BadKey,
    /// Wrong key, wrong row, or tampered data.
    #[error("sealed data failed authentication")]
    Open,
}

/// The AES-256-GCM key that seals find data, UATs and PATs at rest.
#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([secret key elided])")
    }
}

// === impl DataKey ===

impl DataKey {
    /// Reads the key named by config: the environment variable wins over the file.
    pub fn load(config: &CryptoConfig) -> Result<Self, SealError> {
        if let Some(var) = &config.data_key_env {
            if let Ok(v) = std::env::var(var) {
                return Self::from_hex(&v);
            }
            if config.data_key_file.is_none() {
                return Err(SealError::NoKey(format!(
                    "environment variable {var} is not set"
                )));
            }
        }
        let path = config
            .data_key_file
            .as_ref()
            .ok_or_else(|| SealError::NoKey("crypto.data_key_file is not set".into()))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| SealError::NoKey(format!("{}: {e}", path.display())))?;
        Self::from_hex(&text)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex_key: &str) -> Result<Self, SealError> {
        let mut bytes = hex::decode(hex_key.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes));
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(Self { cipher })
    }

    /// A fresh random key as 64 hex digits (for `keys init`).
    pub fn generate_hex() -> String {
        hex::encode(Aes256Gcm::generate_key(OsRng))
    }

    /// Seals `plaintext`, bound to `aad` (the row's ID).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a blob sealed with the same key and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
        let sealed = key.seal(b"row-1", b"JANE O'DONNELL");
        assert!(!sealed.windows(4).any(|w| w == b"JANE"));
        assert_eq!(key.open(b"row-1", &sealed).unwrap(), b"JANE O'DONNELL");
        assert!(key.open(b"row-2", &sealed).is_err());
        let other = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
        assert!(other.open(b"row-1", &sealed).is_err());
    }

    #[test]
    fn bad_keys() {
        assert!(matches!(DataKey::from_hex("abcd"), Err(SealError::BadKey)));
        assert!(matches!(
            DataKey::from_hex(&"zz".repeat(32)),
            Err(SealError::BadKey)
        ));
        assert!(format!("{:?}", DataKey::from_hex(&"00".repeat(32)).unwrap()).contains("elided"));
    }
}
