//! Keeps a running endpoint's match index current while member data changes.
//!
//! Every member import, removal and scheme suspension is noted in the store as a numbered data
//! change ([`crate::store::Store::data_changes_since`]). The endpoint reads the version before it
//! builds its index, then polls for changes after it and applies them in order: a changed member
//! is read again and replaces its index entry in one step (see
//! [`super::index::MemberIndex`]), a removed one leaves it, a scheme's state is re-read. Applying
//! a change twice is harmless, so a change made while the index was being built is simply
//! applied again. No restart, and finds are ACKed and matched throughout.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::index::Matcher;
use super::record::MatchRecord;
use crate::model::{DataChange, SchemeState};
use crate::store::{Store, StoreError};

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
        for (_, change) in &changes {
            match change {
                DataChange::Member(id) => members.push(id.clone()),
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
        for (id, json) in store.member_records(members).await? {
            match json.map(|j| {
                j.ok()
                    .and_then(|j| serde_json::from_slice::<MatchRecord>(&j).ok())
            }) {
                Some(Some(m)) => matcher.index.insert(&m),
                // Skipped, not stalled on: the next change to the member applies again.
                Some(None) => {
                    crate::metrics::member_unreadable();
                    tracing::error!("a changed member record does not open or parse (is the data key configured?); not indexed");
                }
                None => {
                    matcher.index.remove(&id);
                }
            }
        }
        n += changes.len();
        *applied = last;
        crate::metrics::member_index(matcher.index.len(), last);
        crate::metrics::schemes_inactive(matcher.inactive.len());
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
/// publishes the version applied in `published` (the ops listener's `/data-version`).
pub async fn run(
    store: Store,
    matcher: Arc<Matcher>,
    mut applied: i64,
    published: Arc<AtomicI64>,
    every: Duration,
    shutdown: CancellationToken,
) {
    published.store(applied, Ordering::Release);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let result = catch_up(&store, &matcher, &mut applied).await;
        published.store(applied, Ordering::Release);
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                changes = n,
                version = applied,
                members = matcher.index.len(),
                "member data changes applied to the match index"
            ),
            Err(e) => tracing::warn!(error = %e, "member data changes not read; retried"),
        }
    }
}
