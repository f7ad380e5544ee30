//! Background services of a running endpoint: the availability heartbeat, certificate expiry,
//! the audit retention purge. Each takes the shutdown signal and stops with it.
//!
//! - Every second: a passive WAL checkpoint (the journal writer does none itself).
//! - Every five seconds: the age of the oldest open find (`pdp_find_oldest_open_seconds`) and
//!   the view signing key's time to its replacement (`pdp_signing_key_expiry_seconds`, a
//!   `stat` of its file: a rotation shows within seconds).
//! - Every minute while ready: a heartbeat row (monthly availability, CoCo2.1.5), the
//!   availability (since go-live: `sla.go_live`, or else the first heartbeat) and uptime gauges.
//! - Every minute: ended finds a day old move from the hot table to the history, the hours
//!   closed since the last are tallied for the service-level report (`crate::sla`), and their
//!   audit records' IDs written for look-ups by ID.
//! - Every two seconds: the IDs of the audit records written since those written by hour, by
//!   row, for look-ups by ID, slices of [`crate::store::SLICE_ROWS`] records (a shorter one once
//!   the last is [`crate::store::SLICE_WAIT`] old).
//! - At start and daily: seconds to expiry of every configured certificate.
//! - Once a day across every instance sharing the store (checked every ten minutes; a day's run
//!   is taken in the store, see [`Store::begin_daily`]): the purge of audit records past
//!   `audit.retention_days` (CoCo2.1.6), old member data changes, and `match-timeout` for
//!   possible matches unreviewed for `matching.possible_review_days`. A run that fails is not
//!   finished, and is taken again once its lease (an hour) has run out.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often the daily jobs look for today's run.
const DAILY_CHECK: Duration = Duration::from_secs(600);

/// How long a daily run is held before another instance may take it over.
const DAILY_LEASE: Duration = Duration::from_secs(3_600);

/// How often the gauges read from the store and the key file are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

/// How often ended finds move to the history and closed hours are tallied.
const HISTORY_EVERY: Duration = Duration::from_secs(60);

/// Ended finds one transaction moves to the history.
const SETTLE_BATCH: u32 = 1_000;

/// Transactions of [`SETTLE_BATCH`] a minute at most (300,000 finds a minute).
const SETTLE_BATCHES: u32 = 300;

/// The pause between them, for the ACKs' group commits.
const SETTLE_PAUSE: Duration = Duration::from_millis(20);

/// How long after an hour ends its audit records' IDs are written for look-ups: by then every
/// record received in it is written (a call's record is written when the call ends, and a CAS
/// call's time-outs add up to a minute at most). An hour's IDs at once, sorted, share the
/// pages of the look-up table they go to; a few minutes' at a time would cost a page each.
pub const IDS_AFTER: i64 = 10 * 60 * 1_000_000;

/// How often the last records' IDs are written (whole slices; a shorter one every
/// [`crate::store::SLICE_WAIT`]).
const RECENT_IDS_EVERY: Duration = Duration::from_secs(2);

/// The instant before which audit records' IDs are written at `now` (µs): the end of the last
/// hour that ended [`IDS_AFTER`] ago.
pub fn ids_through(now: i64) -> i64 {
    (now - IDS_AFTER).div_euclid(crate::store::HOUR) * crate::store::HOUR
}

