//! Matching a find against 100,000 generated members (set `PDP_BENCH_MEMBERS` to change) on the
//! embedded store.
//!
//! Setup imports the members into a fresh SQLite store and builds the index from it (both timed
//! once and printed); the benchmark then matches find requests that are a definite match, a
//! possible match and no match, one at a time, as the ACK does: look-up keys hashed, candidates
//! read by slot, opened and decided.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pdp_provider::matching::index::{self, Matcher};
use pdp_provider::members::generate::{self, FindKind};
use pdp_provider::sealed::DataKey;
use pdp_provider::store::{MemberChange, Store};

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("PDP_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed = 42;
    let schemes = generate::schemes(seed);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
    let store = Store::open(&dir.path().join("bench.sqlite"), key, Default::default()).unwrap();
    let index_key = rt.block_on(store.index_key()).unwrap();
    let started = std::time::Instant::now();
    let mut probe = None;
    for chunk in (0..n).collect::<Vec<_>>().chunks(2048) {
        let members: Vec<_> = chunk
            .iter()
            .map(|i| generate::member(seed, *i, &schemes))
            .collect();
        if probe.is_none() && chunk[0] >= n / 2 {
            probe = members.iter().find(|m| m.nino.is_some()).cloned();
        }
        let changes = members
            .iter()
            .map(|m| MemberChange::Upsert(m.to_new_member(&index_key)))
            .collect();
        rt.block_on(store.apply_members(changes, false)).unwrap();
    }
    let imported = started.elapsed();
    let started = std::time::Instant::now();
    let loaded = rt.block_on(index::load(&store, &index_key)).unwrap();
    eprintln!(
        "imported {n} members in {:.1} s; index built in {:.2} s, {} bytes",
        imported.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        loaded.index.heap_bytes()
    );
    let matcher = Matcher::new(loaded.index, index_key, store, &Default::default());
    let m = probe.expect("a member with a NINO in the second half");
    let finds: Vec<_> = [FindKind::Yes, FindKind::Possible, FindKind::No]
        .into_iter()
        .map(|kind| {
            let body = serde_json::to_vec(&generate::find_for(&m, kind, "sub")).unwrap();
            (
                kind,
                pdp_provider::wire::find::parse(&body).unwrap().find_data,
            )
        })
        .collect();
    let mut g = c.benchmark_group(format!("matching/{n}-members"));
    g.throughput(Throughput::Elements(1));
    for (kind, find) in &finds {
        g.bench_function(format!("{kind:?}"), |b| {
            b.iter(|| rt.block_on(matcher.find_matches(black_box(find))).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
