//! Backups of the embedded store, and the checks a restore makes before a copy is used.
//!
//! - [`backup`]: an online, consistent copy of the SQLite store at a path, taken beside the
//!   writer with SQLite's backup API ([`super::sqlite::backup`] says how).
//! - [`check`]: what a copy must pass before it is used: `PRAGMA integrity_check`, the schema
//!   version (not newer than this binary's), and the data keys open a sample of its sealed values
//!   from every sealed column. A value no configured key opens is named by the ID of the key
//!   that sealed it, so the operator knows which key to fetch.
//! - [`restore`]: copies a backup beside the store's path, checks that copy, and only then moves
//!   it into place (the files it replaces are kept aside, never deleted).
//!
//! A PostgreSQL store is backed up and made highly available with PostgreSQL's own tools
//! (`pg_basebackup`, a synchronous standby; `deploy/README.md`), not here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sqlite::backup::{self as sqlite, Verify};
pub use super::sqlite::backup::{Copied, Pace};
use super::{blocking, schema, StoreError};
use crate::sealed::DataKey;

/// Sealed values tried per sealed column when a copy is checked.
pub const KEY_SAMPLE: usize = 200;

/// Why a backup could not be taken or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read, written, synced or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The destination exists: a backup never overwrites a file.
    #[error("{0}: already exists (a backup never overwrites a file)")]
    Exists(PathBuf),
    /// The store or copy to read is not there.
    #[error("{0}: no such file")]
    NoFile(PathBuf),
    /// The copy failed its check after it was written.
    #[error("the copy failed its check: {0}")]
    Check(String),
    /// SQLite failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a restore refused a copy, or could not put it in place.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The copy could not be read or written.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// There is a store at the target already.
    #[error("{0}: a store is there already; stop the server and pass --replace to move it aside")]
    TargetExists(PathBuf),
    /// `PRAGMA integrity_check` found damage.
    #[error("{path}: integrity check failed: {findings}")]
    Corrupt {
        /// The copy.
        path: PathBuf,
        /// What SQLite found (the first few).
        findings: String,
    },
    /// The file has no schema migration history: not a pdp-provider store.
    #[error("{0}: not a pdp-provider store (no schema migration history)")]
    NotAStore(PathBuf),
    /// The copy's schema is newer than this binary knows.
    #[error(
        "{path}: schema migration {found}, newer than this binary's {known}; restore with the \
         pdp-provider version that took it, or a newer one"
    )]
    SchemaTooNew {
        /// The copy.
        path: PathBuf,
        /// The copy's newest migration.
        found: i64,
        /// This binary's.
        known: i64,
    },
    /// Sealed values the configured keys do not open.
    #[error(
        "{path}: the configured data keys do not open {failed} of {checked} sealed values \
         sampled; they were sealed with data key ID {needed}: configure that key \
         (crypto.data_key_file, or crypto.old_data_key_files) and restore again"
    )]
    KeyMissing {
        /// The copy.
        path: PathBuf,
        /// Values tried.
        checked: u64,
        /// Values no configured key opened.
        failed: u64,
        /// The IDs of the keys that sealed them (hex), comma-separated.
        needed: String,
    },
    /// The data key could not be loaded at all.
    #[error("the data key: {cause}; this backup's sealed values need data key ID {needed}")]
    NoKey {
        /// Why it did not load.
        cause: String,
        /// The IDs of the keys that sealed the copy's values (hex), comma-separated.
        needed: String,
    },
}

/// A copy that passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The copy's newest schema migration.
    pub schema: i64,
    /// This binary's newest (a copy at an older one is migrated when `serve` starts on it).
    pub known: i64,
    /// Sealed values tried, all of which opened.
    pub sampled: u64,
    /// The IDs of the keys that sealed them (hex).
    pub key_ids: Vec<String>,
}

/// What a restore does with a copy that passed its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Nothing: the checks only (the staged copy is removed).
    CheckOnly,
    /// Puts it in place where there is no store yet (a store there is refused).
    New,
    /// Puts it in place, moving a store already there aside.
    Replace,
}

