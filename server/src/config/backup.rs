//! `[backup]`: backups the server takes of its embedded store on a schedule.
//!
//! Off unless `directory` is set. Every `interval_s` the server writes an online copy of the
//! SQLite store into `directory` (`pdp-<UTC time>.sqlite`) and keeps the newest `keep`. Whatever
//! was ACKed after the newest copy is lost with the disk: `interval_s` is the data at risk.

use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, Backend, ConfigError};

/// Scheduled backups of the embedded store.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Where copies go (another disk, or a mount that is copied off the host). Unset: the
    /// server takes none itself (`pdp-provider backup --to` still works).
    pub directory: Option<PathBuf>,
    /// Seconds between copies: what was ACKed since the last one is lost with the disk.
    pub interval_s: u64,
    /// Copies kept in `directory`; older ones are deleted after each good copy.
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            directory: None,
            interval_s: 3_600,
            keep: 48,
        }
    }
}

// === impl BackupConfig ===

impl BackupConfig {
    /// Checks ranges that serde cannot, for the store's backend.
    pub(super) fn validate(&self, backend: Backend) -> Result<(), ConfigError> {
        if self.directory.is_none() {
            return Ok(());
        }
        if backend == Backend::Postgres {
            return Err(invalid(
                "backup.directory",
                "backs up the embedded store only; back up PostgreSQL with its own tools \
                 (pg_basebackup and a synchronous standby: deploy/README.md)",
            ));
        }
        if !(60..=7 * 86_400).contains(&self.interval_s) {
            return Err(invalid(
                "backup.interval_s",
                "must be 60 to 604800 (a week)",
            ));
        }
        if self.keep == 0 {
            return Err(invalid("backup.keep", "must be at least 1"));
        }
        Ok(())
    }

    /// The interval, when backups are on.
    pub fn every(&self) -> Option<std::time::Duration> {
        self.directory
            .as_ref()
            .map(|_| std::time::Duration::from_secs(self.interval_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_checked_when_on() {
        let c = BackupConfig::default();
        assert_eq!(c.every(), None);
        assert!(c.validate(Backend::Postgres).is_ok());
        let on = BackupConfig {
            directory: Some("/backups".into()),
            ..c
        };
        assert_eq!(on.every(), Some(std::time::Duration::from_secs(3_600)));
        assert!(on.validate(Backend::Sqlite).is_ok());
        let e = on.validate(Backend::Postgres).unwrap_err().to_string();
        assert!(e.starts_with("backup.directory: "), "{e}");
        for (bad, field) in [
            (
                BackupConfig {
                    interval_s: 59,
                    ..on.clone()
                },
                "backup.interval_s",
            ),
            (
                BackupConfig {
                    keep: 0,
                    ..on.clone()
                },
                "backup.keep",
            ),
        ] {
            let e = bad.validate(Backend::Sqlite).unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
    }
}
