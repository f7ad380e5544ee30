//! Find request parse + validate: the CPU part of the ACK path before the journal append.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "uat": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI3ZjNlOTJjNC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEiLCJpc3MiOiJodHRwOi8vcGVuc2lvbnNkYXNoYm9hcmQub3JnL3Bmc2lzc3VlciJ9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl",
        "findData": {
            "names": [{"givenName": "JANE", "familyName": "O'DONNELL", "verified": true}],
            "previousFamilyNames": [{"familyName": "JONES", "verified": false}],
            "dateOfBirth": {"value": "1970-04-21", "verified": true},
            "nino": {"value": "QQ123456C", "verified": false},
            "addresses": [{"addressLine1": "1 HIGH STREET", "addressLine2": "LEEDS", "postcode": "LS1 1AA",
                           "countryCode": "GB", "verified": true}],
            "previousAddresses": [{"addressLine1": "2 LOW ROAD", "postcode": "M1 1AA", "verified": false}],
            "emails": [{"value": "jane@example.org", "verified": true}],
            "mobiles": [{"value": "+447700900123", "verified": true}]
        }
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let body = body();
    let key = pdp_provider::sealed::DataKey::from_hex(&"11".repeat(32)).unwrap();
    let mut g = c.benchmark_group("find");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse+validate", |b| {
        b.iter(|| pdp_provider::wire::find::parse(black_box(&body)).unwrap())
    });
    g.bench_function("seal (AES-256-GCM)", |b| {
        b.iter(|| key.seal(b"0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d9e", black_box(&body)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
