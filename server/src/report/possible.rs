//! Regulation 28(3) operational information: possible matches per holdername: how many, how long
//! each took to resolve, how many ended yes, no or timed out, how many are still open.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::store::{ReviewState, Store};

/// One holdername's possible matches created in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PossibleMatches {
    /// The scheme.
    pub holdername: Uuid,
    /// Created in the period.
    pub total: u64,
    /// Resolved as the user's.
    pub yes: u64,
    /// Resolved as not.
    pub no: u64,
    /// Not resolved in time (`match-timeout`).
    pub timed_out: u64,
    /// Still waiting for review.
    pub open: u64,
    /// Seconds each resolved one took, creation to resolution, shortest first.
    pub resolution_seconds: Vec<u64>,
}

/// The report for possible matches created in `[from, to)` (µs), per holdername.
pub async fn report(
    store: &Store,
    from: i64,
    to: i64,
) -> Result<Vec<PossibleMatches>, super::ReportError> {
    let mut by: BTreeMap<Uuid, PossibleMatches> = BTreeMap::new();
    for p in store.possible_matches(from, to).await? {
        let e = by.entry(p.holdername).or_insert_with(|| PossibleMatches {
            holdername: p.holdername,
            ..Default::default()
        });
        e.total += 1;
        match p.review {
            Some(ReviewState::Yes) => e.yes += 1,
            Some(ReviewState::No) => e.no += 1,
            Some(ReviewState::Timeout) => e.timed_out += 1,
            Some(ReviewState::Pending) | None => e.open += 1,
        }
        if let (Some(_), Some(at)) = (p.review, p.resolved_at) {
            e.resolution_seconds
                .push(u64::try_from((at - p.created_at) / 1_000_000).unwrap_or(0));
        }
    }
    let mut out: Vec<_> = by.into_values().collect();
    for e in &mut out {
        e.resolution_seconds.sort_unstable();
    }
    Ok(out)
}