/// What the upkeep tasks need.
pub struct Upkeep {
    /// The store.
    pub store: Store,
    /// Certificates to watch, by name.
    pub certificates: Vec<(&'static str, PathBuf)>,
    /// The active view signing key's file (`view.signing_key`), whose replacement is watched.
    pub signing_key: Option<PathBuf>,
    /// Audit retention.
    pub retention_days: u32,
    /// How often the heartbeat runs.
    pub heartbeat_every: Duration,
    /// `sla.go_live`: availability counts from it, or else from the first heartbeat.
    pub go_live: Option<crate::config::GoLive>,
    /// For the daily `match-timeout` of unreviewed possible matches: the CAS and
    /// `matching.possible_review_days`.
    pub possible_review: Option<(crate::cas::client::CasClient, u32)>,
}

// === impl Upkeep ===

impl Upkeep {
    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = std::sync::Arc::new(self);
        // The CAS work (match-timeout, de-registrations) runs beside the rest: a CAS that is
        // down must not hold up checkpoints or the availability heartbeat.
        tokio::spawn(this.clone().cas_work(shutdown.clone()));
        tokio::spawn(this.clone().history_work(shutdown.clone()));
        tokio::spawn(this.clone().recent_ids_work(shutdown.clone()));
        let started = Instant::now();
        let mut minute = tokio::time::interval(this.heartbeat_every);
        let mut daily = tokio::time::interval(Duration::from_secs(86_400));
        let mut once_a_day = tokio::time::interval(DAILY_CHECK);
        let mut checkpoint = tokio::time::interval(Duration::from_secs(1));
        let mut gauges = tokio::time::interval(GAUGES_EVERY);
        loop {
            tokio::select! {
                _ = checkpoint.tick() => this.checkpoint().await,
                _ = gauges.tick() => this.gauges().await,
                _ = minute.tick() => this.heartbeat(started).await,
                _ = daily.tick() => this.certificates(),
                // Beside the loop: a purge of a year's rows must not hold up checkpoints. A run
                // still going when the next check comes is held in the store: not run twice.
                _ = once_a_day.tick() => {
                    let this = this.clone();
                    tokio::spawn(async move {
                        this.once_today("audit-purge", this.purge()).await;
                        this.once_today("data-changes-purge", this.purge_data_changes()).await;
                    });
                }
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// Runs `job` unless today's run of it is finished or held (by this instance or another
    /// sharing the store); finishes the run when `job` succeeds.
    async fn once_today(&self, name: &str, job: impl std::future::Future<Output = bool>) {
        let today = chrono::Utc::now().date_naive();
        match self.store.begin_daily(name, today, DAILY_LEASE).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(job = name, error = %e, "daily job not started");
                return;
            }
        }
        if job.await {
            if let Err(e) = self.store.finish_daily(name, today).await {
                tracing::warn!(job = name, error = %e, "daily job not recorded as finished");
            }
        }
    }

    /// Every minute, de-registrations still to be sent; daily, `match-timeout`.
    async fn cas_work(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        let mut minute = tokio::time::interval(Duration::from_secs(60));
        let mut once_a_day = tokio::time::interval(DAILY_CHECK);
        loop {
            tokio::select! {
                _ = minute.tick() => self.sweep().await,
                _ = once_a_day.tick() => {
                    self.once_today("match-timeout", self.expire_possible()).await;
                }
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// Data changes older than a week are forgotten: the table would otherwise grow by every
    /// imported member, every day.
    async fn purge_data_changes(&self) -> bool {
        let before = crate::now_micros() - 7 * 86_400 * 1_000_000;
        match self.store.purge_data_changes(before).await {
            Ok(0) => true,
            Ok(n) => {
                tracing::info!(purged = n, "old member data changes forgotten");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "forgetting old member data changes failed");
                false
            }
        }
    }

    /// Every minute, beside the rest (a backlog must not hold up checkpoints): ended finds past
    /// the hot table's day move to the history, a batch at a time, and closed hours are
    /// tallied for the service-level report.
    async fn history_work(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        let mut minute = tokio::time::interval(HISTORY_EVERY);
        loop {
            tokio::select! {
                _ = minute.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            let now = crate::now_micros();
            let hot_for = i64::try_from(crate::store::HOT_FOR.as_micros()).unwrap_or(i64::MAX);
            for _ in 0..SETTLE_BATCHES {
                match self.store.settle_finds(now - hot_for, SETTLE_BATCH).await {
                    Ok(n) if n >= u64::from(SETTLE_BATCH) => {
                        tokio::time::sleep(SETTLE_PAUSE).await;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "moving ended finds to the history failed");
                        break;
                    }
                }
            }
            match crate::sla::tally_closed_hours(&self.store, now).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(hours = n, "service levels tallied"),
                Err(e) => tracing::warn!(error = %e, "tallying the service levels failed"),
            }
            match self.store.write_audit_ids(ids_through(now), 5).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(spans = n, "audit IDs written for look-ups"),
                Err(e) => tracing::warn!(error = %e, "writing audit IDs for look-ups failed"),
            }
        }
    }

    /// Every [`RECENT_IDS_EVERY`], beside the rest: the last records' IDs.
    async fn recent_ids_work(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(RECENT_IDS_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            if let Err(e) = self.store.write_recent_audit_ids(crate::now_micros()).await {
                tracing::warn!(error = %e, "writing the last audit IDs for look-ups failed");
            }
        }
    }

