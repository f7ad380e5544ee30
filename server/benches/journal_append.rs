//! Store append throughput: group commit versus one fsync per find.
//!
//! `fsync-each` runs the real store writer with `max_batch = 1`, so every append is its own
//! transaction and sync; `group-commit` lets concurrent appends share commits. Each iteration
//! appends `N` matched finds (900 bytes, sealed on the way in) from `N` concurrent tasks into a
//! fresh database in a temp dir.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pdp_provider::audit::{AuditRecord, Direction};
use pdp_provider::sealed::DataKey;
use pdp_provider::store::{Decided, NewFind, Store, StoreLimits};

fn find(i: usize) -> (NewFind, AuditRecord) {
    let id = uuid::Uuid::new_v4().to_string();
    (
        NewFind {
            request_id: id.clone(),
            received_at: i as i64,
            decided: Decided::Matched(bytes::Bytes::from(vec![7u8; 900])),
        },
        AuditRecord {
            transaction_id: id.clone(),
            request_id: Some(id),
            direction: Direction::Inbound,
            party: "CN=pension-finder-service".into(),
            endpoint: "POST /find-requests".into(),
            received_at: i as i64,
            responded_at: 0,
            status: 202,
            outcome: "ack".into(),
        },
    )
}

async fn run(max_batch: usize, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::from_hex(&"33".repeat(32)).unwrap();
    let store = Store::open(
        &dir.path().join("bench.sqlite"),
        key,
        StoreLimits {
            max_batch,
            channel_capacity: 65_536,
            max_pending: u64::MAX,
            readers: 1,
        },
    )
    .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let j = store.clone();
        tasks.spawn(async move {
            let (f, a) = find(i);
            j.append(f, a).await.unwrap();
        });
    }
    while tasks.join_next().await.is_some() {}
    store.close().await;
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("journal_append");
    g.sample_size(10);
    for n in [64usize, 512] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("group-commit", n), &n, |b, &n| {
            b.to_async(&rt).iter(|| run(512, n))
        });
        g.bench_with_input(BenchmarkId::new("fsync-each", n), &n, |b, &n| {
            b.to_async(&rt).iter(|| run(1, n))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
