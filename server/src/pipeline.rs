//! The find pipeline: the CAS work of finds that matched.
//!
//! Matching happens at the ACK ([`crate::http::find`]): a no-match find is stored already at its
//! end, without its find data, and never reaches this module. A find with matches or possible
//! matches is stored sealed and queued; here it is claimed (with a lease), its UAT swapped for a
//! PAT and each PeI registered, all inside the completion budget measured from the ACK (CoCo2.1.2:
//! 60 s).
//!
//! The work is I/O, so each claimed find is its own task, and `workers.max_in_flight` of them run
//! at once: their CAS round trips overlap, and their store writes ride the same group commits as
//! the ACKs. A matching find writes twice: its matches with the PAT its UAT was swapped for, then
//! its registrations with its end. One dispatcher claims finds in batches as tasks finish, woken by
//! each new queued find and polling for finds left by a crash. A task that fails or panics takes
//! only its own find down: the find stays claimed until its lease runs out and is then worked
//! again. Every step is idempotent (a stored PAT is reused, a PeI is keyed by its URN, a registered
//! PeI is not registered again), so a crash anywhere is repaired by running the find again. A find
//! that cannot finish is marked failed with its reason, counted and logged by ID (CoCo2.2.6). On
//! shutdown the dispatcher stops claiming and the tasks finish their finds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::cas::client::CasClient;
use crate::cas::retry::{with_retries, Backoff};
use crate::cas::{CasError, Pat};
use crate::config::WorkersConfig;
use crate::matching::index::{MatchError, Matcher};
use crate::matching::{pei, pei_asset_guid};
use crate::store::{Claimed, FindOutcome, MatchStatus, NewPei, PeiMatch, Store, StoreError};

