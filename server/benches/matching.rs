//! Matching throughput against 1M generated members (set `PDP_BENCH_MEMBERS` to change).
//!
//! Setup builds the in-memory index from generated records (timed once and printed); the
//! benchmark then matches find requests that are a definite match, a possible match and no
//! match, one at a time, as a worker does.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pdp_provider::matching::index::{Matcher, MemberIndex};
use pdp_provider::members::generate::{self, FindKind};

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("PDP_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed = 42;
    let schemes = generate::schemes(seed);
    let started = std::time::Instant::now();
    let members: Vec<_> = (0..n)
        .map(|i| generate::member(seed, i, &schemes))
        .collect();
    let generated = started.elapsed();
    let index = MemberIndex::default();
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for chunk in members.chunks(members.len().div_ceil(2).max(1)) {
            let index = &index;
            s.spawn(move || chunk.iter().for_each(|m| index.insert(&m.match_record())));
        }
    });
    eprintln!(
        "generated {n} members in {:.1} s; indexed in {:.2} s",
        generated.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let matcher = Matcher::new(index, &Default::default());
    let finds: Vec<_> = [FindKind::Yes, FindKind::Possible, FindKind::No]
        .into_iter()
        .map(|kind| {
            let m = members
                .iter()
                .skip(n as usize / 2)
                .find(|m| m.nino.is_some())
                .unwrap();
            let body = serde_json::to_vec(&generate::find_for(m, kind, "sub")).unwrap();
            (
                kind,
                pdp_provider::wire::find::parse(&body).unwrap().find_data,
            )
        })
        .collect();
    drop(members);
    let mut g = c.benchmark_group(format!("matching/{n}-members"));
    g.throughput(Throughput::Elements(1));
    for (kind, find) in &finds {
        g.bench_function(format!("{kind:?}"), |b| {
            b.iter(|| matcher.find_matches(black_box(find)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
