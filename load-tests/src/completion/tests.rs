//! Unit tests of the parent module: what a missed completion is counted as.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use super::*;

/// A control listener at a port nothing listens on.
fn unreachable() -> Control {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Control::new(&format!("http://127.0.0.1:{port}")).unwrap()
}

/// A control listener that has registered nothing, and the polls it has answered.
async fn empty() -> (Control, Arc<AtomicUsize>) {
    let polls = Arc::new(AtomicUsize::new(0));
    let answered = polls.clone();
    let addr = crate::testing::http_listener(move |_| {
        answered.fetch_add(1, SeqCst);
        crate::testing::json_200(r#"{"registrations":[],"next":0}"#)
    })
    .await;
    (Control::new(&format!("http://{addr}")).unwrap(), polls)
}

/// Follows `n` finds ACKed longer ago than the poller waits, and returns what it measured.
async fn follow_overdue(control: &Control, n: usize) -> Completion {
    let (tx, poller) = control.spawn_poller(CancellationToken::new()).await;
    let long_ago = Instant::now()
        .checked_sub(GIVE_UP + Duration::from_secs(1))
        .expect("the clock is past 61 s");
    for i in 0..n {
        tx.send(Followed {
            request_id: format!("find-{i}"),
            acked_at: long_ago,
        })
        .unwrap();
    }
    drop(tx);
    poller.await.unwrap()
}

#[tokio::test]
async fn a_find_the_control_listener_answered_without_is_not_registered() {
    let c = follow_overdue(&empty().await.0, 3).await;
    assert_eq!(c.series.missed, 3);
    assert_eq!(
        c.failures.get(failure::NOT_REGISTERED),
        3,
        "{:?}",
        c.failures
    );
    assert_eq!(c.failures.total(), 3);
    assert_eq!(c.poll_errors, 0);
}

#[tokio::test]
async fn a_find_judged_while_the_control_listener_is_down_says_so() {
    let c = follow_overdue(&unreachable(), 2).await;
    assert_eq!(c.series.missed, 2);
    assert_eq!(
        c.failures.get("CAS control unreachable"),
        2,
        "{:?}",
        c.failures
    );
    assert_eq!(c.poll_errors, 1);
}

#[tokio::test]
async fn finds_pending_at_ctrl_c_are_interrupted() {
    let (control, polls) = empty().await;
    let cancel = CancellationToken::new();
    let (tx, poller) = control.spawn_poller(cancel.clone()).await;
    tx.send(Followed {
        request_id: "find-0".into(),
        acked_at: Instant::now(),
    })
    .unwrap();
    // Polled while pending (after the call that found where the log ends): the poller has it.
    let waited = std::time::Instant::now();
    while polls.load(SeqCst) < 2 {
        assert!(waited.elapsed() < Duration::from_secs(10), "never polled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    let c = poller.await.unwrap();
    drop(tx);
    assert_eq!(c.series.count(), 0);
    assert_eq!(c.series.missed, 1);
    assert_eq!(c.failures.get(failure::INTERRUPTED), 1, "{:?}", c.failures);
}

/// A control listener whose log holds one registration, of `find-0`: it answers `?since=0` with
/// it, any other cursor with nothing, and says the log ends at 0 until a poll has read it (as if
/// made just after the poller started); the request lines it saw.
async fn one_registration() -> (Control, Arc<std::sync::Mutex<Vec<String>>>) {
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = lines.clone();
    let addr = crate::testing::http_listener(move |line| {
        let mut seen = seen.lock().unwrap();
        seen.push(line.to_owned());
        crate::testing::json_200(if line.contains("since=0 ") {
            r#"{"registrations":[{"name":"pei-0","inbound_request_id":"find-0"}],"next":1}"#
        } else if seen.iter().any(|l| l.contains("since=0 ")) {
            r#"{"registrations":[],"next":1}"#
        } else {
            r#"{"registrations":[],"next":0}"#
        })
    })
    .await;
    (Control::new(&format!("http://{addr}")).unwrap(), lines)
}

#[tokio::test]
async fn polls_read_on_from_their_cursor_and_a_registration_seen_before_its_find_counts() {
    let (control, lines) = one_registration().await;
    let cancel = CancellationToken::new();
    let (tx, poller) = control.spawn_poller(cancel.clone()).await;
    // An overdue find, judged by the first poll; one still pending keeps the poller polling.
    tx.send(Followed {
        request_id: "other".into(),
        acked_at: Instant::now()
            .checked_sub(GIVE_UP + Duration::from_secs(1))
            .expect("the clock is past 61 s"),
    })
    .unwrap();
    tx.send(Followed {
        request_id: "find-2".into(),
        acked_at: Instant::now(),
    })
    .unwrap();
    let polls = |n: usize| {
        let lines = lines.clone();
        async move {
            let waited = std::time::Instant::now();
            while lines.lock().unwrap().len() < n {
                assert!(waited.elapsed() < Duration::from_secs(10), "never polled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    polls(2).await;
    // find-0's 202 reaches the poller after the poll that showed its registration.
    tx.send(Followed {
        request_id: "find-0".into(),
        acked_at: Instant::now() - Duration::from_millis(30),
    })
    .unwrap();
    polls(4).await;
    cancel.cancel();
    let c = poller.await.unwrap();
    assert_eq!(c.series.count(), 1, "find-0 completed");
    assert_eq!(c.failures.get(failure::NOT_REGISTERED), 1, "other");
    assert_eq!(c.failures.get(failure::INTERRUPTED), 1, "find-2");
    let lines = lines.lock().unwrap();
    let cursors: Vec<&str> = lines
        .iter()
        .map(|l| l.split("since=").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(
        cursors[..4],
        [usize::MAX.to_string().as_str(), "0", "1", "1"],
        "where the log ended at the start, then on from it"
    );
}
