//! Personal data sealed at rest with AES-256-GCM: find data, PATs, member records, view data.
//!
//! Record format: a version byte (`1`), the 4-byte ID of the key that sealed it (the first bytes
//! of the key's SHA-256), a 12-byte random nonce, then the ciphertext and its 16-byte tag. The
//! row's ID is the associated data, so a sealed blob moved to another row fails to open. Records
//! of the first format (nonce, ciphertext; no key ID) still open with any configured key.
//!
//! The keys live outside the database (files or an environment variable named in config): one
//! active key seals, older keys only open. Rotation: add a new key as the active one and keep the
//! old one as `old_data_key_files`; `keys rotate` re-seals what is stored with the new key
//! ([`crate::store::Store::reseal`]); then the old key can go.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::config::CryptoConfig;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The format with a key ID.
const VERSION: u8 = 1;
/// Version byte and key ID.
const HEADER_LEN: usize = 1 + 4;

/// Which key sealed a record: the first 4 bytes of the key's SHA-256.
pub type KeyId = [u8; 4];

/// The ID of the key that sealed `sealed`, as the record carries it; `None` for a record of the
/// first format (no key ID) or one too short to be sealed.
pub fn sealed_by(sealed: &[u8]) -> Option<KeyId> {
    if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
        return None;
    }
    Some([sealed[1], sealed[2], sealed[3], sealed[4]])
}

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
    /// It opened, but what it holds is packed in a form this version does not read.
    #[error("sealed data opened but does not unpack")]
    Unpack,
}

/// The data keys: the active one seals, every one opens. Cheap to clone.
#[derive(Clone)]
pub struct DataKey {
    active: (KeyId, Aes256Gcm),
    older: Vec<(KeyId, Aes256Gcm)>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([secret key elided])")
    }
}

// === impl DataKey ===

impl DataKey {
    /// Reads the keys named by config: the active one (the environment variable wins over the
    /// file) and the older ones that still open what they sealed.
    pub fn load(config: &CryptoConfig) -> Result<Self, SealError> {
        let mut key = Self::load_active(config)?;
        for path in &config.old_data_key_files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SealError::NoKey(format!("{}: {e}", path.display())))?;
            key = key.opening(Self::from_hex(&text)?);
        }
        Ok(key)
    }

    fn load_active(config: &CryptoConfig) -> Result<Self, SealError> {
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
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        let id: KeyId = [digest[0], digest[1], digest[2], digest[3]];
        Ok(Self {
            active: (id, cipher),
            older: Vec::new(),
        })
    }

    /// These keys, and `old`'s too for opening (never for sealing).
    pub fn opening(mut self, old: DataKey) -> Self {
        for k in std::iter::once(old.active).chain(old.older) {
            if k.0 != self.active.0 && !self.older.iter().any(|o| o.0 == k.0) {
                self.older.push(k);
            }
        }
        self
    }

    /// The active key's ID, as records it seals begin (after the version byte).
    pub fn active_id(&self) -> KeyId {
        self.active.0
    }

    /// The first bytes of every record the active key seals: to find those it did not.
    pub fn active_prefix(&self) -> [u8; HEADER_LEN] {
        let id = self.active.0;
        [VERSION, id[0], id[1], id[2], id[3]]
    }

    fn cipher(&self, id: &[u8]) -> Option<&Aes256Gcm> {
        std::iter::once(&self.active)
            .chain(&self.older)
            .find(|(k, _)| k.as_slice() == id)
            .map(|(_, c)| c)
    }

    /// A fresh random key as 64 hex digits (for `keys init`).
    pub fn generate_hex() -> String {
        hex::encode(Aes256Gcm::generate_key(OsRng))
    }

    /// Seals `plaintext` with the active key, bound to `aad` (the row's ID).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let ct = self
            .active
            .1
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&self.active_prefix());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a blob sealed with one of these keys and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let decrypt = |cipher: &Aes256Gcm, body: &[u8]| {
            let (nonce, ct) = body.split_at(NONCE_LEN);
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
                .ok()
        };
        if sealed.len() >= HEADER_LEN + NONCE_LEN + TAG_LEN && sealed[0] == VERSION {
            if let Some(cipher) = self.cipher(&sealed[1..HEADER_LEN]) {
                if let Some(plain) = decrypt(cipher, &sealed[HEADER_LEN..]) {
                    return Ok(plain);
                }
            }
        }
        // The first format: no key ID, so try each key.
        if sealed.len() >= NONCE_LEN + TAG_LEN {
            for (_, cipher) in std::iter::once(&self.active).chain(&self.older) {
                if let Some(plain) = decrypt(cipher, sealed) {
                    return Ok(plain);
                }
            }
        }
        Err(SealError::Open)
    }
}

