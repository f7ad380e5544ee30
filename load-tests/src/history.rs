//! `finds seed-history`: years of an endpoint's history written into a store, as an endpoint
//! that ran for them would have left it, so that the ACK, forensic look-ups, the service-level
//! report and the purge can be measured against six years rather than a few days.
//!
//! Finds are spread evenly over the days asked for, which end before the hot table's day (all
//! of them ended: the no-match finds as their ACKs' audit records, the others in the history):
//! 96% no match, 3% matches and 1% possible matches (each with
//! its three calls to the CAS: token exchange, register, and a PAT's introspection), and one in
//! ten thousand failed; each match registers a PeI in one of 24 schemes.
//! A quarter of the finds are followed by a view (its `401` challenge and its `200`, and the
//! view's facts for PDP's reports in one of the schemes), which makes about 1.6 audit records a
//! find. Nothing personal: request and transaction IDs are random, finds hold no find data, and
//! the seeded PeIs name no member or pension.

use std::time::Instant;

use pdp_provider::model::{
    AuditRecord, Direction, FindOutcome, FindState, UnavailableCodes, ViewFact,
};
use pdp_provider::store::{EndedFind, Seed, SeededPei, Store, StoreError, HOT_FOR};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// Finds one transaction writes.
const BATCH: u64 = 20_000;

/// What was written, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seeded {
    /// Ended finds written (the history's and the no-match finds' audit records).
    pub finds: u64,
    /// Audit records written to the trail.
    pub audit: u64,
    /// Seconds writing them.
    pub seconds: f64,
}

/// The latest a seeded find may be ACKed at `now` (µs): before the hot table's day, and before
/// the hour that closes it.
pub fn latest(now: i64) -> i64 {
    let hot = i64::try_from(HOT_FOR.as_micros()).unwrap_or(i64::MAX);
    now - hot - 3_600_000_000
}

