//! The worker pool: claim → match → swap UAT for PAT → register PeIs → complete.
//!
//! `workers.concurrency` workers each claim the oldest queued find request from the durable
//! store (with a lease), match it against every hosted holdername, and for a match or possible
//! match swap the UAT for a PAT at the CAS and register each PeI, all inside the completion
//! budget measured from the ACK (CoCo2.1.2: 60 s). No match: the find data is deleted at once
//! and nothing is sent. A request that cannot finish is marked failed with its reason, counted
//! and logged by ID (CoCo2.2.6). Workers are woken by each new ACK and also poll, so finds left
//! by a previous process are resumed. On shutdown each worker finishes its current item.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cas::client::CasClient;
use crate::cas::retry::{with_retries, Backoff};
use crate::cas::{CasError, Pat};
use crate::config::WorkersConfig;
use crate::matching::index::Matcher;
use crate::matching::{pei, pei_asset_guid, MatchStatus};
use crate::store::journal::Journal;
use crate::store::queue::{Claimed, Queue};
use crate::store::sealed::DataKey;
use crate::store::StoreError;

/// Why a find request could not be processed.
#[derive(Debug, thiserror::Error)]
enum WorkError {
    /// The store failed; the request stays claimed and is retried when its lease runs out.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The request cannot finish; it is marked failed with this reason.
    #[error("failed: {0}")]
    Failed(String),
}

/// What every worker shares.
pub struct Pool {
    /// The durable queue.
    pub queue: Arc<Queue>,
    /// Member indexes and rules.
    pub matcher: Arc<Matcher>,
    /// The CAS.
    pub cas: CasClient,
    /// Opens find data and seals PATs.
    pub key: DataKey,
    /// For the queue-depth count.
    pub journal: Journal,
    /// Bounds and budgets.
    pub config: WorkersConfig,
    /// Woken on each new find.
    pub wake: Arc<Notify>,
}

async fn blocking<T: Send + 'static>(
    queue: &Arc<Queue>,
    f: impl FnOnce(&Queue) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let q = queue.clone();
    tokio::task::spawn_blocking(move || f(&q))
        .await
        .expect("queue task does not panic")
}

// === impl Pool ===

impl Pool {
    /// Starts the workers on `tracker`; they stop when `shutdown` fires, after their current item.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken, tracker: &TaskTracker) {
        crate::metrics::workers(self.config.concurrency, 0.0);
        for _ in 0..self.config.concurrency {
            let (pool, shutdown) = (self.clone(), shutdown.clone());
            tracker.spawn(async move { pool.run(shutdown).await });
        }
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        let lease = (self.config.lease_ms * 1000) as i64;
        while !shutdown.is_cancelled() {
            let claimed = blocking(&self.queue, move |q| q.claim(crate::now_micros(), lease)).await;
            match claimed {
                Ok(Some(c)) => {
                    crate::metrics::workers(self.config.concurrency, 1.0);
                    self.process(c).await;
                    crate::metrics::workers(self.config.concurrency, -1.0);
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming a find request failed");
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
    }

    /// Takes one claimed request to its end (or leaves it claimed on a store error).
    async fn process(&self, c: Claimed) {
        let request_id = c.request_id.clone();
        match self.work(&c).await {
            Ok(None) => {
                tracing::warn!(request_id = %request_id, "find request ended by another worker");
            }
            Ok(Some(outcome)) => {
                let completion = (outcome != "no-match").then(|| {
                    Duration::from_micros((crate::now_micros() - c.acked_at).max(0) as u64)
                });
                crate::metrics::find_completed(outcome, completion);
                self.journal.finished(1);
                tracing::info!(request_id = %request_id, outcome, "find request completed");
            }
            Err(WorkError::Failed(reason)) => {
                let r = reason.clone();
                let id = request_id.clone();
                match blocking(&self.queue, move |q| q.fail(&id, &r)).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::error!(request_id = %request_id, error = %e, "recording a failure failed");
                        return;
                    }
                }
                crate::metrics::find_failed(&reason);
                self.journal.finished(1);
                tracing::warn!(request_id = %request_id, %reason, "find request failed");
            }
            Err(WorkError::Store(e)) => {
                tracing::error!(request_id = %request_id, error = %e, "store error; will retry after the lease");
            }
        }
    }