    async fn sweep(&self) {
        let Some((cas, _)) = &self.possible_review else {
            return;
        };
        match crate::peis::sweep(&self.store, cas).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deregistered = n, "pending de-registrations sent"),
            Err(e) => tracing::warn!(error = %e, "sending pending de-registrations failed"),
        }
    }

    /// Copies committed WAL frames into the database file, beside the writer.
    async fn checkpoint(&self) {
        if let Err(e) = self.store.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }

    /// The oldest open find's age, and the signing key's time to its replacement.
    async fn gauges(&self) {
        match self.store.oldest_open_find().await {
            Ok(acked) => crate::metrics::find_oldest_open(open_age(acked, crate::now_micros())),
            Err(e) => tracing::debug!(error = %e, "oldest open find not read"),
        }
        if let Some(path) = &self.signing_key {
            match crate::view_data::token::key_expiry(path, std::time::SystemTime::now()) {
                Ok(seconds) => crate::metrics::signing_key_expiry(seconds as f64),
                Err(e) => tracing::debug!(error = %e, "view signing key's file not read"),
            }
        }
    }

    async fn heartbeat(&self, started: Instant) {
        let now = crate::now_micros();
        if let Err(e) = self.store.heartbeat(now).await {
            tracing::error!(error = %e, "heartbeat not recorded");
            return;
        }
        match crate::sla::availability_this_month(&self.store, now, self.go_live).await {
            Ok(a) => crate::metrics::availability(a.ratio, started.elapsed()),
            Err(e) => tracing::error!(error = %e, "availability not read"),
        }
    }

    fn certificates(&self) {
        certificate_expiry(&self.certificates);
    }

    async fn expire_possible(&self) -> bool {
        let Some((cas, days)) = &self.possible_review else {
            return true;
        };
        match crate::peis::expire_possible(&self.store, cas, *days).await {
            Ok(0) => true,
            Ok(n) => {
                tracing::info!(
                    expired = n,
                    "unreviewed possible matches de-registered (match-timeout)"
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "expiring possible matches failed");
                false
            }
        }
    }

    async fn purge(&self) -> bool {
        match crate::audit::export::purge(&self.store, self.retention_days, crate::now_micros())
            .await
        {
            Ok(n) => {
                crate::metrics::audit_purged(n);
                if n > 0 {
                    tracing::info!(purged = n, "audit records past retention purged");
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "audit purge failed");
                false
            }
        }
    }
}

/// The age at `now` (µs) of a find ACKed at `acked` (µs); zero when no find is open (or the
/// clocks of instances sharing the store disagree).
fn open_age(acked: Option<i64>, now: i64) -> Duration {
    let micros = acked.map_or(0, |a| now.saturating_sub(a)).max(0);
    Duration::from_micros(micros.unsigned_abs())
}

/// Exports the time to expiry of every certificate file, and warns of any within 30 days (at
/// start, daily, and after each reload of keys and certificates).
pub fn certificate_expiry(certificates: &[(&'static str, PathBuf)]) {
    for (name, path) in certificates {
        match chain_expiry(path) {
            Ok(expiry) => {
                let Some(seconds) = expiry else {
                    continue;
                };
                crate::metrics::certificate_expiry(name, seconds as f64);
                if seconds < 30 * 86_400 {
                    tracing::warn!(
                        certificate = name,
                        days = seconds / 86_400,
                        "certificate expires within 30 days"
                    );
                }
            }
            Err(e) => tracing::warn!(certificate = name, error = %e, "certificate unreadable"),
        }
    }
}

/// Seconds until the first certificate of the chain in `path` expires (`None`: no readable
/// expiry).
pub fn chain_expiry(path: &std::path::Path) -> Result<Option<i64>, crate::tls::TlsError> {
    Ok(crate::tls::load_certs(path)?
        .iter()
        .filter_map(crate::tls::seconds_to_expiry)
        .min())
}

/// The certificate files an endpoint uses, by name.
pub fn certificate_files(config: &crate::config::Config) -> Vec<(&'static str, PathBuf)> {
    let mut files = vec![
        ("server", config.tls.cert.clone()),
        ("client_ca", config.tls.client_ca.clone()),
        ("cas_client", config.cas.client_cert.clone()),
        ("cas_ca", config.cas.ca.clone()),
    ];
    if let (true, Some(own)) = (config.console.enabled, &config.console.cert) {
        files.push(("console", own.clone()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_find_ages_from_its_ack_and_none_open_is_zero() {
        assert_eq!(open_age(None, 10_000_000), Duration::ZERO);
        assert_eq!(
            open_age(Some(4_000_000), 50_500_000),
            Duration::from_millis(46_500)
        );
        // Another instance's clock ahead of this one's: not a negative age.
        assert_eq!(open_age(Some(60_000_000), 50_000_000), Duration::ZERO);
    }
}
