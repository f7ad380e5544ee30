//! Ended finds leave the hot table for the history, are still read wherever ended finds are,
//! and retention purges every kind a batch at a time: on both backends.

use super::*;
use crate::model::{FindOutcome, FindState};
use crate::store::history::HOUR;
use crate::store::EndedFind;

/// An ended no-match find ACKed at `at` (µs), with its ACK's audit record.
fn ended(id: &str, at: i64) -> (EndedFind, AuditRecord) {
    let find = EndedFind {
        request_id: id.into(),
        received_at: at - 10,
        acked_at: at,
        state: FindState::Done,
        outcome: Some(FindOutcome::NoMatch),
        reason: None,
        completed_at: at,
    };
    let record = AuditRecord {
        received_at: at - 10,
        responded_at: at,
        ..audit(id)
    };
    (find, record)
}

async fn ended_finds_move_to_the_history_and_are_still_found(db: Place) {
    let s = db.open().await;
    s.append(find("a", false), audit("a")).await.unwrap();
    s.append(find("b", true), audit("b")).await.unwrap();
    // The no-match is its ACK's audit record alone: nothing of it moves (on PostgreSQL its row,
    // there for its ID, goes). The open one stays.
    let now = crate::now_micros() + 1;
    s.settle_finds(now, 100).await.unwrap();
    assert_eq!(s.settle_finds(now, 100).await.unwrap(), 0);
    let a = s.find_request("a").await.unwrap().unwrap();
    assert_eq!(
        (a.state, a.outcome),
        (FindState::Done, Some(FindOutcome::NoMatch))
    );
    assert!(!a.has_find_data && a.completed_at == Some(a.acked_at));
    assert_eq!(s.find_requests().await.unwrap().len(), 2);
    // The open one ends failed, moves, and is still listed as failed.
    assert_eq!(s.claim(Duration::from_secs(60), 10).await.unwrap().len(), 1);
    assert!(s.fail("b", "cas: refused").await.unwrap());
    assert_eq!(
        s.settle_finds(crate::now_micros() + 1, 100).await.unwrap(),
        1
    );
    let failed = s.failed().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].reason, "cas: refused");
    assert!(s.find_request("b").await.unwrap().is_some());
    // A batch moves about `limit` finds, oldest first (a group commit's finds together).
    // (Ended one at a time: the test store's queue holds two.)
    for i in 0..6 {
        let id = format!("c{i}");
        s.append(find(&id, true), audit(&id)).await.unwrap();
        assert_eq!(s.claim(Duration::from_secs(60), 10).await.unwrap().len(), 1);
        assert!(s.fail(&id, "cas: refused").await.unwrap());
    }
    let moved = s.settle_finds(crate::now_micros() + 1, 2).await.unwrap();
    assert!((2..6).contains(&moved), "{moved}");
    assert!(s.find_request("c0").await.unwrap().is_some());
    // What the service levels read counts the history, the hot table and the no-match ACKs
    // alike, each find once.
    let samples = s.sla_samples(0, i64::MAX).await.unwrap();
    let count = |k: &str| {
        samples
            .counts
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, c)| *c)
            .sum::<u64>()
    };
    assert_eq!((count("find no-match"), count("find failed")), (1, 7));
    assert_eq!((samples.failed, samples.ack.len()), (7, 8));
    assert_eq!(s.find_requests().await.unwrap().len(), 8);
}

