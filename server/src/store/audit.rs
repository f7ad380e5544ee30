//! The audit trail, heartbeats, the service levels' samples, and the daily jobs' runs.
use std::time::Duration;

use strum::VariantArray;
use uuid::Uuid;

use super::backend::{AuditQuery, DailyRun};
use super::model::*;
use super::sql::Tx;
use super::{Result, Store, StoreError};
use crate::audit::AuditRecord;

// === impl Store ===

impl Store {
    // --- audit, availability, service levels, daily jobs ---

    /// Audit records received in `[from, to)` (µs), for one transaction or find request ID when
    /// given, oldest first.
    pub async fn audit_records(
        &self,
        from: i64,
        to: i64,
        id: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.db().audit_records(AuditQuery { from, to, id }).await
    }

    /// Deletes audit records received before `cutoff` (µs); returns how many. The only way rows
    /// leave the trail.
    pub async fn purge_audit(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.db().purge_audit(cutoff).await
    }

    /// Records that the endpoint is up in the minute of `now` (µs).
    pub async fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        self.db().heartbeat(now / 60_000_000).await
    }

    /// Minutes up in `[from, to)` (µs).
    pub async fn minutes_up(&self, from: i64, to: i64) -> Result<u64, StoreError> {
        self.db()
            .minutes_up(from / 60_000_000, to / 60_000_000)
            .await
    }

    /// The start of the first minute the endpoint was up (µs), if it ever was.
    pub async fn first_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.db().first_heartbeat().await?.map(|m| m * 60_000_000))
    }

    /// The service levels' samples for `[from, to)` (µs).
    pub async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples, StoreError> {
        let mut samples = self.db().sla_samples(from, to).await?;
        samples.minutes_up = self.minutes_up(from, to).await?;
        Ok(samples)
    }

    /// Matching finds ACKed in `[from, to)` (µs) and completed, by holdername: the ACK to
    /// completion times (µs) of the finds that registered PeIs in each (CoCo2.1.2 per scheme).
    pub async fn completions_by_holdername(
        &self,
        from: i64,
        to: i64,
    ) -> Result<std::collections::BTreeMap<Uuid, Vec<i64>>, StoreError> {
        let mut out = std::collections::BTreeMap::<Uuid, Vec<i64>>::new();
        for (h, us) in self.db().completions_by_holdername(from, to).await? {
            let h = Uuid::try_parse(&h).map_err(|_| StoreError::Corrupt("holdername"))?;
            out.entry(h).or_default().push(us);
        }
        Ok(out)
    }

    /// Runs a daily job's run for `day` once across every instance sharing the store: true when
    /// this caller takes it, after which it must call [`Store::finish_daily`]. A run whose holder
    /// stopped without finishing is taken over once `lease` has passed (the jobs are
    /// idempotent); a finished one is never taken again.
    pub async fn begin_daily(
        &self,
        job: &str,
        day: chrono::NaiveDate,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let run = DailyRun::new(job, day);
        let lease_until = run.now + lease.as_micros() as i64;
        self.db().begin_daily(run, lease_until).await
    }

    /// Marks a daily job's run for `day` finished.
    pub async fn finish_daily(&self, job: &str, day: chrono::NaiveDate) -> Result<(), StoreError> {
        self.db().finish_daily(DailyRun::new(job, day)).await
    }

    /// Backend upkeep, beside the writer: on SQLite, a passive WAL checkpoint (copies committed
    /// frames into the database file; it never blocks a writer).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.db().checkpoint().await
    }
}
