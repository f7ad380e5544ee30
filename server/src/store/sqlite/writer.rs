//! Group commit: many concurrent writes, one transaction, one fsync, many answers.
//!
//! # Constraints
//!
//! - A `202` may leave only after its find request is on stable storage (CoCo2.1.1, 2.1.4).
//! - An fsync costs around a millisecond or more; one per write caps the endpoint at a few
//!   hundred writes a second. So every write that arrives while a commit is in flight waits for
//!   the next one, and that one carries them all: find appends at the ACK, audit records, and
//!   every state change of the pipeline and the operators.
//! - Memory is bounded: the channel to the writer holds `journal_channel_capacity` messages.
//!   Find appends never wait for room: past it they fail at once (a `503` with `Retry-After`),
//!   and audit records leave the channel's last quarter to them.
//!
//! # How it works
//!
//! One writer thread owns the one write connection. It blocks for the first message, drains
//! whatever else is queued (up to `journal_max_batch`), and runs the batch in one transaction:
//! find appends and audit records first, then each other write inside its own savepoint, so that
//! one failing write rolls back alone and the rest of the batch commits (a write alone in its
//! batch runs without one: its transaction is rolled back if it fails). Only after the commit
//! (SQLite in WAL mode with `synchronous = FULL` syncs the WAL) is any waiter answered; if the
//! commit fails, every waiter in the batch gets the error and nothing in it was acknowledged.
//!
//! A dedicated OS thread, not a Tokio task, because SQLite calls block.
//!
//! # What a crash leaves behind
//!
//! - Before commit: nothing of the batch is stored and no waiter was answered. The PFS retries
//!   its finds; the pipeline redoes its steps (each is idempotent).
//! - After commit, before the answers: stored; a find's retry with the same X-Request-ID gets
//!   `202` as a duplicate and nothing is processed twice.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use rusqlite::params;

use super::recent::{Key, RecentFinds};
use crate::model::AuditRecord;
use crate::model::{AppendOutcome, FindState};
use crate::store::group_commit::{self, Batch, FailureLog, FindRow, Running};
use crate::store::{Result, StoreError};
/// A message to the writer: appends, audit records, and [`Write`] jobs.
pub(super) type Msg = group_commit::Msg<Box<dyn Write>>;

/// A write run inside a batch, answered after the batch commits.
pub(super) trait Write: Send {
    /// Runs the write on the batch's transaction; false when its changes must not stay (it
    /// failed, or it was a trial): its savepoint is rolled back.
    fn run(&mut self, conn: &mut Connection) -> bool;

    /// Answers the waiter: the write's result, or the commit's error.
    fn answer(self: Box<Self>, committed: Result<(), &str>);
}

/// A write from a closure, with its waiter.
pub(super) struct Job<T, F> {
    f: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    /// A trial runs and answers, and its changes are rolled back (a dry run).
    trial: bool,
}

impl<T, F> Job<T, F> {
    pub(super) fn new(f: F, reply: oneshot::Sender<Result<T, StoreError>>, trial: bool) -> Self {
        Self {
            f: Some(f),
            result: None,
            reply,
            trial,
        }
    }
}

impl<T, F> Write for Job<T, F>
where
    T: Send,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &mut Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let r = f(conn);
        let keep = r.is_ok() && !self.trial;
        self.result = Some(r);
        keep
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let r = match committed {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(StoreError::Commit("write did not finish".into()))),
            Err(e) => Err(StoreError::Commit(e.to_owned())),
        };
        let _ = self.reply.send(r);
    }
}

