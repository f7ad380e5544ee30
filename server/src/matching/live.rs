//! Keeps a running endpoint's match index current while member data changes.
//!
//! Every member import, removal and scheme suspension is noted in the store as a numbered data
//! change ([`crate::store::Store::data_changes_since`]). The endpoint reads the version before it
//! builds its index, then polls for changes after it and applies them in order: a changed member
//! is read again and its look-up keys are added under its slot (see
//! [`super::index::MemberIndex`]), a removed one's slot leaves it, a scheme's state is re-read. Applying
//! a change twice is harmless, so a change made while the index was being built is simply
//! applied again. No restart, and finds are ACKed and matched throughout.
//!
//! A changed record that does not open with the configured data key (another instance sealed
//! it with another) or does not parse keeps the member's previous entry, if any, and lists the
//! member in [`Matcher::unreadable`]: until a later change to it opens, finds are refused with
//! `503` and the endpoint is not ready, rather than ending that member's finds as no-matches.
//! The endpoint keeps running.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::index::Matcher;
use super::record::MatchRecord;
use crate::model::{DataChange, MatchKeys, SchemeState};
use crate::store::{IndexEntry, Store, StoreError};

/// Changes read at once.
const BATCH: usize = 1024;

/// Applies every change after `applied` to `matcher`; returns how many it applied and advances
/// `applied` past them.
pub async fn catch_up(
    store: &Store,
    matcher: &Matcher,
    applied: &mut i64,
) -> Result<usize, StoreError> {
    let mut n = 0;
    loop {
        let changes = store.data_changes_since(*applied, BATCH).await?;
        let Some(&(last, _)) = changes.last() else {
            return Ok(n);
        };
        let mut members = Vec::new();
        let mut added = Vec::new();
        for (_, change) in &changes {
            match change {
                DataChange::Member(id) => members.push(id.clone()),
                DataChange::Added { first, last } => added.push((*first, *last)),
                DataChange::SlotFreed(slot) => {
                    if let Ok(slot) = u32::try_from(*slot) {
                        matcher.index.remove(slot);
                    }
                }
                DataChange::Scheme(h) => match store.scheme_state(*h).await? {
                    SchemeState::Active => {
                        matcher.inactive.remove(h);
                    }
                    SchemeState::Suspended | SchemeState::Severed => {
                        matcher.inactive.insert(*h);
                    }
                },
            }
        }
        members.sort_unstable();
        members.dedup();
        let mut entries = store.members_for_index(members).await?;
        for (first, last) in added {
            entries.extend(
                store
                    .members_in_slots(first, last)
                    .await?
                    .into_iter()
                    .map(|e| (e.0.member_id.clone(), Some(e))),
            );
        }
        apply_members(matcher, entries);
        n += changes.len();
        *applied = last;
        crate::metrics::member_index(matcher.index.len(), last);
        crate::metrics::members_unreadable(matcher.unreadable());
        crate::metrics::schemes_inactive(matcher.inactive.len());
    }
}

/// Applies members as stored (`None`: not stored) to the index: each one's keys added under
/// its slot, or it is listed as unreadable (the endpoint then refuses finds until a later
/// change to it opens). A removed member's slot leaves the index by its own change
/// ([`DataChange::SlotFreed`]).
fn apply_members(matcher: &Matcher, entries: Vec<(String, Option<IndexEntry>)>) {
    let mut failed = 0u64;
    for (id, row) in entries {
        let Some((m, stored_keys)) = row else {
            matcher.mark_readable(&id);
            continue;
        };
        let record = m
            .record
            .ok()
            .and_then(|j| serde_json::from_slice::<MatchRecord>(&j).ok());
        let (Some(record), Ok(slot)) = (record, u32::try_from(m.slot)) else {
            crate::metrics::member_unreadable();
            matcher.mark_unreadable(id.into_boxed_str());
            failed += 1;
            continue;
        };
        let keys = stored_keys
            .as_deref()
            .and_then(MatchKeys::from_bytes)
            .unwrap_or_else(|| matcher.keys_of(&record.person()));
        matcher.index.add(slot, &keys.0);
        matcher.mark_readable(&id);
    }
    if failed > 0 {
        tracing::error!(
            failed,
            unreadable = matcher.unreadable(),
            key = %matcher.key_name,
            "changed member records do not open with the configured data key, or do not parse; \
             finds are refused (503) and the endpoint is not ready until those members are \
             imported again under this key"
        );
    } else if !matcher.complete() {
        tracing::info!(
            unreadable = matcher.unreadable(),
            "member records still unreadable; finds stay refused"
        );
    }
}

/// Reads the schemes not active into `matcher` (at start-up).
pub async fn load_schemes(store: &Store, matcher: &Matcher) -> Result<(), StoreError> {
    for (h, _) in store.inactive_schemes().await? {
        matcher.inactive.insert(h);
    }
    crate::metrics::schemes_inactive(matcher.inactive.len());
    Ok(())
}

/// Polls for changes every `every` until `shutdown`, starting after version `applied`, and
/// publishes the version applied in `published` (the ops listener's `/data-version`) and
/// whether the store answered in `store_up` (`/health/ready`, and `pdp_store_up`). A store that
/// stops answering is logged once when it stops and once when it answers again, not at every
/// poll. The members stored (`pdp_members_stored`) are counted at the first poll and after each
/// poll that applied changes: a count is a scan of the members, too dear for every poll.
pub async fn run(
    store: Store,
    matcher: Arc<Matcher>,
    mut applied: i64,
    published: Arc<AtomicI64>,
    store_up: Arc<AtomicBool>,
    every: Duration,
    shutdown: CancellationToken,
) {
    published.store(applied, Ordering::Release);
    crate::metrics::store_up(store_up.load(Ordering::Acquire));
    crate::metrics::members_unreadable(matcher.unreadable());
    let mut tick = tokio::time::interval(every);
    let mut failed_polls = 0u64;
    let mut count_stored = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let result = catch_up(&store, &matcher, &mut applied).await;
        published.store(applied, Ordering::Release);
        match result {
            Ok(n) => {
                if failed_polls > 0 {
                    tracing::info!(failed_polls, "the store answers again; ready");
                    failed_polls = 0;
                }
                store_up.store(true, Ordering::Release);
                crate::metrics::store_up(true);
                if n > 0 || count_stored {
                    count_stored = count_members(&store).await;
                }
                if n > 0 {
                    tracing::info!(
                        changes = n,
                        version = applied,
                        members = matcher.index.len(),
                        "member data changes applied to the match index"
                    );
                }
            }
            Err(e) => {
                if failed_polls == 0 {
                    tracing::warn!(error = %e, "the store does not answer; not ready until it does (member data changes are read again)");
                }
                failed_polls += 1;
                if matches!(e, StoreError::Unavailable(_) | StoreError::Closed) {
                    store_up.store(false, Ordering::Release);
                    crate::metrics::store_up(false);
                }
            }
        }
    }
}

/// Exports the members stored; true when they could not be counted (counted again next poll).
async fn count_members(store: &Store) -> bool {
    match store.member_count().await {
        Ok(n) => {
            crate::metrics::members_stored(n);
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, "members stored not counted; counted at the next poll");
            true
        }
    }
}
