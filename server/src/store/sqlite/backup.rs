//! Online copies of the embedded store, and what a restore reads from one before it is used.
//!
//! A copy is taken with SQLite's online backup API on a read connection of its own, opened on
//! the store's file beside whoever writes it (the server's writer thread, or another process).
//! The connection first opens a read transaction and holds it to the end: in WAL mode that pins
//! one snapshot, so every page copied is of the same commit and the copy never restarts, while
//! the writer goes on committing into the WAL (readers never block it; checkpoints stop short of
//! the snapshot, so the WAL grows by what is committed during the copy). Pages are copied a step
//! at a time with a pause between steps, so the copy's reads and writes leave the ACK's fsyncs
//! room, and what each step wrote is synced before the next, so that the copy never holds much
//! unwritten data for a WAL fsync to wait behind. The copy is written beside its destination,
//! checked (`quick_check`), switched from WAL to a rollback journal (one self-contained file, no
//! `-wal` beside it), synced, and only then renamed into place: a crash mid-copy leaves no file
//! under the backup's name.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::BUSY_TIMEOUT;
use crate::store::backup::BackupError;
use crate::store::keys::RowId;
use crate::store::StoreError;

type Result<T, E = BackupError> = std::result::Result<T, E>;

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> Self {
        BackupError::Store(StoreError::from(e))
    }
}

/// How fast a copy goes: pages per step, and the pause after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Pages copied in one step (SQLite's pages: 4 KiB by default).
    pub pages_per_step: i32,
    /// The pause between steps.
    pub pause: Duration,
}

impl Default for Pace {
    /// 1 MiB a step, 10 ms between steps: at most 100 MB/s, so that the copy's writes leave the
    /// disk to the WAL's fsyncs (a 3.6 GB store of 1,000,000 members in well under a minute;
    /// measured in BENCHMARKS.md, "Backups").
    fn default() -> Self {
        Self {
            pages_per_step: 256,
            pause: Duration::from_millis(10),
        }
    }
}

/// A copy taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Where it is.
    pub path: PathBuf,
    /// Its pages.
    pub pages: u64,
    /// Its size on disk.
    pub bytes: u64,
    /// How long it took, checks and sync included.
    pub elapsed: Duration,
}

/// Whether a copy is checked once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Verify {
    /// `PRAGMA quick_check` on the copy: a backup is good only if it passes.
    QuickCheck,
    /// None here: the caller checks it fully (a restore's `integrity_check`).
    ByCaller,
}

