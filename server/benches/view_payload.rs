//! The view's CPU path: build the payload from stored view data, serialise it, sign it.
//!
//! `sign/RS256` measures signing alone (2048-bit RSA), so its share of the view is visible;
//! `build+serialise` is everything else the endpoint does in-process; `build+serialise+sign`
//! is the whole CPU path (the CAS introspection round trip is not in it).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pdp_provider::members::generate;
use pdp_provider::store::StoredPension;
use pdp_provider::view_data::payload::{build, Context};
use pdp_provider::view_data::token::{generate_rsa_pem, Signer, TokenSettings};
use pdp_provider::view_data::working_days::{Calendar, Nation};

fn bench(c: &mut Criterion) {
    let schemes = generate::schemes(42);
    let m = generate::member(42, 1, &schemes);
    let p = &m.pensions[0];
    let pension = StoredPension {
        asset_guid: p.asset_guid,
        member_id: m.member_id.clone(),
        holdername: m.holdername,
        scheme_name: "Acme".into(),
        view_data: p.view_data.clone(),
        statement_date: Some(chrono::Utc::now().date_naive()),
        calculation_date: None,
    };
    let calendar = Calendar::by_rule(2026, 2030);
    let cx = Context {
        possible: false,
        value_scope: true,
        registered_on: chrono::Utc::now().date_naive(),
        today: chrono::Utc::now().date_naive(),
        calendar: &calendar,
        nation: Nation::EnglandAndWales,
        reference: "ref",
    };
    let pem = generate_rsa_pem().unwrap();
    let settings = |alg: &str| TokenSettings {
        issuer: "pdp-provider".into(),
        audience: "https://cas.example.org/token".into(),
        ttl_s: 600,
        algorithm: alg.into(),
    };
    let rs256 = Signer::from_pem(&pem, settings("RS256")).unwrap();
    let ps256 = Signer::from_pem(&pem, settings("PS256")).unwrap();
    let pei = "urn:pei:3fa85f64-5717-4562-b3fc-2c963f66afa6:0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d9e";
    let (payload, _) = build(&pension, cx).unwrap();
    let view_data = serde_json::to_string(&payload).unwrap();

    let mut g = c.benchmark_group("view");
    g.throughput(Throughput::Elements(1));
    g.bench_function("build+serialise", |b| {
        b.iter(|| {
            let (p, _) = build(black_box(&pension), cx).unwrap();
            serde_json::to_string(&p).unwrap()
        })
    });
    g.bench_function("sign/RS256", |b| {
        b.iter(|| rs256.sign(pei, black_box(&view_data)).unwrap())
    });
    g.bench_function("sign/PS256", |b| {
        b.iter(|| ps256.sign(pei, black_box(&view_data)).unwrap())
    });
    g.bench_function("build+serialise+sign/RS256", |b| {
        b.iter(|| {
            let (p, _) = build(black_box(&pension), cx).unwrap();
            rs256
                .sign(pei, &serde_json::to_string(&p).unwrap())
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
