//! Operator actions on registered PeIs: de-registration (wire contract §4.4, CoCo2.2.4) and the
//! review of possible matches (wire contract §5: resolved yes with `PATCH`, no with `match-no`,
//! or unresolved after `matching.possible_review_days` with `match-timeout`).
//!
//! A PeI is de-registered at the CAS with a deletion reason valid for its match status, using the
//! PAT that registered it. From then on its views get `404`. When the CAS refuses the PAT as
//! expired, the PeI is flagged "de-registration pending: notify PDP": never served again,
//! counted in `pdp_deregistrations_pending` and listed by `pdp-provider peis flagged`.

use std::time::Duration;

use crate::cas::client::CasClient;
use crate::cas::retry::{with_retries, Backoff};
use crate::cas::{CasError, Pat};
use crate::store::{MatchStatus, PeiState, ReviewState, Store, StoreError};

/// Why a PeI is de-registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeletionReason {
    /// A possible match resolved as no match.
    MatchNo,
    /// A possible match not resolved in time.
    MatchTimeout,
    /// A definite match made in error.
    MatchWithdrawn,
    /// The member is no longer relevant (transferred out, crystallised).
    AssetRemoved,
}

impl DeletionReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MatchNo => "match-no",
            Self::MatchTimeout => "match-timeout",
            Self::MatchWithdrawn => "match-withdrawn",
            Self::AssetRemoved => "asset-removed",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::MatchNo,
            Self::MatchTimeout,
            Self::MatchWithdrawn,
            Self::AssetRemoved,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Whether the reason is valid for a PeI of `match_status`.
    pub fn allowed_for(self, match_status: MatchStatus) -> bool {
        match match_status {
            MatchStatus::Yes => matches!(self, Self::MatchWithdrawn | Self::AssetRemoved),
            MatchStatus::Possible => matches!(
                self,
                Self::MatchNo | Self::MatchTimeout | Self::AssetRemoved
            ),
        }
    }
}

/// What a de-registration ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deregistered {
    /// The CAS deleted it (`204`).
    Done,
    /// The CAS no longer had it (`404`).
    AlreadyGone,
    /// The CAS refused the PAT: flagged, never served; PDP must be told (CoCo2.2.4).
    FlaggedPatExpired,
}