/// The writer's loop; returns when the channel closes, dropping `_running`.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    _running: Running,
) {
    let mut batch = Batch::new(max_batch);
    let mut failures = FailureLog::default();
    let mut held = Vec::with_capacity(max_batch);
    // Read when `serve` prepares the store, or else at the first find appended: a command
    // that opens the store and appends none (a report, an export) never pays for it.
    let mut recent: Option<RecentFinds> = None;
    let mut wal = WalRestart::default();
    while let Some(first) = rx.blocking_recv() {
        batch.fill(first, &mut rx);
        if batch.preparing && recent.is_none() {
            // Read now rather than at the first append; if it cannot be, it is read then.
            match RecentFinds::load(&conn, crate::now_micros()) {
                Ok(r) => recent = Some(r),
                Err(e) => tracing::warn!(error = %e, "the last day's find IDs not read at start"),
            }
        }
        let started = std::time::Instant::now();
        let mut finds = Finds {
            recent: &mut recent,
            held: &mut held,
        };
        let result = commit(&mut conn, &mut batch, &mut finds);
        if result.is_err() {
            // Nothing of the batch is stored: its IDs were not ACKed.
            if let Some(recent) = recent.as_mut() {
                for key in held.drain(..) {
                    recent.remove(key);
                }
            }
        }
        held.clear();
        crate::metrics::journal_commit(started.elapsed(), batch.records());
        let committed = match result {
            Ok(outcomes) => {
                if !batch.is_empty() {
                    failures.committed();
                }
                for w in batch.writes.drain(..) {
                    w.answer(Ok(()));
                }
                Ok(outcomes)
            }
            Err(e) => {
                failures.failed(&e, batch.taken);
                let cause = e.to_string();
                for w in batch.writes.drain(..) {
                    w.answer(Err(&cause));
                }
                // Another process (an operator command) held the database past the busy
                // time-out, or the disk failed: nothing of the batch is stored; the PFS
                // retries after a 503.
                Err(group_commit::append_error(&e))
            }
        };
        batch.finish(committed, &mut rx);
        wal.catch_up(&conn);
    }
    // The connection closes before `_running` (dropped last) tells `close` the writer stopped.
    drop(conn);
}

/// Keeps the WAL starting again from its beginning under a steady stream of commits.
///
/// Upkeep's passive checkpoints (every second, off the writer) copy the WAL into the database;
/// SQLite starts the WAL again from its beginning only at a write that finds every frame copied.
/// Under steady ACKs there never is one: frames committed during a checkpoint are left for the
/// next, and the WAL grows for as long as the load lasts, each commit lengthening the file (its
/// sync then also journals the size) and each page look-up reading more of the WAL's index.
/// So every [`WalRestart::EVERY`], between two batches, the writer checkpoints what is left
/// itself; the next write starts the WAL again.
///
/// Every batch waits for it, so it is kept short: made once a second, a second's pages to copy
/// and sync, the ACK's p99.9 on this box was 34-40 ms; made ten times a second, about 11 ms, at
/// the same rate (BENCHMARKS.md, "The WAL's catch-up ten times a second").
struct WalRestart {
    last: std::time::Instant,
}

impl Default for WalRestart {
    fn default() -> Self {
        Self {
            last: std::time::Instant::now(),
        }
    }
}

impl WalRestart {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(100);

    fn catch_up(&mut self, conn: &Connection) {
        if self.last.elapsed() < Self::EVERY {
            return;
        }
        self.last = std::time::Instant::now();
        // A checkpoint that cannot finish now (a reader on an older snapshot) leaves the WAL
        // longer, nothing else.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
    }
}

/// One batch in one transaction.
fn commit(
    conn: &mut Connection,
    batch: &mut Batch<Box<dyn Write>>,
    finds: &mut Finds<'_>,
) -> Result<Vec<AppendOutcome>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let committed = in_transaction(conn, batch, finds).and_then(|(outcomes, keep)| {
        let end = if keep { "COMMIT" } else { "ROLLBACK" };
        conn.prepare_cached(end)?.execute([])?;
        Ok(outcomes)
    });
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    committed
}

