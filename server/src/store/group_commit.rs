//! What both backends' writers share: the channel to the writer ([`Front`]), its messages
//! ([`Msg`]) and one batch drained from it ([`Batch`]). Each backend's `writer.rs` commits a
//! batch its own way; the answering rules are here, once:
//!
//! - Find appends never wait for room: past the channel's capacity they fail at once
//!   ([`AppendError::Overloaded`], a `503` with `Retry-After`), and audit records leave the
//!   channel's last quarter to them.
//! - No waiter is answered before the commit that holds its write has returned; if it fails,
//!   every waiter in the batch gets the error: [`AppendError::Unavailable`] when the database
//!   cannot be had now (an outage, a lock held past its time-out), [`AppendError::Commit`]
//!   otherwise; the ACK path answers both `503` with `Retry-After`, as nothing was stored.
//! - Failed commits are logged at most once a second, with counts ([`FailureLog`]), and once
//!   when commits succeed again: an outage is a few lines, not one per batch.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{AppendError, StoreError};
use crate::model::AppendOutcome;
use crate::model::AuditRecord;

/// A find request as it is appended: find data already sealed, `None` for a no-match.
pub(super) struct FindRow {
    pub request_id: String,
    pub received_at: i64,
    pub sealed: Option<Vec<u8>>,
}

/// A message to a writer; `W` is a backend's other writes (SQLite's jobs; none on PostgreSQL).
pub(super) enum Msg<W> {
    /// A find request at its ACK, with its audit record.
    Append {
        find: FindRow,
        audit: AuditRecord,
        reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
    },
    /// An audit record no one waits for.
    Audit(AuditRecord),
    /// Any other write.
    Write(W),
    /// Answered once everything before it is committed.
    Flush(oneshot::Sender<()>),
    /// Answered as a flush, once the writer has read what it needs to take find appends (the
    /// SQLite writer: the last day's IDs, otherwise read at the first append).
    Prepare(oneshot::Sender<()>),
    /// Commit what is queued, then stop taking messages.
    Close,
}

/// The sending side of a writer's channel.
pub(super) struct Front<W> {
    tx: mpsc::Sender<Msg<W>>,
    /// Answered (by being dropped) when the writer has stopped.
    stopped: Mutex<Option<oneshot::Receiver<()>>>,
}

/// Held by a writer while it runs; dropping it (when the writer returns, or unwinds) tells
/// [`GroupCommit::close`] that everything the writer took is committed.
pub(super) struct Running {
    _signal: oneshot::Sender<()>,
}

impl<W: Send> Front<W> {
    /// A channel of `capacity` messages: its front, the writer's receiving end, and the guard
    /// the writer holds while it runs.
    pub(super) fn new(capacity: usize) -> (Self, mpsc::Receiver<Msg<W>>, Running) {
        let (tx, rx) = mpsc::channel(capacity.max(4));
        let (running, stopped) = oneshot::channel();
        let front = Self {
            tx,
            stopped: Mutex::new(Some(stopped)),
        };
        (front, rx, Running { _signal: running })
    }

    /// Queues another write, waiting for room.
    pub(super) async fn write(&self, w: W) -> Result<(), StoreError> {
        self.tx
            .send(Msg::Write(w))
            .await
            .map_err(|_| StoreError::Closed)
    }
}

/// What the ACK path and the audit trail need of a backend's writer, whatever its other writes.
#[async_trait]
pub(super) trait GroupCommit: Send + Sync {
    /// Queues a find append without waiting for room; answered after its commit.
    async fn append(&self, find: FindRow, audit: AuditRecord)
        -> Result<AppendOutcome, AppendError>;

    /// Queues an audit record unless the channel is in its last quarter (kept for appends).
    fn audit(&self, record: AuditRecord) -> bool;

    /// Waits until everything queued before is committed.
    async fn flush(&self);

    /// Waits until the writer has read what it needs to take find appends, so that the first
    /// ACKs after a start do not wait for it.
    async fn prepare(&self);

    /// Asks the writer to commit what is queued and stop, and waits until it has: later writes
    /// fail with [`StoreError::Closed`].
    async fn close(&self);
}

#[async_trait]
impl<W: Send + 'static> GroupCommit for Front<W> {
    async fn append(
        &self,
        find: FindRow,
        audit: AuditRecord,
    ) -> Result<AppendOutcome, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Msg::Append { find, audit, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AppendError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => AppendError::Closed,
            })?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    fn audit(&self, record: AuditRecord) -> bool {
        let reserve = self.tx.max_capacity() / 4;
        self.tx.capacity() > reserve && self.tx.try_send(Msg::Audit(record)).is_ok()
    }

    async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn prepare(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Prepare(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
        let stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(stopped) = stopped {
            let _ = stopped.await;
        }
    }
}

/// One batch: what a writer drained from its channel for one commit.
pub(super) struct Batch<W> {
    pub(super) finds: Vec<FindRow>,
    /// The appends' audit records, in the appends' order.
    pub(super) own_audits: Vec<AuditRecord>,
    pub(super) audits: Vec<AuditRecord>,
    pub(super) writes: Vec<W>,
    replies: Vec<oneshot::Sender<Result<AppendOutcome, AppendError>>>,
    flushes: Vec<oneshot::Sender<()>>,
    /// A [`Msg::Prepare`] was taken.
    pub(super) preparing: bool,
    closing: bool,
    /// Messages taken.
    pub(super) taken: usize,
    max: usize,
}

