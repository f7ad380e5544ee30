//! Schemes (holdernames) an ISP suspends or severs (CoCo3.2.5: an ISP must sever a scheme's
//! connection if PDP directs it).
//!
//! - Suspended: its members are not matched and its views answer `404`, at once and reversibly
//!   (`resume`). Its PeIs stay registered.
//! - Severed: as suspended, and its registered PeIs are de-registered at the CAS
//!   (`asset-removed`), its members removed. Not reversible but by importing them again.
//!
//! Each action is audited (party `operator`) and counted in `pdp_scheme_actions_total`; running
//! endpoints apply it from the store's data changes ([`crate::matching::live`]).

use uuid::Uuid;

use crate::audit::{AuditRecord, Direction};
use crate::cas::client::CasClient;
use crate::peis::DeregError;
use crate::store::{MemberChange, PeiState, SchemeState, Store, StoreError};

/// What severing a scheme did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Severed {
    /// PeIs de-registered at the CAS.
    pub deregistered: u64,
    /// PeIs whose de-registration failed (left for `peis deregister`).
    pub failed: u64,
    /// Members removed.
    pub members_removed: u64,
}

/// Sets a scheme's state and audits it.
pub async fn set(store: &Store, holdername: Uuid, state: SchemeState) -> Result<(), StoreError> {
    store.set_scheme_state(holdername, state).await?;
    audit(store, holdername, state);
    Ok(())
}

/// Severs a scheme: suspended at once, then its PeIs de-registered and its members removed.
pub async fn sever(
    store: &Store,
    cas: &CasClient,
    holdername: Uuid,
) -> Result<Severed, DeregError> {
    set(store, holdername, SchemeState::Severed).await?;
    let mut out = Severed::default();
    for p in store.peis_for_holdername(holdername).await? {
        match p.state {
            PeiState::Registered | PeiState::Deregistering => {
                let guid = p.matched.asset_guid.hyphenated().to_string();
                match crate::peis::deregister(
                    store,
                    cas,
                    &guid,
                    crate::peis::DeletionReason::AssetRemoved,
                )
                .await
                {
                    Ok(_) => out.deregistered += 1,
                    Err(e) => {
                        out.failed += 1;
                        tracing::warn!(request_id = %p.request_id, error = %e, "de-registration on sever failed; re-run peis deregister");
                    }
                }
            }
            PeiState::Pending => store.deregistered(&p.matched.pei, "asset-removed").await?,
            PeiState::Deregistered | PeiState::Flagged => {}
        }
    }
    // In batches, so that no one commit holds the database long (the ACKs share it).
    let ids = store.member_ids(Some(holdername)).await?;
    for chunk in ids.chunks(1_000) {
        let removals = chunk.iter().cloned().map(MemberChange::Remove).collect();
        out.members_removed += store.apply_members(removals, false).await?.len() as u64;
    }
    Ok(out)
}

fn audit(store: &Store, holdername: Uuid, state: SchemeState) {
    let now = crate::now_micros();
    crate::metrics::scheme_action(state.as_str());
    store.audit(AuditRecord {
        transaction_id: Uuid::new_v4().hyphenated().to_string(),
        request_id: None,
        direction: Direction::Operator,
        party: std::env::var("USER")
            .map_or_else(|_| "operator".into(), |u| format!("operator:{u}")),
        endpoint: format!("scheme {} {}", state.as_str(), holdername.hyphenated()),
        received_at: now,
        responded_at: now,
        status: 0,
        outcome: state.as_str().into(),
    });
}