/// What a record's header says about whether these keys open it, read without opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// It names a configured key.
    Known,
    /// It names a key that is not configured: it does not open.
    Unknown,
    /// The first format (no key ID): only opening it tells.
    Unnamed,
}

impl DataKey {
    /// Whether these keys open a record, from its first bytes alone (at least 5; see the module
    /// doc's format): a scan of millions of rows reads this rather than opening each.
    pub fn header(&self, first: &[u8]) -> Header {
        if first.len() < HEADER_LEN || first[0] != VERSION {
            return Header::Unnamed;
        }
        match self.cipher(&first[1..HEADER_LEN]) {
            Some(_) => Header::Known,
            None => Header::Unknown,
        }
    }
}

/// The secret the match index's look-up keys are hashed with: HMAC-SHA256, truncated to 64
/// bits. It is random, and stored sealed with the data key, so that the hashes in the store
/// (a member's name and date of birth, NINO) tell nothing without the data key, and rotating
/// the data key re-seals it without re-hashing a member.
#[derive(Clone)]
pub struct IndexKey(hmac::Hmac<sha2::Sha256>);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey([secret key elided])")
    }
}

// === impl IndexKey ===

impl IndexKey {
    /// Bytes of a key.
    pub const LEN: usize = 32;

    /// A fresh random key, as bytes to seal and store.
    pub fn generate() -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(Aes256Gcm::generate_key(OsRng).to_vec())
    }

    /// The key from its stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() != Self::LEN {
            return Err(SealError::BadKey);
        }
        <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(bytes)
            .map(Self)
            .map_err(|_| SealError::BadKey)
    }

    /// The keyed hash of `parts` (each length-prefixed, so no two lists hash alike).
    pub fn hash(&self, parts: &[&[u8]]) -> u64 {
        use hmac::Mac;
        let mut mac = self.0.clone();
        for p in parts {
            mac.update(&(p.len() as u32).to_be_bytes());
            mac.update(p);
        }
        let out = mac.finalize().into_bytes();
        u64::from_le_bytes(out[..8].try_into().expect("SHA-256 has 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_which_key_without_opening() {
        let key = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
        let other = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
        let sealed = key.seal(b"row-1", b"x");
        assert_eq!(key.header(&sealed[..5]), Header::Known);
        assert_eq!(other.header(&sealed[..5]), Header::Unknown);
        assert_eq!(key.header(&[0; 5]), Header::Unnamed);
    }

    #[test]
    fn index_hashes_are_keyed_and_framed() {
        let a = IndexKey::from_bytes(&IndexKey::generate()).unwrap();
        let b = IndexKey::from_bytes(&IndexKey::generate()).unwrap();
        assert_eq!(a.hash(&[b"ab", b"c"]), a.hash(&[b"ab", b"c"]));
        assert_ne!(a.hash(&[b"ab", b"c"]), a.hash(&[b"a", b"bc"]));
        assert_ne!(a.hash(&[b"ab"]), b.hash(&[b"ab"]));
        assert!(IndexKey::from_bytes(&[0; 31]).is_err());
    }

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

    /// A record of the first format: nonce and ciphertext, no key ID.
    fn legacy_seal(hex_key: &str, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let bytes = hex::decode(hex_key).unwrap();
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes));
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap();
        [nonce.as_slice(), &ct].concat()
    }

    #[test]
    fn records_carry_their_key_id_and_every_configured_key_opens() {
        let (a, b) = (DataKey::generate_hex(), DataKey::generate_hex());
        let old = DataKey::from_hex(&a).unwrap();
        let sealed_old = old.seal(b"r", b"secret");
        assert_eq!(sealed_old[0], VERSION);
        assert_eq!(sealed_old[1..5], old.active_id());
        // The new key seals; the old one still opens what it sealed, and the first format.
        let ring = DataKey::from_hex(&b).unwrap().opening(old.clone());
        let sealed_new = ring.seal(b"r", b"secret");
        assert_eq!(sealed_new[..5], ring.active_prefix());
        assert_ne!(ring.active_id(), old.active_id());
        assert_eq!(ring.open(b"r", &sealed_old).unwrap(), b"secret");
        assert_eq!(ring.open(b"r", &sealed_new).unwrap(), b"secret");
        let legacy = legacy_seal(&a, b"r", b"secret");
        assert_eq!(ring.open(b"r", &legacy).unwrap(), b"secret");
        // Without the old key, what it sealed does not open; the wrong row never does.
        let new_only = DataKey::from_hex(&b).unwrap();
        assert!(new_only.open(b"r", &sealed_old).is_err());
        assert!(new_only.open(b"r", &legacy).is_err());
        assert!(ring.open(b"other-row", &sealed_new).is_err());
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
