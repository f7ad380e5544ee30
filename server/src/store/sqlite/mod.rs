//! The embedded backend: SQLite in WAL mode with `synchronous = FULL`.
//!
//! WAL lets the read pool run beside the one writer connection; `FULL` makes each commit sync
//! the WAL, which is what makes an ACK durable. This directory is the only code that spells SQL:
//!
//! - [`finds`]: the find queue: appends at the ACK, claims with a lease, ends.
//! - [`peis`]: PeIs, PATs and calculations.
//! - [`members`]: member records and their pensions' view data.
//! - [`audit`]: the audit trail, its retention purge, heartbeats and the SLA samples.
//! - [`keys`]: the sealed columns, for re-sealing under a new data key.
//! - [`audit`] also keeps the daily jobs' runs (`daily_runs`).
//! - [`reports`]: PDP reporting: facts, announced unavailability, the submissions' claims.
//!
//! [`backend`] implements the store's [`super::backend::Backend`] over them: writes ride the
//! group commits of [`writer`], reads run on a pool of read connections. Each SQL function takes
//! the connection it runs on: the writer's transaction for writes, a pooled one for reads. None of them seals or opens: values
//! arrive sealed and leave sealed, and [`super::Store`] holds the key.

mod audit;
mod backend;
mod console;
mod finds;
mod keys;
mod members;
mod peis;
mod reports;
mod tx;
mod writer;

pub(super) use backend::Sqlite;

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Connection;

use super::schema::{self, Dialect};
use super::{stored_date as date, StoreError};

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

/// What every connection is set to.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
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

/// Stores the enums as their spellings, and refuses unknown spellings on the way out.
macro_rules! sql_enum {
    ($($name:ident),+) => {$(
        impl ToSql for super::model::$name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for super::model::$name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = value.as_str()?;
                super::model::$name::parse(s).ok_or_else(|| {
                    FromSqlError::Other(format!("unknown {} {s:?}", stringify!($name)).into())
                })
            }
        }
    )+};
}

super::model::for_each_stored_enum!(sql_enum);

/// A stored GUID.
fn guid(s: &str) -> rusqlite::Result<uuid::Uuid> {
    uuid::Uuid::try_parse(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
mod tests;
