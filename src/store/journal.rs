//! Group commit: many concurrent appends, one transaction, one fsync, many ACKs.
//!
//! # Constraints
//!
//! - A `202` may leave only after its find request is on stable storage (CoCo2.1.1, 2.1.4).
//! - An fsync costs around a millisecond or more; one per request caps the endpoint at a few
//!   hundred ACKs a second. So appends that arrive while a commit is in flight wait for the next
//!   one, and that one carries them all.
//! - Memory is bounded: the channel to the writer holds `journal_channel_capacity` appends, and
//!   the store holds `queue_max_pending` unprocessed finds. Past either, `append` fails at once
//!   with [`JournalError::Overloaded`] (a `503` with `Retry-After`), never an unbounded wait.
//!
//! # How it works
//!
//! One writer thread owns the backend. It blocks for the first message, then drains whatever else
//! is queued (up to `journal_max_batch`), commits the batch in one transaction (SQLite in WAL mode
//! with `synchronous = FULL` syncs the WAL at commit), and only then answers every waiting append.
//! Audit records of other responses ride in the same batches without anyone waiting on them.
//!
//! A dedicated OS thread, not a Tokio task, because SQLite calls block, and a blocking commit on
//! a runtime worker would stall unrelated connections.
//!
//! # What a crash leaves behind
//!
//! - Before commit: the batch is not in the store and no client of it was ACKed. The PFS retries.
//! - After commit, before the replies: the finds are stored, the clients saw a reset; their retry
//!   with the same X-Request-ID gets `202` as a duplicate and nothing is processed twice.
//! - After the replies: stored and ACKed; workers resume them on restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::{AppendOutcome, JournalBackend, NewFind, StoreError};
use crate::audit::AuditRecord;

/// Why an append was not made durable.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The queue of unprocessed finds or the writer's channel is full: shed with `503`.
    #[error("find queue is full")]
    Overloaded,
    /// The journal has been shut down.
    #[error("journal is closed")]
    Closed,
    /// The commit failed; nothing in its batch was ACKed.
    #[error("commit failed: {0}")]
    Commit(String),
}

enum Msg {
    Append {
        find: NewFind,
        audit: AuditRecord,
        reply: oneshot::Sender<Result<AppendOutcome, JournalError>>,
    },
    Audit(AuditRecord),
    Flush(oneshot::Sender<()>),
    Close,
}

/// Handle to the journal writer; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    /// Find requests stored but not at an end. The writer adds, workers subtract.
    pending: Arc<AtomicU64>,
    max_pending: u64,
}

/// Owns the writer thread; [`JournalWriter::close`] flushes and joins it.
pub struct JournalWriter {
    thread: Option<JoinHandle<()>>,
}

/// Tuning for the writer.
#[derive(Debug, Clone, Copy)]
pub struct JournalLimits {
    /// Most messages in one transaction.
    pub max_batch: usize,
    /// Messages waiting for the writer at most.
    pub channel_capacity: usize,
    /// Unprocessed finds at most.
    pub max_pending: u64,
}

// === impl Journal ===

impl Journal {
    /// Starts the writer thread over `backend`.
    pub fn start(
        mut backend: Box<dyn JournalBackend>,
        limits: JournalLimits,
    ) -> Result<(Journal, JournalWriter), StoreError> {
        let pending = Arc::new(AtomicU64::new(backend.pending()?));
        let (tx, rx) = mpsc::channel(limits.channel_capacity);
        let counter = pending.clone();
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(backend, rx, counter, limits.max_batch))
            .map_err(|source| StoreError::Io {
                path: "journal-writer thread".into(),
                source,
            })?;
        crate::metrics::queue_depth(pending.load(Ordering::Relaxed));
        Ok((
            Journal {
                tx,
                pending,
                max_pending: limits.max_pending,
            },
            JournalWriter {
                thread: Some(thread),
            },
        ))
    }

    /// Makes a find request durable; resolves once its transaction is committed and synced.
    pub async fn append(
        &self,
        find: NewFind,
        audit: AuditRecord,
    ) -> Result<AppendOutcome, JournalError> {
        if self.pending.load(Ordering::Relaxed) >= self.max_pending {
            return Err(JournalError::Overloaded);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Msg::Append { find, audit, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => JournalError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => JournalError::Closed,
            })?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Queues an audit record for the next commit without waiting for it. If the writer is
    /// saturated (the channel's last quarter is kept for find appends) the record is dropped and
    /// counted (`pdp_audit_dropped_total`) rather than holding a response.
    pub fn audit(&self, record: AuditRecord) {
        // A quarter of the channel stays free for find appends: audit traffic from views and
        // CAS calls must not turn finds away.
        let reserve = self.tx.max_capacity() / 4;
        if self.tx.capacity() <= reserve || self.tx.try_send(Msg::Audit(record)).is_err() {
            crate::metrics::audit_dropped();
        }
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Commits everything queued before this call, then stops the writer: later appends fail
    /// with [`JournalError::Closed`]. Follow with [`JournalWriter::close`] to join the thread.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
    }

    /// Find requests stored and not at an end.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Called by the queue when a find request reaches its end.
    pub fn finished(&self, n: u64) {
        let before = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(n))
            })
            .unwrap_or_else(|p| p);
        crate::metrics::queue_depth(before.saturating_sub(n));
    }
}

