//! The find pipeline: the CAS work of finds that matched.
//!
//! Matching happens at the ACK ([`crate::http::find`]): a no-match find is stored already at its
//! end, without its find data, and never reaches this module. A find with matches or possible
//! matches is stored sealed and queued; here it is claimed (with a lease), its UAT swapped for a
//! PAT and each PeI registered, all inside the completion budget measured from the ACK (CoCo2.1.2:
//! 60 s).
//!
//! The work is I/O, so each claimed find is its own task, and `workers.max_in_flight` of them
//! run at once: their CAS round trips overlap, and their store writes ride the same group
//! commits as the ACKs. One dispatcher claims finds in batches as tasks finish, woken by each
//! new queued find and polling for finds left by a crash. A task that fails or panics takes
//! only its own find down: the find stays claimed until its lease runs out and is then worked
//! again. Every step is idempotent (a stored PAT is reused, a PeI is keyed by its URN, a
//! registered PeI is not registered again), so a crash anywhere is repaired by running the find
//! again. A find that cannot finish is marked failed with its reason, counted and logged by ID
//! (CoCo2.2.6). On shutdown the dispatcher stops claiming and the tasks finish their finds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cas::client::CasClient;
use crate::cas::retry::{with_retries, Backoff};
use crate::cas::{CasError, Pat};
use crate::config::WorkersConfig;
use crate::matching::index::Matcher;
use crate::matching::{pei, pei_asset_guid};
use crate::store::{Claimed, FindOutcome, MatchStatus, NewPei, PeiState, Store, StoreError};

/// Why a find request could not be processed.
#[derive(Debug, thiserror::Error)]
enum WorkError {
    /// The store failed; the find stays claimed and is worked again when its lease runs out.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The find cannot finish; it is marked failed with this reason.
    #[error("failed: {0}")]
    Failed(String),
}

/// What every find task shares.
pub struct Pipeline {
    /// The durable store.
    pub store: Store,
    /// Member indexes and rules.
    pub matcher: Arc<Matcher>,
    /// The CAS.
    pub cas: CasClient,
    /// Bounds and budgets.
    pub config: WorkersConfig,
    /// Woken on each new queued find.
    pub wake: Arc<Notify>,
}

// === impl Pipeline ===