/// Why a de-registration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeregError {
    /// No registered PeI has that asset GUID.
    #[error("no registered PeI has asset GUID {0}")]
    NotRegistered(String),
    /// The reason does not fit the match status.
    #[error("{reason} is not a valid deletion reason for a {status} PeI")]
    InvalidReason {
        /// The reason.
        reason: &'static str,
        /// The PeI's match status.
        status: MatchStatus,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CAS client could not be built (its TLS material).
    #[error(transparent)]
    Client(#[from] crate::tls::client::ClientError),
    /// The CAS failed in a way a retry later may fix.
    #[error("CAS: {0}")]
    Cas(#[from] CasError),
}

/// The PeI with `asset_guid` when it is in one of `states`.
async fn pei_in(
    store: &Store,
    asset_guid: &str,
    states: &[PeiState],
) -> Result<crate::store::StoredPei, DeregError> {
    let not_registered = || DeregError::NotRegistered(asset_guid.to_owned());
    let guid = uuid::Uuid::try_parse(asset_guid).map_err(|_| not_registered())?;
    store
        .pei_by_asset_guid(guid)
        .await?
        .filter(|p| states.contains(&p.state))
        .ok_or_else(not_registered)
}

/// The PAT that registered a PeI.
async fn pat_of(store: &Store, pei: &crate::store::StoredPei) -> Result<Pat, DeregError> {
    Ok(Pat::new(
        store.pat(pei.pat_id.as_deref().unwrap_or_default()).await?,
    ))
}

/// De-registers the PeI with `asset_guid`.
pub async fn deregister(
    store: &Store,
    cas: &CasClient,
    asset_guid: &str,
    reason: DeletionReason,
) -> Result<Deregistered, DeregError> {
    let pei = pei_in(
        store,
        asset_guid,
        &[PeiState::Registered, PeiState::Deregistering],
    )
    .await?;
    if !reason.allowed_for(pei.matched.match_status) {
        return Err(DeregError::InvalidReason {
            reason: reason.as_str(),
            status: pei.matched.match_status,
        });
    }
    // Never served again from this moment (CoCo2.2.4), whatever the CAS answers: a CAS that is
    // down leaves the PeI `deregistering`, and running the command again finishes it.
    store
        .mark_deregistering(&pei.matched.pei, reason.as_str())
        .await?;
    let pat = pat_of(store, &pei).await?;
    let resource_id = pei.resource_id.clone().unwrap_or_default();
    let result = operator_call("DELETE /rreguri", || {
        cas.deregister(&pat, &resource_id, reason.as_str(), Some(&pei.request_id))
    })
    .await;
    let outcome = match result {
        Ok(()) => {
            store
                .deregistered(&pei.matched.pei, reason.as_str())
                .await?;
            Deregistered::Done
        }
        Err(CasError::Refused { status: 404 }) => {
            store
                .deregistered(&pei.matched.pei, reason.as_str())
                .await?;
            Deregistered::AlreadyGone
        }
        // 401: PAT expired; MaPS' stub answers 400 "PAT not found" for an unknown PAT.
        Err(CasError::Refused { status: 401 | 400 }) => {
            store
                .flag_for_deregistration(&pei.matched.pei, reason.as_str())
                .await?;
            tracing::error!(request_id = %pei.request_id, "PAT refused: PeI flagged, de-registration pending; notify PDP (CoCo2.2.4)");
            Deregistered::FlaggedPatExpired
        }
        Err(e) => return Err(e.into()),
    };
    crate::metrics::deregistrations_pending(store.flagged().await?.len());
    Ok(outcome)
}

/// How a possible match was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Resolution {
    /// It is the user's: `PATCH` to `match-yes`; views now show the definite arrangement.
    Yes,
    /// It is not: de-registered with `match-no`.
    No,
}

/// Resolves the possible match with `asset_guid` after review.
pub async fn resolve_possible(
    store: &Store,
    cas: &CasClient,
    asset_guid: &str,
    resolution: Resolution,
) -> Result<Deregistered, DeregError> {
    let pei = pei_in(store, asset_guid, &[PeiState::Registered]).await?;
    if pei.matched.match_status != MatchStatus::Possible {
        return Err(DeregError::InvalidReason {
            reason: "resolve",
            status: pei.matched.match_status,
        });
    }
    match resolution {
        Resolution::No => {
            let out = deregister(store, cas, asset_guid, DeletionReason::MatchNo).await?;
            store
                .set_review(&pei.matched.pei, ReviewState::No, MatchStatus::Possible)
                .await?;
            crate::report::facts::reviewed(store, &pei, ReviewState::No).await;
            Ok(out)
        }
        Resolution::Yes => {
            let pat = pat_of(store, &pei).await?;
            let resource_id = pei.resource_id.clone().unwrap_or_default();
            let r = operator_call("PATCH /rreguri", || {
                cas.update_to_yes(&pat, &resource_id, &pei.request_id)
            })
            .await;
            match r {
                Ok(()) => {
                    store
                        .set_review(&pei.matched.pei, ReviewState::Yes, MatchStatus::Yes)
                        .await?;
                    crate::report::facts::reviewed(store, &pei, ReviewState::Yes).await;
                    Ok(Deregistered::Done)
                }
                Err(CasError::Refused { status: 404 }) => {
                    store.deregistered(&pei.matched.pei, "gone-at-cas").await?;
                    Ok(Deregistered::AlreadyGone)
                }
                Err(CasError::Refused { status: 401 | 400 }) => {
                    store
                        .flag_for_deregistration(&pei.matched.pei, "pat-refused")
                        .await?;
                    crate::metrics::deregistrations_pending(store.flagged().await?.len());
                    Ok(Deregistered::FlaggedPatExpired)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// De-registers, as `match-timeout`, every possible match unreviewed for `review_days`.
/// Returns how many were de-registered; failures are logged and left for the next run.
pub async fn expire_possible(
    store: &Store,
    cas: &CasClient,
    review_days: u32,
) -> Result<u64, DeregError> {
    let before = crate::now_micros() - i64::from(review_days) * 86_400 * 1_000_000;
    let mut n = 0;
    for p in store.possible_unreviewed_before(before).await? {
        let guid = p.matched.asset_guid.hyphenated().to_string();
        match deregister(store, cas, &guid, DeletionReason::MatchTimeout).await {
            Ok(_) => {
                store
                    .set_review(&p.matched.pei, ReviewState::Timeout, MatchStatus::Possible)
                    .await?;
                crate::report::facts::reviewed(store, &p, ReviewState::Timeout).await;
                n += 1;
            }
            Err(e) => {
                tracing::warn!(request_id = %p.request_id, error = %e, "possible match not expired; retried next run")
            }
        }
    }
    Ok(n)
}

/// Finishes every de-registration still to be sent (`deregistering`: the CAS was down, an
/// import removed the pension, a registration came back after its PeI was retired), each with
/// its stored reason. Returns how many were finished; the rest are logged and left for the next
/// sweep. The server sweeps every minute.
pub async fn sweep(store: &Store, cas: &CasClient) -> Result<u64, DeregError> {
    let mut n = 0;
    for p in store.deregistering().await? {
        let reason = p
            .deletion_reason
            .as_deref()
            .and_then(DeletionReason::parse)
            .unwrap_or(DeletionReason::AssetRemoved);
        let guid = p.matched.asset_guid.hyphenated().to_string();
        match deregister(store, cas, &guid, reason).await {
            Ok(_) => n += 1,
            Err(e) => {
                tracing::warn!(request_id = %p.request_id, error = %e, "de-registration not sent yet; retried at the next sweep")
            }
        }
    }
    Ok(n)
}

/// `peis flagged`: the PeIs waiting for PDP to be told, as a table.
pub fn flagged_table(flagged: &[crate::store::StoredPei]) -> String {
    crate::table(
        format!(
            "{:<86}  {:<15}  {:<16}  flagged",
            "pei", "match_status", "reason"
        ),
        flagged.iter().map(|p| {
            format!(
                "{:<86}  {:<15}  {:<16}  de-registration pending: notify PDP",
                p.matched.pei, p.matched.match_status, p.matched.reason
            )
        }),
        format!("{} PeIs flagged", flagged.len()),
    )
}

/// An operator's CAS call: retried for up to 30 s (backoff 200 ms to 5 s), each retry counted
/// under `endpoint`.
async fn operator_call<T, F, Fut>(endpoint: &'static str, call: F) -> Result<T, CasError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CasError>>,
{
    with_retries(
        tokio::time::Instant::now() + Duration::from_secs(30),
        Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        },
        |_| crate::metrics::cas_retry(endpoint),
        call,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_match_statuses_as_spec_4_4_says() {
        use DeletionReason::*;
        for r in [MatchWithdrawn, AssetRemoved] {
            assert!(r.allowed_for(MatchStatus::Yes));
        }
        for r in [MatchNo, MatchTimeout] {
            assert!(!r.allowed_for(MatchStatus::Yes));
            assert!(r.allowed_for(MatchStatus::Possible));
        }
        assert!(AssetRemoved.allowed_for(MatchStatus::Possible));
        assert!(!MatchWithdrawn.allowed_for(MatchStatus::Possible));
        assert_eq!(MatchTimeout.as_str(), "match-timeout");
    }
}