/// Writes `finds` ended finds received evenly over `[start, end)` (µs; `end` at most
/// [`latest`]), deterministically from `seed`; `progress` is told the finds written so far.
pub async fn seed(
    store: &Store,
    finds: u64,
    (start, end): (i64, i64),
    seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<Seeded, StoreError> {
    let started = Instant::now();
    let step = (end - start) / i64::try_from(finds.max(1)).unwrap_or(i64::MAX);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut written, mut audit_written) = (0, 0);
    while written < finds {
        let n = BATCH.min(finds - written);
        let mut batch = Seed::default();
        for i in written..written + n {
            let received = start + i64::try_from(i).unwrap_or(i64::MAX) * step;
            one(&mut rng, received, &mut batch);
        }
        audit_written += batch.audit.len() as u64;
        store.seed_history(batch).await?;
        written += n;
        progress(written);
    }
    Ok(Seeded {
        finds: written,
        audit: audit_written,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The schemes the seeded PeIs and views are spread over.
const HOLDERNAMES: u128 = 24;

/// One of [`HOLDERNAMES`] schemes.
fn holdername(rng: &mut StdRng) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 + rng.gen_range(0..HOLDERNAMES))
}

/// One find received at `received` (µs), its audit records, the PeI a match registered and
/// the view that followed, into `out`.
fn one(rng: &mut StdRng, received: i64, out: &mut Seed) {
    let request_id = uuid(rng);
    // ACKs of 2-40 ms, one in a thousand at 100-600 ms.
    let ack = if rng.gen_ratio(1, 1000) {
        rng.gen_range(100_000..600_000)
    } else {
        rng.gen_range(2_000..40_000)
    };
    let acked = received + ack;
    let roll = rng.gen_range(0..10_000);
    let (state, outcome, reason, ended) = match roll {
        0 => (
            FindState::Failed,
            None,
            Some("cas: register refused".to_owned()),
            acked + 30_000_000,
        ),
        1..=300 => (
            FindState::Done,
            Some(FindOutcome::MatchYes),
            None,
            acked + rng.gen_range(1_000_000..9_000_000),
        ),
        301..=400 => (
            FindState::Done,
            Some(FindOutcome::MatchPossible),
            None,
            acked + rng.gen_range(1_000_000..9_000_000),
        ),
        _ => (FindState::Done, Some(FindOutcome::NoMatch), None, acked),
    };
    let mut audit = vec![AuditRecord {
        transaction_id: request_id.clone(),
        request_id: Some(request_id.clone()),
        direction: Direction::Inbound,
        party: "CN=pfs".to_owned(),
        endpoint: "POST /find-requests".to_owned(),
        received_at: received,
        responded_at: acked,
        status: 202,
        // A no-match find is its ACK's record alone, outcome `no-match`, as the endpoint keeps it.
        outcome: if outcome == Some(FindOutcome::NoMatch) {
            FindOutcome::NoMatch.as_str()
        } else {
            "ack"
        }
        .to_owned(),
    }];
    if matches!(
        outcome,
        Some(FindOutcome::MatchYes | FindOutcome::MatchPossible)
    ) {
        out.peis.push(SeededPei {
            pei: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
            holdername: holdername(rng),
            request_id: request_id.clone(),
            registered_at: ended,
        });
        for (i, endpoint) in ["POST /token", "POST /rreguri", "POST /introspect"]
            .into_iter()
            .enumerate()
        {
            audit.push(AuditRecord {
                transaction_id: uuid(rng),
                request_id: Some(request_id.clone()),
                direction: Direction::Outbound,
                party: "cas".to_owned(),
                endpoint: endpoint.to_owned(),
                received_at: acked + 100_000 * (i as i64 + 1),
                responded_at: acked + 100_000 * (i as i64 + 1) + 50_000,
                status: if endpoint == "POST /rreguri" {
                    201
                } else {
                    200
                },
                outcome: "ok".to_owned(),
            });
        }
    }
    if rng.gen_ratio(1, 4) {
        let at = ended + rng.gen_range(60_000_000..3_600_000_000);
        view(rng, at, out);
    }
    if outcome != Some(FindOutcome::NoMatch) {
        out.finds.push(EndedFind {
            request_id,
            received_at: received,
            acked_at: acked,
            state,
            outcome,
            reason,
            completed_at: ended,
        });
    }
    out.audit.extend(audit);
}

/// A view answered at `at` (µs): its `401` challenge, its `200`, and its facts.
fn view(rng: &mut StdRng, at: i64, out: &mut Seed) {
    out.views.push(ViewFact {
        holdername: holdername(rng),
        received_at: at,
        responded_at: at + 150_000,
        contact_scheme: false,
        missing_admin: false,
        temp_error: false,
        eri: UnavailableCodes::default(),
        accrued: UnavailableCodes::default(),
    });
    for (status, outcome, took) in [(401, "challenge", 3_000), (200, "view", 150_000)] {
        out.audit.push(AuditRecord {
            transaction_id: uuid(rng),
            request_id: None,
            direction: Direction::Inbound,
            party: "CN=dashboard".to_owned(),
            endpoint: "GET /view-data".to_owned(),
            received_at: at,
            responded_at: at + took,
            status,
            outcome: outcome.to_owned(),
        });
    }
}

fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeded history is what the endpoint reads as history: the finds are found by ID in
    /// it, counted by the service levels, and none is in the hot table's day.
    #[tokio::test]
    async fn seeded_finds_are_read_back_as_ended_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.sqlite"),
            pdp_provider::sealed::DataKey::from_hex(&"44".repeat(32)).unwrap(),
            Default::default(),
        )
        .unwrap();
        let now = pdp_provider::now_micros();
        let mut seen = Vec::new();
        let end = latest(now);
        let s = seed(&store, 3_000, (end - 365 * 86_400_000_000, end), 7, |n| {
            seen.push(n)
        })
        .await
        .unwrap();
        assert_eq!(s.finds, 3_000);
        assert!(s.audit > 3_000, "{s:?}");
        assert_eq!(seen.last(), Some(&3_000));
        // The schemes' service levels come from the seeded PeIs and views.
        let levels = pdp_provider::sla::window_tally(&store, 0, now)
            .await
            .unwrap();
        let (completions, views) = levels.by_holdername.values().fold((0, 0), |(c, v), t| {
            (c + t.completion.count(), v + t.view.count())
        });
        let matched = store
            .find_requests()
            .await
            .unwrap()
            .iter()
            .filter(|f| f.state == FindState::Done && f.outcome != Some(FindOutcome::NoMatch))
            .count() as u64;
        assert_eq!(completions, matched);
        assert!(views > 500 && views < 1_000, "{views}");
        assert!(levels.by_holdername.len() > 1);
        let all = store.find_requests().await.unwrap();
        assert_eq!(all.len(), 3_000);
        let hot = i64::try_from(HOT_FOR.as_micros()).unwrap();
        assert!(all.iter().all(|f| f.acked_at < now - hot));
        let one = &all[1_234];
        let found = store.find_request(&one.request_id).await.unwrap().unwrap();
        assert_eq!(
            (found.acked_at, found.completed_at, found.state),
            (one.acked_at, one.completed_at, one.state)
        );
        let trail = store
            .audit_records(0, i64::MAX, Some(one.request_id.clone()))
            .await
            .unwrap();
        assert_eq!(trail[0].endpoint, "POST /find-requests");
        let samples = store.sla_samples(0, i64::MAX).await.unwrap();
        assert_eq!(samples.ack.len(), 3_000);
        store.close().await;
    }
}