impl Pipeline {
    /// Starts the dispatcher on `tracker`; it and its tasks stop when `shutdown` fires, each task
    /// after its current find.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken, tracker: &TaskTracker) {
        crate::metrics::workers(self.config.max_in_flight, 0.0);
        if self.config.max_in_flight == 0 {
            return;
        }
        let tasks = tracker.clone();
        tracker.spawn(async move { self.dispatch(shutdown, tasks).await });
    }

    async fn dispatch(self: Arc<Self>, shutdown: CancellationToken, tasks: TaskTracker) {
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        let lease = Duration::from_millis(self.config.lease_ms);
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight));
        while !shutdown.is_cancelled() {
            // Wait for a free slot, then take as many more as are free, up to a claim batch.
            let mut permits = tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = shutdown.cancelled() => break,
            };
            let more =
                (self.config.claim_batch.saturating_sub(1)).min(slots.available_permits()) as u32;
            if more > 0 {
                if let Ok(p) = slots.clone().try_acquire_many_owned(more) {
                    permits.merge(p);
                }
            }
            let wanted = permits.num_permits();
            let claimed = match self.store.claim(lease, wanted).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming find requests failed");
                    drop(permits);
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            let got = claimed.len();
            for c in claimed {
                let Some(permit) = permits.split(1) else {
                    break;
                };
                let pipeline = self.clone();
                tasks.spawn(async move {
                    crate::metrics::workers(pipeline.config.max_in_flight, 1.0);
                    pipeline.process(c).await;
                    crate::metrics::workers(pipeline.config.max_in_flight, -1.0);
                    drop(permit);
                });
            }
            drop(permits);
            if got < wanted {
                // Nothing more queued: wait for a new find, or poll for expired leases.
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }

    /// Takes one claimed find to its end (or leaves it claimed on a store error).
    async fn process(&self, c: Claimed) {
        let request_id = c.request_id.clone();
        match self.work(&c).await {
            Ok(None) => {
                tracing::warn!(request_id = %request_id, "find request ended by another claim");
            }
            Ok(Some(outcome)) => {
                let completion = (outcome != FindOutcome::NoMatch).then(|| {
                    Duration::from_micros((crate::now_micros() - c.acked_at).max(0) as u64)
                });
                crate::metrics::find_completed(outcome.as_str(), completion);
                tracing::info!(request_id = %request_id, outcome = outcome.as_str(), "find request completed");
            }
            Err(WorkError::Failed(reason)) => match self.store.fail(&request_id, &reason).await {
                Ok(true) => {
                    crate::metrics::find_failed(&reason);
                    tracing::warn!(request_id = %request_id, %reason, "find request failed");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(request_id = %request_id, error = %e, "recording a failure failed")
                }
            },
            Err(WorkError::Store(e)) => {
                tracing::error!(request_id = %request_id, error = %e, "store error; will retry after the lease");
            }
        }
    }

    /// Takes a claimed find to its end; `None` when another claim ended it first.
    async fn work(&self, c: &Claimed) -> Result<Option<FindOutcome>, WorkError> {
        let id = c.request_id.as_str();
        let budget_left =
            c.acked_at + (self.config.completion_budget_ms * 1000) as i64 - crate::now_micros();
        let deadline = Instant::now() + Duration::from_micros(budget_left.max(0) as u64);
        let body = c
            .find_data
            .as_deref()
            .ok_or_else(|| WorkError::Failed("find_data_unreadable".into()))?;
        let find = crate::wire::find::parse(body)
            .map_err(|_| WorkError::Failed("find_data_invalid".into()))?;

        // Matched at the ACK; matched again here (deterministic, microseconds) rather than
        // stored, so a find resumed after a crash or member changes decides the same way.
        let matches = self.matcher.find_matches(&find.find_data);
        if matches.is_empty() {
            let ended = self.store.complete(id, FindOutcome::NoMatch).await?;
            return Ok(ended.then_some(FindOutcome::NoMatch));
        }
        // Possible-match PeIs derive from the user's `sub`; without it a repeat find could not
        // give the same PeI (SPEC §2), so the find cannot be registered correctly.
        let sub = find
            .uat
            .subject()
            .ok_or_else(|| WorkError::Failed("uat_no_sub".into()))?;
        let mut peis: Vec<NewPei> = matches
            .into_iter()
            .map(|m| {
                let asset = pei_asset_guid(m.status, m.pension_asset_guid, &sub);
                NewPei {
                    pei: pei(m.holdername, asset),
                    asset_guid: asset,
                    holdername: m.holdername,
                    pension_asset_guid: m.pension_asset_guid,
                    member_id: m.member_id,
                    scheme_name: m.scheme_name,
                    match_status: m.status,
                    reason: m.reason,
                    rules_version: m.rules_version,
                }
            })
            .collect();
        peis.sort_by(|a, b| a.pei.cmp(&b.pei));
        peis.dedup_by(|a, b| a.pei == b.pei);
        let outcome = if peis.iter().any(|p| p.match_status == MatchStatus::Yes) {
            FindOutcome::MatchYes
        } else {
            FindOutcome::MatchPossible
        };
        self.store.record_matches(id, peis).await?;

        let backoff = Backoff {
            base: Duration::from_millis(self.config.backoff_base_ms),
            cap: Duration::from_millis(self.config.backoff_cap_ms),
        };
        let fail = |what: &str, e: CasError| WorkError::Failed(format!("{what}: {}", e.reason()));

        // The PAT: reuse one stored by an earlier attempt, or swap the UAT now.
        let (pat, pat_id) = match &c.pat_id {
            Some(pat_id) => (Pat::new(self.store.pat(pat_id).await?), pat_id.clone()),
            None => {
                let pat = with_retries(
                    deadline,
                    backoff,
                    |_| crate::metrics::cas_retry("POST /token"),
                    || self.cas.token(&find.uat, id),
                )
                .await
                .map_err(|e| fail("token", e))?;
                let pat_id = self
                    .store
                    .save_pat(id, pat.expose(), pat.expires_at())
                    .await?;
                (pat, pat_id)
            }
        };

        // Each pending PeI is registered as its own call, all at once: a member with several
        // pensions costs one CAS round trip, not one per pension.
        let pending = self.store.peis_for_request(id).await?;
        let registrations = pending
            .into_iter()
            .filter(|p| p.state == PeiState::Pending)
            .map(|p| {
                let (pat, pat_id) = (&pat, &pat_id);
                async move {
                    let resource_id = with_retries(
                        deadline,
                        backoff,
                        |_| crate::metrics::cas_retry("POST /rreguri"),
                        || {
                            self.cas
                                .register(pat, &p.pei, &p.scheme_name, p.match_status, id)
                        },
                    )
                    .await
                    .map_err(|e| fail("register", e))?;
                    self.store.registered(&p.pei, &resource_id, pat_id).await?;
                    crate::metrics::pei_registered(p.match_status.as_str());
                    Ok::<(), WorkError>(())
                }
            });
        for r in futures_util::future::join_all(registrations).await {
            r?;
        }
        let ended = self.store.complete(id, outcome).await?;
        Ok(ended.then_some(outcome))
    }
}