/// A restore done.
#[derive(Debug, Clone)]
pub struct Restored {
    /// What the copy passed.
    pub checked: Checked,
    /// Where the files that were at the target went (none for [`RestoreMode::CheckOnly`]).
    pub moved_aside: Vec<PathBuf>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Takes an online, consistent copy of the SQLite store at `store` into `to` (which must not
/// exist), while the store serves.
pub async fn backup(store: &Path, to: &Path, pace: Pace) -> Result<Copied, BackupError> {
    let (store, to) = (store.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || sqlite::copy(&store, &to, pace, Verify::QuickCheck))
        .await
        .map_err(|e| BackupError::Store(StoreError::Task(e.to_string())))?
}

/// Checks a copy (a closed SQLite file, not in use) before it is used: integrity, schema
/// version, and the data keys on a sample of its sealed values. `key` is the configured keys,
/// or why they did not load.
pub fn check(copy: &Path, key: Result<&DataKey, String>) -> Result<Checked, RestoreError> {
    let found = sqlite::inspect(copy, KEY_SAMPLE)?;
    if !found.integrity.is_empty() {
        return Err(RestoreError::Corrupt {
            path: copy.to_owned(),
            findings: found.integrity.join("; "),
        });
    }
    let Some(version) = found.schema else {
        return Err(RestoreError::NotAStore(copy.to_owned()));
    };
    let known = schema::newest();
    if version > known {
        return Err(RestoreError::SchemaTooNew {
            path: copy.to_owned(),
            found: version,
            known,
        });
    }
    let all_ids = ids(found.sealed.iter().map(|(_, s)| s.as_slice()));
    let key = match key {
        Ok(k) => k,
        Err(cause) => {
            return Err(RestoreError::NoKey {
                cause,
                needed: all_ids.join(", "),
            })
        }
    };
    let failed: Vec<&[u8]> = found
        .sealed
        .iter()
        .filter(|(id, sealed)| key.open(id.as_bytes(), sealed).is_err())
        .map(|(_, s)| s.as_slice())
        .collect();
    if !failed.is_empty() {
        return Err(RestoreError::KeyMissing {
            path: copy.to_owned(),
            checked: found.sealed.len() as u64,
            failed: failed.len() as u64,
            needed: ids(failed.into_iter()).join(", "),
        });
    }
    Ok(Checked {
        schema: version,
        known,
        sampled: found.sealed.len() as u64,
        key_ids: all_ids,
    })
}

/// Restores the backup at `from` as the SQLite store at `target`: copies it beside the target,
/// [`check`]s that copy, and moves it into place as `mode` says. A store already at `target` is
/// moved aside (with its `-wal` and `-shm`), never deleted. The server must not be running on
/// `target`.
pub async fn restore(
    from: &Path,
    target: &Path,
    key: Result<DataKey, String>,
    mode: RestoreMode,
) -> Result<Restored, RestoreError> {
    let (from, target) = (from.to_owned(), target.to_owned());
    let out = blocking(move || Ok(restore_blocking(&from, &target, key.as_ref(), mode)));
    out.await
        .map_err(|e| RestoreError::Backup(BackupError::Store(e)))?
}

fn restore_blocking(
    from: &Path,
    target: &Path,
    key: Result<&DataKey, &String>,
    mode: RestoreMode,
) -> Result<Restored, RestoreError> {
    let started = Instant::now();
    if target.exists() && mode == RestoreMode::New {
        return Err(RestoreError::TargetExists(target.to_owned()));
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| BackupError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let staging = sqlite::with_suffix(target, ".restoring");
    if staging.exists() {
        std::fs::remove_file(&staging).map_err(|source| BackupError::Io {
            path: staging.clone(),
            source,
        })?;
    }
    // As fast as the disk goes: nothing serves beside a restore.
    let flat_out = Pace {
        pages_per_step: 16_384,
        pause: Duration::ZERO,
    };
    sqlite::copy(from, &staging, flat_out, Verify::ByCaller)?;
    let checked = match check(&staging, key.map_err(String::clone)) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    let moved_aside = if mode == RestoreMode::CheckOnly {
        std::fs::remove_file(&staging).map_err(|source| BackupError::Io {
            path: staging.clone(),
            source,
        })?;
        Vec::new()
    } else {
        let suffix = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        sqlite::install(&staging, target, &suffix)?
    };
    Ok(Restored {
        checked,
        moved_aside,
        elapsed: started.elapsed(),
    })
}

/// The key IDs (hex) sealed values carry, each once; `first format` for values sealed before
/// key IDs were recorded.
fn ids<'a>(sealed: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let set: BTreeSet<String> = sealed
        .map(|s| match crate::sealed::sealed_by(s) {
            Some(id) => hex::encode(id),
            None => "(first format, no key ID)".to_owned(),
        })
        .collect();
    set.into_iter().collect()
}
