//! The endpoint's keys beside its TLS certificates: a new data key (`keys init`), data key
//! rotation (`keys rotate`: re-seals everything stored under the active data key), and the
//! development set `certs init` writes ([`init_dev`]).
//!
//! The procedure: `keys init --file certs/data-2.key` for a new key; in config make it
//! `crypto.data_key_file` and list the old one in `crypto.old_data_key_files`; restart (new data
//! is sealed with the new key, old data still opens); run `keys rotate` (in the background while
//! the endpoint serves, or offline), which re-seals find data, PATs, member records and view data
//! in batches, each committed, so a crash loses nothing and a re-run goes on where it stopped;
//! when it reports nothing left, drop the old key from config.

use std::path::Path;

use crate::sealed::DataKey;
use crate::store::{ResealCursor, Store, StoreError};
use crate::tls::pki::{self, files};
use crate::tls::TlsError;

/// Values re-sealed per commit.
const BATCH: usize = 1_000;

/// What a rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Values re-sealed with the active key.
    pub resealed: u64,
    /// Values no configured key opens: keep the key that sealed them and run again.
    pub unreadable: u64,
}

/// Re-seals everything not sealed with the active key.
pub async fn rotate(store: &Store, progress: bool) -> Result<Rotated, StoreError> {
    let total = store.sealed_with_other_keys().await?;
    let bar = crate::progress_bar(total, "{bar:40} {pos}/{len} re-sealed, eta {eta}", progress);
    let mut out = Rotated::default();
    let mut cursor = ResealCursor::default();
    while !cursor.finished() {
        let step = store.reseal(cursor, BATCH).await?;
        out.resealed += step.resealed;
        out.unreadable += step.unreadable;
        bar.inc(step.resealed + step.unreadable);
        cursor = step.cursor;
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Why `keys init` wrote no key.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct KeyFileError {
    /// The key file.
    pub path: std::path::PathBuf,
    /// Why (it already exists, or it could not be written).
    pub source: std::io::Error,
}

/// `keys init`: writes a new data key to `file` (mode 0600), never over an existing file: losing
/// a key in use loses everything sealed with it.
pub fn write_new_key(file: &std::path::Path) -> Result<(), KeyFileError> {
    let err = |source| KeyFileError {
        path: file.to_owned(),
        source,
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file).map_err(err)?;
    std::io::Write::write_all(&mut out, DataKey::generate_hex().as_bytes()).map_err(err)
}

/// `certs init`: writes the development set into `dir`, replacing what is there: the PKI
/// ([`pki::init`]), a data key and an RSA key that signs view data tokens.
pub fn init_dev(dir: &Path) -> Result<(), TlsError> {
    pki::init(dir)?;
    pki::write(dir, files::DATA_KEY, &DataKey::generate_hex())?;
    let signing = crate::view_data::token::generate_rsa_pem().map_err(|e| TlsError::Pem {
        path: dir.join(files::VIEW_SIGNING_KEY),
        reason: e.to_string(),
    })?;
    pki::write(dir, files::VIEW_SIGNING_KEY, &signing)?;
    Ok(())
}