    /// Takes a claimed request to its end; `None` when another worker ended it first.
    async fn work(&self, c: &Claimed) -> Result<Option<&'static str>, WorkError> {
        let id = c.request_id.clone();
        let budget_left =
            c.acked_at + (self.config.completion_budget_ms * 1000) as i64 - crate::now_micros();
        let deadline = Instant::now() + Duration::from_micros(budget_left.max(0) as u64);
        let sealed = c
            .find_data
            .as_deref()
            .ok_or_else(|| WorkError::Failed("find_data_missing".into()))?;
        let body = self
            .key
            .open(id.as_bytes(), sealed)
            .map_err(|_| WorkError::Failed("find_data_unreadable".into()))?;
        let find = crate::wire::find::parse(&body)
            .map_err(|_| WorkError::Failed("find_data_invalid".into()))?;

        let matches = self.matcher.find_matches(&find.find_data);
        if matches.is_empty() {
            // Nothing is sent anywhere; the find data goes now (CoCo2.2.2).
            let ended = blocking(&self.queue, move |q| q.complete(&id, "no-match")).await?;
            return Ok(ended.then_some("no-match"));
        }
        // Possible-match PeIs derive from the user's `sub`; without it a repeat find could not
        // give the same PeI (SPEC §2), so the find cannot be registered correctly.
        let sub = find
            .uat
            .subject()
            .ok_or_else(|| WorkError::Failed("uat_no_sub".into()))?;
        let mut peis: Vec<(String, uuid::Uuid, crate::matching::PensionMatch)> = matches
            .into_iter()
            .map(|m| {
                let asset = pei_asset_guid(m.status, m.pension_asset_guid, &sub);
                (pei(m.holdername, asset), asset, m)
            })
            .collect();
        peis.sort_by(|a, b| a.0.cmp(&b.0));
        peis.dedup_by(|a, b| a.0 == b.0);
        let outcome = if peis.iter().any(|p| p.2.status == MatchStatus::Yes) {
            "match-yes"
        } else {
            "match-possible"
        };
        {
            let id = id.clone();
            blocking(&self.queue, move |q| {
                let refs: Vec<_> = peis.iter().map(|(p, a, m)| (p.clone(), *a, m)).collect();
                q.record_matches(&id, &refs)
            })
            .await?;
        }

        let backoff = Backoff {
            base: Duration::from_millis(self.config.backoff_base_ms),
            cap: Duration::from_millis(self.config.backoff_cap_ms),
        };
        let fail = |what: &str, e: CasError| WorkError::Failed(format!("{what}: {}", e.reason()));

        // The PAT: reuse one stored by an earlier attempt, or swap the UAT now.
        let (pat, pat_id) = match &c.pat_id {
            Some(pat_id) => {
                let pid = pat_id.clone();
                let key = self.key.clone();
                let pat = blocking(&self.queue, move |q| q.pat(&key, &pid)).await?;
                (Pat::new(pat), pat_id.clone())
            }
            None => {
                let pat = with_retries(
                    deadline,
                    backoff,
                    |_| crate::metrics::cas_retry("POST /token"),
                    || self.cas.token(&find.uat, &id),
                )
                .await
                .map_err(|e| fail("token", e))?;
                let (key, id2, p) = (self.key.clone(), id.clone(), pat.clone());
                let pat_id = blocking(&self.queue, move |q| {
                    q.save_pat(&key, &id2, p.expose(), p.expires_at())
                })
                .await?;
                (pat, pat_id)
            }
        };

        let pending = {
            let id = id.clone();
            blocking(&self.queue, move |q| q.peis_for_request(&id)).await?
        };
        for p in pending.into_iter().filter(|p| p.state == "pending") {
            let status = MatchStatus::parse(&p.match_status).unwrap_or(MatchStatus::Possible);
            let resource_id = with_retries(
                deadline,
                backoff,
                |_| crate::metrics::cas_retry("POST /rreguri"),
                || self.cas.register(&pat, &p.pei, &p.scheme_name, status, &id),
            )
            .await
            .map_err(|e| fail("register", e))?;
            let (pid, pei_urn) = (pat_id.clone(), p.pei.clone());
            blocking(&self.queue, move |q| {
                q.registered(&pei_urn, &resource_id, &pid)
            })
            .await?;
            crate::metrics::pei_registered(status.as_str());
        }
        let ended = blocking(&self.queue, move |q| q.complete(&id, outcome)).await?;
        Ok(ended.then_some(outcome))
    }
}