/// Why a find request could not be processed.
#[derive(Debug, thiserror::Error)]
enum WorkError {
    /// The store failed; the find stays claimed and is worked again when its lease runs out.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The find could not be matched (the store did not answer, or a candidate's record does
    /// not open); as for the store, it is worked again when its lease runs out.
    #[error("matching: {0}")]
    Match(#[from] MatchError),
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

    /// Takes one claimed find to its end (or leaves it claimed on a store error), holding its
    /// lease while it works. If the lease cannot be held (the store is unreachable past it, or
    /// another claim took the find), the work stops where it is: the find is another claim's.
    async fn process(&self, c: Claimed) {
        let request_id = c.request_id.clone();
        let (result, registered, pat_id) = tokio::select! {
            out = self.work(&c) => out,
            () = self.hold_lease(&c) => {
                crate::metrics::find_lease_lost();
                tracing::warn!(request_id = %request_id, "lease lost; the find is left to its next claim");
                return;
            }
        };
        let (end, holdernames) = match result {
            Ok((outcome, holdernames)) => (Ok(outcome), holdernames),
            Err(WorkError::Failed(reason)) => (Err(reason), Vec::new()),
            Err(e @ (WorkError::Store(_) | WorkError::Match(_))) => {
                tracing::error!(request_id = %request_id, error = %e, "not worked; will retry after the lease");
                return;
            }
        };
        let n = registered.len();
        match self
            .store
            .end(
                &request_id,
                Some(c.attempts),
                end.clone(),
                registered,
                pat_id,
            )
            .await
        {
            Ok(false) => {
                tracing::warn!(request_id = %request_id, "find request ended by another claim");
            }
            Ok(true) => match end {
                Ok(outcome) => {
                    let completion = (outcome != FindOutcome::NoMatch).then(|| {
                        Duration::from_micros((crate::now_micros() - c.acked_at).max(0) as u64)
                    });
                    crate::metrics::find_completed(outcome.as_str(), completion, &holdernames);
                    tracing::info!(request_id = %request_id, outcome = outcome.as_str(), peis = n, "find request completed");
                }
                Err(reason) => {
                    crate::metrics::find_failed(&reason);
                    tracing::warn!(request_id = %request_id, %reason, "find request failed");
                }
            },
            Err(e) => {
                tracing::error!(request_id = %request_id, error = %e, "ending a find failed; will retry after the lease");
            }
        }
    }

    /// Renews a claimed find's lease every third of it; returns only when the lease is lost:
    /// another claim holds the find, or no renewal succeeded before the lease ran out.
    async fn hold_lease(&self, c: &Claimed) {
        let lease = Duration::from_millis(self.config.lease_ms);
        let mut held_until = Instant::now() + lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            match self
                .store
                .renew_lease(&c.request_id, c.attempts, lease)
                .await
            {
                Ok(true) => held_until = Instant::now() + lease,
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(request_id = %c.request_id, error = %e, "lease not renewed");
                    if Instant::now() + lease / 3 >= held_until {
                        return;
                    }
                }
            }
        }
    }

    /// Works a claimed find: its outcome and the holdernames it matched in (or why it cannot
    /// finish), the PeIs it registered at the CAS (recorded with its end, whatever the end), and
    /// the PAT that registered them.
    async fn work(
        &self,
        c: &Claimed,
    ) -> (
        Result<(FindOutcome, Vec<Uuid>), WorkError>,
        Vec<(String, String)>,
        Option<String>,
    ) {
        let mut registered = Vec::new();
        let mut pat_id = c.pat_id.clone();
        let result = self.register(c, &mut registered, &mut pat_id).await;
        (result, registered, pat_id)
    }

    async fn register(
        &self,
        c: &Claimed,
        registered: &mut Vec<(String, String)>,
        pat_id: &mut Option<String>,
    ) -> Result<(FindOutcome, Vec<Uuid>), WorkError> {
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

        // Matched at the ACK; matched again here rather than stored, so a find resumed after a
        // crash or member changes decides on the members as they are now.
        let matches = self.matcher.find_matches(&find.find_data).await?;
        if matches.is_empty() {
            return Ok((FindOutcome::NoMatch, Vec::new()));
        }
        // Possible-match PeIs derive from the user's `sub`; without it a repeat find could not
        // give the same PeI (wire contract §2), so such a find cannot be registered correctly.
        // A definite match's PeI is the pension's own GUID: its UAT needs no `sub`.
        let sub = match find.uat.subject() {
            Some(sub) => sub,
            None if matches.iter().all(|m| m.status == MatchStatus::Yes) => String::new(),
            None => return Err(WorkError::Failed("uat_no_sub".into())),
        };
        let peis = new_peis(matches, &sub);
        let mut holdernames: Vec<Uuid> = peis.iter().map(|p| p.matched.holdername).collect();
        holdernames.sort_unstable();
        holdernames.dedup();
        let outcome = if peis
            .iter()
            .any(|p| p.matched.match_status == MatchStatus::Yes)
        {
            FindOutcome::MatchYes
        } else {
            FindOutcome::MatchPossible
        };

        let backoff = Backoff {
            base: Duration::from_millis(self.config.backoff_base_ms),
            cap: Duration::from_millis(self.config.backoff_cap_ms),
        };
        let fail = |what: &str, e: CasError| WorkError::Failed(format!("{what}: {}", e.reason()));

        // The PAT: reuse one stored by an earlier attempt, or swap the UAT now. It is stored in
        // the same commit as the matches.
        let (pat, pending) = match pat_id.clone() {
            Some(stored) => {
                let pat = Pat::new(self.store.pat(&stored).await?);
                let (_, pending) = self.store.record_matches(id, peis, None).await?;
                (pat, pending)
            }
            None => {
                let pat = with_retries(
                    deadline,
                    backoff,
                    |_| crate::metrics::cas_retry("POST /token"),
                    || self.cas.token(&find.uat, id),
                )
                .await
                .map_err(|e| fail("token", e))?;
                let (new_id, pending) = self
                    .store
                    .record_matches(id, peis, Some((pat.expose(), pat.expires_at())))
                    .await?;
                *pat_id = new_id;
                (pat, pending)
            }
        };

        // Each pending PeI is registered as its own call, all at once: a member with several
        // pensions costs one CAS round trip, not one per pension.
        let registrations = pending.into_iter().map(|p| {
            let pat = &pat;
            async move {
                let resource_id = with_retries(
                    deadline,
                    backoff,
                    |_| crate::metrics::cas_retry("POST /rreguri"),
                    || {
                        self.cas.register(
                            pat,
                            &p.matched.pei,
                            &p.matched.scheme_name,
                            p.matched.match_status,
                            id,
                        )
                    },
                )
                .await
                .map_err(|e| fail("register", e))?;
                crate::metrics::pei_registered(p.matched.match_status.as_str());
                Ok::<_, WorkError>((p.matched.pei, resource_id))
            }
        });
        let mut failure = None;
        for r in futures_util::future::join_all(registrations).await {
            match r {
                Ok(done) => registered.push(done),
                Err(e) => failure = Some(e),
            }
        }
        self.keep_entered(id, registered, &find.find_data).await;
        match failure {
            Some(e) => Err(e),
            None => Ok((outcome, holdernames)),
        }
    }

    /// Keeps what the searcher entered, sealed, for the review of each possible match among the
    /// PeIs `registered` (the store keeps none for a definite match, and deletes it once the
    /// match is resolved or times out: `store::review`). A failure is logged; the registrations
    /// stand.
    async fn keep_entered(
        &self,
        id: &str,
        registered: &[(String, String)],
        entered: &crate::wire::find::FindData,
    ) {
        let peis = registered.iter().map(|(pei, _)| pei.clone()).collect();
        let entered = serde_json::to_vec(entered).unwrap_or_default();
        if let Err(e) = self.store.keep_searcher_data(id, peis, &entered).await {
            tracing::warn!(request_id = %id, error = %e, "searcher's data not kept for review");
        }
    }
}

/// The PeIs of a find's matches for the user `sub`, one per PeI, in PeI order.
fn new_peis(matches: Vec<crate::matching::PensionMatch>, sub: &str) -> Vec<NewPei> {
    let mut peis: Vec<NewPei> = matches
        .into_iter()
        .map(|m| {
            let asset = pei_asset_guid(m.status, m.pension_asset_guid, sub);
            NewPei {
                matched: PeiMatch {
                    pei: pei(m.holdername, asset),
                    asset_guid: asset,
                    holdername: m.holdername,
                    pension_asset_guid: m.pension_asset_guid,
                    member_id: m.member_id,
                    scheme_name: m.scheme_name,
                    match_status: m.status,
                    reason: m.reason,
                },
                rules_version: m.rules_version,
            }
        })
        .collect();
    peis.sort_by(|a, b| a.matched.pei.cmp(&b.matched.pei));
    peis.dedup_by(|a, b| a.matched.pei == b.matched.pei);
    peis
}

/// `finds failed`: the find requests the pipeline gave up on, as a table.
pub fn failed_table(failed: &[crate::store::FailedFind]) -> String {
    let row = |f: &crate::store::FailedFind| {
        let (acked, ended) = (
            crate::datetimestamp(f.acked_at),
            crate::datetimestamp(f.completed_at),
        );
        format!(
            "{:<36}  {acked:<24}  {ended:<24}  {}",
            f.request_id, f.reason
        )
    };
    crate::table(
        format!(
            "{:<36}  {:<24}  {:<24}  reason",
            "request_id", "acked", "failed"
        ),
        failed.iter().map(row),
        format!("{} failed find requests", failed.len()),
    )
}
