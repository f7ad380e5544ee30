//! The server's own backups of its embedded store, on a schedule (`[backup]`).
//!
//! Every `backup.interval_s` an online copy of the SQLite store is written into
//! `backup.directory` as `pdp-<UTC time>.sqlite` ([`crate::store::backup::backup`]: SQLite's
//! backup API on a read connection, paced, checked, synced, then renamed into place), and only
//! the newest `backup.keep` copies are kept. At start the newest copy already there counts: the
//! next one is due an interval after it, or now when there is none or it is older.
//!
//! `pdp_backup_last_success_timestamp_seconds` is when the newest good copy was taken; the
//! `PdpBackupTooOld` alert fires when it is more than two intervals old. What was ACKed after the
//! newest copy is lost with the disk: see README.md, "Backups and restores".

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::{Backend, Config};
use crate::store::backup::{BackupError, Copied, Pace};

/// A copy's file name begins so, and ends with [`SUFFIX`]; between them its UTC time, so that
/// names sort by age.
const PREFIX: &str = "pdp-";
/// A copy's file name's ending.
const SUFFIX: &str = ".sqlite";

/// What the schedule needs.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The store's file (`store.path`).
    pub store: PathBuf,
    /// `backup.directory`.
    pub directory: PathBuf,
    /// `backup.interval_s`.
    pub every: Duration,
    /// `backup.keep`.
    pub keep: usize,
}

/// Starts the schedule when the config asks for backups (an embedded store with
/// `backup.directory` set); it stops with `shutdown`.
pub fn spawn(config: &Config, shutdown: &CancellationToken) {
    let (Some(every), Some(directory)) = (config.backup.every(), &config.backup.directory) else {
        return;
    };
    if config.store.backend != Backend::Sqlite {
        return;
    }
    let schedule = Schedule {
        store: config.store.path.clone(),
        directory: directory.clone(),
        every,
        keep: config.backup.keep,
    };
    tokio::spawn(schedule.run(shutdown.clone()));
}

// === impl Schedule ===

impl Schedule {
    /// Takes a copy whenever one is due, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        crate::metrics::backups_on(self.every);
        let newest = newest(&self.directory);
        crate::metrics::backup_last_success(newest.map_or(0.0, seconds_since_epoch));
        let age = newest
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or(self.every);
        let mut due = tokio::time::Instant::now() + self.every.saturating_sub(age);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {
                    let _ = self.once().await;
                    due = tokio::time::Instant::now() + self.every;
                }
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// Takes one copy now, then deletes all but the newest `keep`.
    pub async fn once(&self) -> Result<Copied, BackupError> {
        let out = self.take().await;
        match &out {
            Ok(copied) => {
                crate::metrics::backup_taken(true);
                crate::metrics::backup_last_success(seconds_since_epoch(SystemTime::now()));
                tracing::info!(
                    path = %copied.path.display(),
                    bytes = copied.bytes,
                    seconds = copied.elapsed.as_secs_f64(),
                    "backup taken"
                );
                if let Err(e) = prune(&self.directory, self.keep) {
                    tracing::warn!(error = %e, "deleting old backups");
                }
            }
            Err(e) => {
                crate::metrics::backup_taken(false);
                tracing::error!(error = %e, "backup failed");
            }
        }
        out
    }

    async fn take(&self) -> Result<Copied, BackupError> {
        std::fs::create_dir_all(&self.directory).map_err(|source| BackupError::Io {
            path: self.directory.clone(),
            source,
        })?;
        let name = format!(
            "{PREFIX}{}{SUFFIX}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
        );
        let to = self.directory.join(name);
        crate::store::backup::backup(&self.store, &to, Pace::default()).await
    }
}

/// The copies in `dir`, oldest first.
fn copies(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// When the newest copy in `dir` was written.
fn newest(dir: &Path) -> Option<SystemTime> {
    let last = copies(dir).ok()?.pop()?;
    std::fs::metadata(last).and_then(|m| m.modified()).ok()
}

/// Deletes all but the newest `keep` copies in `dir`, and copies left unfinished by a crash.
fn prune(dir: &Path, keep: usize) -> std::io::Result<()> {
    let all = copies(dir)?;
    let old = all.len().saturating_sub(keep);
    for p in &all[..old] {
        std::fs::remove_file(p)?;
    }
    for e in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".partial") {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

fn seconds_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_by_name_and_drops_unfinished_copies() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "pdp-20260101T000000.000Z.sqlite",
            "pdp-20260102T000000.000Z.sqlite",
            "pdp-20260103T000000.000Z.sqlite",
            "pdp-20260104T000000.000Z.sqlite.partial",
            "other.sqlite",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        prune(dir.path(), 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [names[4], names[1], names[2]]);
        assert!(newest(dir.path()).is_some());
        assert!(newest(&dir.path().join("none")).is_none());
    }
}