/// The batch's statements, inside its transaction, and whether it is to be committed (`false`:
/// rolled back).
///
/// A batch of one write and nothing else (a batch of an import, an operator's command) runs
/// without a savepoint, and its transaction is rolled back whole if the write fails: a savepoint
/// keeps the original of every page the write changes in its statement journal, written to a
/// temporary file (thousands of pages for a batch of an import).
fn in_transaction(
    conn: &mut Connection,
    batch: &mut Batch<Box<dyn Write>>,
    finds: &mut Finds<'_>,
) -> Result<(Vec<AppendOutcome>, bool), StoreError> {
    if let [w] = batch.writes.as_mut_slice() {
        if batch.finds.is_empty() && batch.own_audits.is_empty() && batch.audits.is_empty() {
            return Ok((Vec::new(), run_write(conn, w)));
        }
    }
    // The ACK leaves right after this commit: its audit records' response time is now.
    let acked_at = crate::now_micros();
    let outcomes = finds.insert(conn, &batch.finds, acked_at)?;
    batch.stamp_acks(acked_at, &outcomes);
    insert_audits(conn, &batch.own_audits)?;
    insert_audits(conn, &batch.audits)?;
    for w in batch.writes.iter_mut() {
        conn.prepare_cached("SAVEPOINT write")?.execute([])?;
        if !run_write(conn, w) {
            conn.prepare_cached("ROLLBACK TO write")?.execute([])?;
        }
        conn.prepare_cached("RELEASE write")?.execute([])?;
    }
    Ok((outcomes, true))
}

/// Runs a write; whether its changes are to stay. A write that panics is rolled back like one
/// that failed (its waiter gets an error): the writer, and every ACK behind it, goes on.
fn run_write(conn: &mut Connection, w: &mut Box<dyn Write>) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run(conn))).unwrap_or_else(|_| {
        tracing::error!("a store write panicked; rolled back");
        false
    })
}

/// The writer's view of the finds already ACKed, for one batch.
struct Finds<'a> {
    /// The last day's request IDs, once read.
    recent: &'a mut Option<RecentFinds>,
    /// The IDs this batch added to `recent`, taken out again if its commit fails.
    held: &'a mut Vec<Key>,
}

impl Finds<'_> {
    /// Inserts a batch of finds ACKed at `acked_at` (a queued row for each matched one; none
    /// for a no-match, whose audit record is all of it); per find, whether it was new (the
    /// first request with an ID stands). A repeat within the day is recognised in memory; one
    /// of an older find still open, by the open finds' unique index.
    fn insert(
        &mut self,
        conn: &Connection,
        finds: &[FindRow],
        acked_at: i64,
    ) -> Result<Vec<AppendOutcome>> {
        if finds.is_empty() {
            return Ok(Vec::new());
        }
        let recent = match self.recent {
            Some(recent) => recent,
            None => self.recent.insert(RecentFinds::load(conn, acked_at)?),
        };
        recent.forget_before(conn, acked_at)?;
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO find_requests
                 (request_id, received_at, acked_at, state, find_data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut out = Vec::with_capacity(finds.len());
        for f in finds {
            let key = Key::of(&f.request_id);
            if recent.contains(key) {
                out.push(AppendOutcome::Duplicate);
                continue;
            }
            // A no-match find is its ACK's audit record alone (schema V21): its ID is held
            // here, and read again from the audit trail at start.
            let n = match f.sealed {
                Some(_) => stmt.execute(params![
                    f.request_id,
                    f.received_at,
                    acked_at,
                    FindState::Queued.as_str(),
                    f.sealed,
                ])?,
                None => 1,
            };
            out.push(if n == 1 {
                recent.insert(key, acked_at);
                self.held.push(key);
                AppendOutcome::Created
            } else {
                AppendOutcome::Duplicate
            });
        }
        Ok(out)
    }
}

/// Inserts audit records (inside the caller's transaction).
pub(super) fn insert_audits(conn: &Connection, audit: &[AuditRecord]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit_log (transaction_id, request_id, direction, party, endpoint,
             received_at, responded_at, status, latency_us, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for a in audit {
        stmt.execute(params![
            a.transaction_id,
            a.request_id,
            a.direction.as_str(),
            a.party,
            a.endpoint,
            a.received_at,
            a.responded_at,
            a.status,
            a.latency_micros(),
            a.outcome,
        ])?;
    }
    Ok(())
}
