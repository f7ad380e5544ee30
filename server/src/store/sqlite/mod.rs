//! The embedded backend: SQLite in WAL mode with `synchronous = FULL`, for one instance.
//!
//! WAL lets the read pool run beside the one writer connection; `FULL` makes each commit sync
//! the WAL, which is what makes an ACK durable. Every write rides the writer thread's group
//! commits ([`writer`]), each unit of work inside its own savepoint; reads run on a pool of read
//! connections off the runtime. A unit of work's statements are blocking calls on a
//! [`tx::SqliteTx`], so its future finishes at its first poll ([`run_blocking`]).

pub(super) mod backup;
mod recent;
mod tx;
mod writer;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::db::Database;
use super::group_commit::{Front, GroupCommit};
use super::schema::{self, Dialect};
use super::sql::{run_blocking, Access, Erased, Work};
use super::{blocking, Result, StoreError, StoreLimits};
use tx::SqliteTx;
use writer::Job;

/// The embedded backend.
pub(super) struct Sqlite {
    front: Front<Box<dyn writer::Write>>,
    reads: ReadPool,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and starts its writer thread; with the
    /// count of open finds.
    pub(super) fn open(path: &Path, limits: StoreLimits) -> Result<(Self, u64)> {
        let mut conn = open_writer(path)?;
        let open = run_blocking(Box::pin(super::finds::open_count(&mut SqliteTx(&mut conn))))?;
        let reads = read_pool(path, limits.readers)?;
        let (front, rx, running) = Front::new(limits.channel_capacity);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, rx, limits.max_batch.max(1), running))
            .map_err(|source| StoreError::Io {
                path: "store-writer thread".into(),
                source,
            })?;
        Ok((Self { front, reads }, open))
    }

    /// Runs `f` on a pooled read connection, off the runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let reads = self.reads.clone();
        blocking(move || f(&mut *reads.get()?)).await
    }
}

#[async_trait]
impl Database for Sqlite {
    fn shared(&self) -> bool {
        false
    }

    fn group_commit(&self) -> &dyn GroupCommit {
        &self.front
    }

    async fn run(&self, access: Access, work: Work) -> Result<Erased> {
        let run = move |c: &mut Connection| run_blocking(work(&mut SqliteTx(c)));
        let trial = match access {
            Access::Read => return self.read(run).await,
            // A read transaction sees one snapshot of the WAL.
            Access::Snapshot => {
                return self
                    .read(move |c| {
                        c.execute_batch("BEGIN")?;
                        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(c)));
                        // Never back in the pool inside a transaction, even after a panic: its
                        // reads would stay on this snapshot and hold back checkpoints.
                        if !c.is_autocommit() {
                            c.execute_batch("ROLLBACK")?;
                        }
                        out.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .await;
            }
            Access::Single | Access::Write => false,
            Access::Trial => true,
        };
        let (reply, rx) = oneshot::channel();
        self.front
            .write(Box::new(Job::new(run, reply, trial)))
            .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn checkpoint(&self) -> Result<()> {
        self.read(|c| checkpoint(c)).await
    }
}

/// A pool of read connections.
type ReadPool = r2d2::Pool<SqliteConnectionManager>;

/// How long a connection waits for another process's write lock (operator commands run beside
/// the server). Within this process there is one writer, so it never waits on itself.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the database at `path` for the writer: WAL, full sync, the schema
/// applied, and no automatic checkpoints. A checkpoint copies the WAL into the database file and
/// syncs it; done by the writer it would stall every ACK waiting on that commit, so
/// [`Sqlite`]'s `checkpoint` runs passive checkpoints from the read side instead.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let conn = Connection::open(path)?;
    configure(&conn)?;
    // 8 MiB of page cache: index pages of random-UUID keys stay in memory instead of being
    // re-read on every insert. Much larger costs more than it saves (the cache is walked
    // whenever another connection's commit invalidates it: measured in BENCHMARKS.md).
    conn.pragma_update(None, "cache_size", -8_192)?;
    // A statement that may fail part-way through a transaction (a multi-row insert, one with
    // triggers) keeps the original of each page it changes in a statement journal until it
    // ends: in memory, not written to a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let mut conn = conn;
    migrate(&mut conn)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// Applies the migrations this binary knows and the database lacks ([`schema`]).
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'refinery_schema_history')",
        [],
        |r| r.get(0),
    )?;
    // Reading the history needs no migrations.
    let applied = if history {
        refinery::Runner::new(&[])
            .get_applied_migrations(conn)
            .map_err(|e| schema::error(&e, "store.path"))?
    } else {
        Vec::new()
    };
    schema::runner(Dialect::Sqlite, &applied)
        .run(conn)
        .map(|_| ())
        .map_err(|e| schema::error(&e, "store.path"))
}

/// The read pool over `path` (opened by [`open_writer`] first, so the schema exists).
fn read_pool(path: &Path, size: u32) -> Result<ReadPool, StoreError> {
    let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
    r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(BUSY_TIMEOUT)
        .build(manager)
        .map_err(StoreError::from)
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// What every connection is set to.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Every statement the units of work run stays prepared: rusqlite keeps 16 by default, fewer
    // than one batch of the writer runs, and a cache cycled past its size misses every time.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)
}

/// A passive WAL checkpoint: copies committed frames into the database file. It never blocks
/// the writer.
fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}

#[cfg(test)]
mod tests;