impl<W> Batch<W> {
    /// An empty batch of at most `max` messages.
    pub(super) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            finds: Vec::with_capacity(max),
            own_audits: Vec::with_capacity(max),
            audits: Vec::with_capacity(max),
            writes: Vec::new(),
            replies: Vec::with_capacity(max),
            flushes: Vec::new(),
            preparing: false,
            closing: false,
            taken: 0,
            max,
        }
    }

    /// Takes `first` and whatever else is queued, up to the batch's size or a close.
    pub(super) fn fill(&mut self, first: Msg<W>, rx: &mut mpsc::Receiver<Msg<W>>) {
        let mut next = Some(first);
        self.taken = 0;
        while let Some(msg) = next.take() {
            self.taken += 1;
            match msg {
                Msg::Append { find, audit, reply } => {
                    self.finds.push(find);
                    self.own_audits.push(audit);
                    self.replies.push(reply);
                }
                Msg::Audit(a) => self.audits.push(a),
                Msg::Write(w) => self.writes.push(w),
                Msg::Flush(done) => self.flushes.push(done),
                Msg::Prepare(done) => {
                    self.preparing = true;
                    self.flushes.push(done);
                }
                Msg::Close => self.closing = true,
            }
            if self.taken < self.max && !self.closing {
                next = rx.try_recv().ok();
            }
        }
    }

    /// Whether there is nothing to commit.
    pub(super) fn is_empty(&self) -> bool {
        self.finds.is_empty() && self.audits.is_empty() && self.writes.is_empty()
    }

    /// Records in the batch, for the commit metric.
    pub(super) fn records(&self) -> usize {
        self.finds.len() + self.own_audits.len() + self.audits.len() + self.writes.len()
    }

    /// Stamps the appends' audit records with the ACK's time (right after the commit) and
    /// marks repeats as duplicates.
    pub(super) fn stamp_acks(&mut self, acked_at: i64, outcomes: &[AppendOutcome]) {
        for (a, o) in self.own_audits.iter_mut().zip(outcomes) {
            a.responded_at = acked_at;
            if *o == AppendOutcome::Duplicate {
                a.outcome = "duplicate".into();
            }
        }
    }

    /// Answers the appends with the commit's outcome (the writes are the backend's to answer
    /// first), then the flushes; empties the batch, and closes the channel if asked to.
    pub(super) fn finish(
        &mut self,
        committed: Result<Vec<AppendOutcome>, AppendError>,
        rx: &mut mpsc::Receiver<Msg<W>>,
    ) {
        match committed {
            Ok(outcomes) => {
                for (reply, outcome) in self.replies.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                for reply in self.replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        self.finds.clear();
        self.own_audits.clear();
        self.audits.clear();
        self.writes.clear();
        for done in self.flushes.drain(..) {
            let _ = done.send(());
        }
        self.preparing = false;
        if self.closing {
            rx.close();
            self.closing = false;
        }
    }
}

/// How a failed commit answers the appends in its batch.
pub(super) fn append_error(e: &StoreError) -> AppendError {
    match e {
        StoreError::Unavailable(cause) => AppendError::Unavailable(cause.clone()),
        StoreError::Closed => AppendError::Closed,
        e => AppendError::Commit(e.to_string()),
    }
}

/// A writer's failed commits, logged at most once a [`FailureLog::EVERY`] with what failed
/// since the last line, and once when commits succeed again.
#[derive(Default)]
pub(super) struct FailureLog {
    last: Option<Instant>,
    /// Since the last line.
    batches: u64,
    messages: u64,
    /// Since the last successful commit.
    failing: u64,
    first: Option<Instant>,
}

impl FailureLog {
    /// At most one line this often.
    pub(super) const EVERY: Duration = Duration::from_secs(1);

    /// A commit of `messages` failed with `e`.
    pub(super) fn failed(&mut self, e: &StoreError, messages: usize) {
        self.batches += 1;
        self.messages += messages as u64;
        self.failing += 1;
        self.first.get_or_insert_with(Instant::now);
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        let (batches, messages) = (self.batches, self.messages);
        match e {
            StoreError::Unavailable(_) => tracing::error!(
                error = %e, batches, messages,
                "store unavailable: commits failing, nothing in them ACKed (finds answered 503); \
                 logged at most once a second"
            ),
            _ => tracing::error!(
                error = %e, batches, messages,
                "commits failed, nothing in them ACKed (finds answered 503); logged at most once \
                 a second"
            ),
        }
        self.last = Some(Instant::now());
        self.batches = 0;
        self.messages = 0;
    }

    /// A commit succeeded: ends a run of failures with one line.
    pub(super) fn committed(&mut self) {
        if self.failing == 0 {
            return;
        }
        let failed_ms = self.first.map_or(0, |t| t.elapsed().as_millis() as u64);
        tracing::info!(
            failed_batches = self.failing,
            failed_ms,
            "commits succeed again"
        );
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_errors_map_to_retryable_answers() {
        let unavailable = StoreError::Unavailable("postgres: connection closed".into());
        assert!(matches!(
            append_error(&unavailable),
            AppendError::Unavailable(_)
        ));
        assert!(matches!(
            append_error(&StoreError::Closed),
            AppendError::Closed
        ));
        let internal = StoreError::Internal("syntax".into());
        assert!(matches!(append_error(&internal), AppendError::Commit(_)));
    }

    #[test]
    fn failures_are_counted_between_lines() {
        let mut log = FailureLog::default();
        let e = StoreError::Unavailable("down".into());
        log.failed(&e, 3);
        // Logged: the counts start again.
        assert_eq!((log.batches, log.messages, log.failing), (0, 0, 1));
        for _ in 0..100 {
            log.failed(&e, 2);
        }
        // Within the second: counted, not logged.
        assert_eq!((log.batches, log.messages, log.failing), (100, 200, 101));
        log.committed();
        assert_eq!((log.batches, log.failing), (0, 0));
        assert!(log.last.is_none());
    }
}