// === impl JournalWriter ===

impl JournalWriter {
    /// Waits for the writer thread to stop: after [`Journal::close`], or once every handle is
    /// dropped.
    pub fn close(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer_loop(
    mut backend: Box<dyn JournalBackend>,
    mut rx: mpsc::Receiver<Msg>,
    pending: Arc<AtomicU64>,
    max_batch: usize,
) {
    let mut finds = Vec::with_capacity(max_batch);
    let mut audits = Vec::with_capacity(max_batch * 2);
    let mut other_audits = Vec::new();
    let mut replies = Vec::with_capacity(max_batch);
    let mut flushes = Vec::new();
    let mut closing = false;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            taken += 1;
            match msg {
                Msg::Append { find, audit, reply } => {
                    finds.push(find);
                    audits.push(audit);
                    replies.push(reply);
                }
                Msg::Audit(a) => other_audits.push(a),
                Msg::Flush(done) => flushes.push(done),
                Msg::Close => closing = true,
            }
            if taken < max_batch && !closing {
                next = rx.try_recv().ok();
            }
        }
        // The ACK leaves right after this commit: stamp the find audits' response time now.
        let committed_at = crate::now_micros();
        for a in audits.iter_mut() {
            a.responded_at = committed_at;
        }
        audits.append(&mut other_audits);
        let started = std::time::Instant::now();
        let result = backend.commit(&finds, &mut audits);
        crate::metrics::journal_commit(started.elapsed(), finds.len() + audits.len());
        match result {
            Ok(outcomes) => {
                let created = outcomes
                    .iter()
                    .filter(|o| **o == AppendOutcome::Created)
                    .count() as u64;
                let now = pending.fetch_add(created, Ordering::Relaxed) + created;
                crate::metrics::queue_depth(now);
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = finds.len(), "journal commit failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(JournalError::Commit(e.to_string())));
                }
            }
        }
        finds.clear();
        audits.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if closing {
            rx.close();
            closing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn the_pending_count_never_wraps_below_zero() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("j.sqlite")).unwrap();
        let (journal, writer) = Journal::start(
            Box::new(store),
            JournalLimits {
                max_batch: 8,
                channel_capacity: 8,
                max_pending: 10,
            },
        )
        .unwrap();
        journal.finished(1);
        assert_eq!(journal.pending(), 0);
        journal.close().await;
        drop(journal);
        tokio::task::spawn_blocking(move || writer.close())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn audit_records_leave_room_for_find_appends() {
        // No writer running: the channel fills and stays full.
        let (tx, _rx) = mpsc::channel(8);
        let journal = Journal {
            tx,
            pending: Arc::new(AtomicU64::new(0)),
            max_pending: 10,
        };
        let record = AuditRecord {
            transaction_id: "t".into(),
            request_id: None,
            direction: crate::audit::Direction::Inbound,
            party: "p".into(),
            endpoint: "e".into(),
            received_at: 0,
            responded_at: 0,
            status: 200,
            outcome: "ok".into(),
        };
        for _ in 0..20 {
            journal.audit(record.clone());
        }
        // Three quarters taken by audit records; the last quarter is still free for finds.
        assert_eq!(journal.tx.capacity(), 2);
    }
}