/// Copies the store at `source` to `to` (which must not exist) at `pace`.
pub(in crate::store) fn copy(
    source: &Path,
    to: &Path,
    pace: Pace,
    verify: Verify,
) -> Result<Copied> {
    let started = Instant::now();
    if to.exists() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let partial = with_suffix(to, ".partial");
    remove_if_there(&partial)?;
    let out = copy_into(source, &partial, pace, verify);
    if out.is_err() {
        for ext in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&partial, ext));
        }
    }
    let pages = out?;
    sync_file(&partial)?;
    std::fs::rename(&partial, to).map_err(|e| io(to, e))?;
    sync_dir(to)?;
    let bytes = std::fs::metadata(to).map_err(|e| io(to, e))?.len();
    Ok(Copied {
        path: to.to_owned(),
        pages,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// The copy itself, into `partial`: its page count.
fn copy_into(source: &Path, partial: &Path, pace: Pace, verify: Verify) -> Result<u64> {
    let src = open_existing(source)?;
    // One snapshot for the whole copy: a read transaction held open across the steps.
    src.execute_batch("BEGIN")?;
    src.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut dst = Connection::open(partial)?;
    // The copy's own handle, to sync what each step wrote: dirty pages of the copy left to pile
    // up would be flushed by the journal commit of the next WAL fsync (ext4's ordered mode), in
    // the path of an ACK.
    let written = std::fs::File::open(partial).map_err(|e| io(partial, e))?;
    {
        let backup = Backup::new(&src, &mut dst)?;
        loop {
            // `More`, or `Busy`/`Locked` (the destination, briefly): go on after the pause.
            let step = backup.step(pace.pages_per_step)?;
            written.sync_data().map_err(|e| io(partial, e))?;
            if step == StepResult::Done {
                break;
            }
            std::thread::sleep(pace.pause);
        }
    }
    src.execute_batch("ROLLBACK")?;
    drop(src);
    let ok: String = match verify {
        Verify::QuickCheck => dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?,
        Verify::ByCaller => "ok".into(),
    };
    if ok != "ok" {
        return Err(BackupError::Check(format!("quick_check: {ok}")));
    }
    let mode: String = dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(BackupError::Check(format!("stayed in journal mode {mode}")));
    }
    let pages: i64 = dst.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    dst.close().map_err(|(_, e)| BackupError::from(e))?;
    Ok(u64::try_from(pages).unwrap_or(0))
}

/// What a restore reads from a copy before it is used.
#[derive(Debug, Clone)]
pub(in crate::store) struct Inspected {
    /// `PRAGMA integrity_check`'s findings; empty when it answered `ok`.
    pub integrity: Vec<String>,
    /// The newest schema migration applied; `None` when the file has no migration history.
    pub schema: Option<i64>,
    /// Sealed values to try the data key on: `(row ID, sealed)`.
    pub sealed: Vec<(String, Vec<u8>)>,
}

/// Integrity findings kept at most (`integrity_check` stops after as many).
const INTEGRITY_FINDINGS: usize = 20;

/// Reads a copy at `path` (an existing SQLite file): its integrity, its schema version and a
/// sample of up to `sample` sealed values from each sealed column.
pub(in crate::store) fn inspect(path: &Path, sample: usize) -> Result<Inspected> {
    let conn = open_existing(path)?;
    let mut stmt = conn.prepare(&format!("PRAGMA integrity_check({INTEGRITY_FINDINGS})"))?;
    let integrity: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let integrity = if integrity == ["ok"] {
        Vec::new()
    } else {
        integrity
    };
    let history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'refinery_schema_history')",
        [],
        |r| r.get(0),
    )?;
    let schema = if history {
        conn.query_row(
            "SELECT max(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )?
    } else {
        None
    };
    let mut sealed = Vec::new();
    if history && integrity.is_empty() {
        for (table, id, column, narrow, form) in crate::store::keys::SEALED {
            let sql = format!(
                "SELECT {id}, {column} FROM {table}
                  WHERE {narrow} AND {column} IS NOT NULL ORDER BY {id} LIMIT ?1"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([i64::try_from(sample).unwrap_or(i64::MAX)], |r| {
                Ok((r.get::<_, rusqlite::types::Value>(0)?, r.get(1)?))
            })?;
            for row in rows {
                let (id, value) = row?;
                let id = match (form, id) {
                    (RowId::Text, rusqlite::types::Value::Text(t)) => t,
                    (RowId::Guid, rusqlite::types::Value::Blob(b)) => RowId::guid_text(&b)?,
                    _ => return Err(StoreError::Corrupt("row ID").into()),
                };
                sealed.push((id, value));
            }
        }
    }
    Ok(Inspected {
        integrity,
        schema,
        sealed,
    })
}

/// Puts a checked copy in place as the store at `target`: what is there (with its `-wal` and
/// `-shm`, which would otherwise be read as the copy's) is first moved aside under
/// `<target>.before-restore-<suffix>`; the copy is renamed over and its directory synced.
/// Answers where the old files went.
pub(in crate::store) fn install(
    checked: &Path,
    target: &Path,
    suffix: &str,
) -> Result<Vec<PathBuf>> {
    sync_file(checked)?;
    let mut moved = Vec::new();
    for ext in ["", "-wal", "-shm"] {
        let old = with_suffix(target, ext);
        if old.exists() {
            let aside = with_suffix(target, &format!(".before-restore-{suffix}{ext}"));
            std::fs::rename(&old, &aside).map_err(|e| io(&old, e))?;
            moved.push(aside);
        }
    }
    std::fs::rename(checked, target).map_err(|e| io(target, e))?;
    sync_dir(target)?;
    Ok(moved)
}

/// Opens an existing database file (never creating one) read-only. On a store in WAL mode
/// that others write, it reads committed frames of the WAL as any reader does.
fn open_existing(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(BackupError::NoFile(path.to_owned()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `path` with `suffix` after its file name.
pub(in crate::store) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path, e)),
        _ => Ok(()),
    }
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(path, e))
}

/// Syncs the directory holding `path`, so that a rename in it is durable.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(dir, e))
}

fn io(path: &Path, source: std::io::Error) -> BackupError {
    BackupError::Io {
        path: path.to_owned(),
        source,
    }
}