async fn retention_purges_the_trail_the_history_and_the_tallies_a_batch_at_a_time(db: Place) {
    let s = db.open().await;
    let base = 20_000 * 24 * HOUR;
    let (mut finds, mut trail) = (Vec::new(), Vec::new());
    for i in 0..12 {
        let (f, a) = ended(&format!("f{i}"), base + i * HOUR);
        finds.push(f);
        trail.push(a);
    }
    s.seed_history(crate::store::Seed {
        finds,
        audit: trail,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(s
        .put_sla_hour(0, 20_000 * 24 + 1, Some(b"{}".to_vec()))
        .await
        .unwrap());
    assert!(s
        .put_sla_hour(20_000 * 24 + 1, 20_000 * 24 + 11, Some(b"{}".to_vec()))
        .await
        .unwrap());
    // Another instance's view of where tallying stands is refused.
    assert!(!s.put_sla_hour(0, 5, None).await.unwrap());
    assert_eq!(s.sla_next_hour().await.unwrap(), Some(20_000 * 24 + 11));
    assert!(s
        .put_sla_hour(20_000 * 24 + 11, 20_000 * 24 + 12, Some(b"{}".to_vec()))
        .await
        .unwrap());
    // f10's ACK was received at the cutoff: it and what came after stay.
    let cutoff = base + 10 * HOUR - 10;
    let first = s.purge_before(cutoff, 4).await.unwrap();
    assert_eq!((first.audit, first.finds), (4, 4), "{first:?}");
    assert_eq!(s.purge_audit(cutoff).await.unwrap(), 6);
    let left = s.find_requests().await.unwrap();
    assert_eq!(
        left.iter()
            .map(|f| f.request_id.as_str())
            .collect::<Vec<_>>(),
        ["f10", "f11"]
    );
    assert_eq!(s.audit_records(0, i64::MAX, None).await.unwrap().len(), 2);
    assert_eq!(
        s.sla_hours(0, i64::MAX)
            .await
            .unwrap()
            .iter()
            .map(|(h, _)| *h)
            .collect::<Vec<_>>(),
        [20_000 * 24 + 11]
    );
    assert_eq!(s.purge_before(cutoff, 4).await.unwrap(), Purged::default());
}

/// An hour's audit IDs written a part of the ID space at a time add up to the whole, once.
async fn an_hours_audit_ids_are_written_in_parts_each_once(db: Place) {
    let s = db.open().await;
    let hour = 20_000 * 24 + 5;
    for id in ["0aa", "9bb", "fcc"] {
        s.audit(AuditRecord {
            received_at: hour * HOUR + 7,
            responded_at: hour * HOUR + 8,
            ..audit(id)
        });
    }
    s.append(find("sync", false), audit("sync")).await.unwrap();
    let count = || async {
        s.read(|tx| {
            Box::pin(async move { tx.value::<i64>("SELECT count(*) FROM audit_ids", &[]).await })
        })
        .await
        .unwrap()
    };
    let part = |lo: Option<&'static str>, hi: Option<&'static str>| {
        s.write(move |tx| {
            Box::pin(async move {
                crate::store::audit::write_span(tx, (hour * HOUR, (hour + 1) * HOUR), lo, hi).await
            })
        })
    };
    assert_eq!(part(None, Some("8")).await.unwrap(), 1);
    assert_eq!(count().await, 1);
    assert_eq!(part(Some("8"), None).await.unwrap(), 2);
    assert_eq!(count().await, 3);
    assert_eq!(part(None, None).await.unwrap(), 0, "each ID once");
    assert_eq!(count().await, 3);
}

async fn a_no_match_find_is_its_acks_record_and_one_with_a_row_is_counted_once(db: Place) {
    let s = db.open().await;
    // As the layout before schema V21 left one: a row in the history, its ACK's record `ack`.
    let at = crate::now_micros() - 48 * HOUR;
    let (old, record) = ended("old", at);
    s.seed_history(crate::store::Seed {
        finds: vec![old],
        audit: vec![record],
        ..Default::default()
    })
    .await
    .unwrap();
    s.append(find("new", false), audit("new")).await.unwrap();
    // A find matched at its ACK and ended by the pipeline as a no-match has a row of its own.
    s.append(find("ended", true), audit("ended")).await.unwrap();
    assert_eq!(s.claim(Duration::from_secs(60), 10).await.unwrap().len(), 1);
    assert!(s.complete("ended", FindOutcome::NoMatch).await.unwrap());
    // On PostgreSQL the new one has a row for its ID too; it is not a find of its own, and it
    // goes (not into the history) once the day is over.
    let samples = s.sla_samples(0, i64::MAX).await.unwrap();
    let no_match: u64 = samples
        .counts
        .iter()
        .filter(|(n, _)| n == "find no-match")
        .map(|(_, c)| *c)
        .sum();
    assert_eq!(no_match, 3);
    let all = s.find_requests().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|f| f.request_id.as_str()).collect();
    assert_eq!(ids, ["old", "new", "ended"]);
    for f in &all {
        assert_eq!(
            s.find_request(&f.request_id).await.unwrap().as_ref(),
            Some(f)
        );
        assert_eq!(
            (f.state, f.outcome),
            (FindState::Done, Some(FindOutcome::NoMatch))
        );
    }
    assert_eq!(all[0].acked_at, at);
    s.settle_finds(crate::now_micros() + 1, 100).await.unwrap();
    assert_eq!(s.find_requests().await.unwrap(), all);
    let in_history: i64 = s
        .read(|tx| {
            Box::pin(async move { tx.value("SELECT count(*) FROM find_history", &[]).await })
        })
        .await
        .unwrap();
    assert_eq!(
        in_history, 2,
        "the rows of the old one and the one the pipeline ended"
    );
}

on_both_backends!(
    a_no_match_find_is_its_acks_record_and_one_with_a_row_is_counted_once,
    ended_finds_move_to_the_history_and_are_still_found,
    retention_purges_the_trail_the_history_and_the_tallies_a_batch_at_a_time,
    an_hours_audit_ids_are_written_in_parts_each_once,
);
