//! Property tests over real sockets: whatever arrives as a find body, a header or a view path,
//! the answer is a `202`, a `4xx` or a `503`, never another `5xx`, and the server keeps serving.
//!
//! Each runs `PROPTEST_CASES` cases (default 64, to keep `cargo test` quick). Before a release,
//! run longer: `PROPTEST_CASES=5000 cargo test --test it fuzz -- --nocapture`.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use pdp_provider::tls::pki::files;

use crate::harness::{find_body, Env, Server};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid find body with one field, at any depth, replaced by any JSON value.
fn mutated_find() -> impl Strategy<Value = Vec<u8>> {
    let paths = prop::sample::select(vec![
        vec!["uat"],
        vec!["findData"],
        vec!["findData", "names"],
        vec!["findData", "dateOfBirth"],
        vec!["findData", "dateOfBirth", "value"],
        vec!["findData", "nino"],
        vec!["findData", "nino", "value"],
        vec!["findData", "addresses"],
        vec!["findData", "emails"],
        vec!["findData", "mobiles"],
    ]);
    (paths, json()).prop_map(|(path, v)| {
        let mut body = find_body();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = v;
        serde_json::to_vec(&body).unwrap()
    })
}

fn acceptable(status: u16) -> bool {
    status == 202 || (400..500).contains(&status) || status == 503
}

/// Runs `strategy` against a fresh server, sending each case with `send` as the client with
/// certificate `identity` (file names in the dev PKI).
fn run<S, F, Fut>(identity: (&str, &str), strategy: S, send: F)
where
    S: Strategy,
    F: Fn(reqwest::Client, String, S::Value) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = Env::new();
    let server = rt.block_on(Server::start(env.config()));
    let base = server.url("");
    let client = env.client(identity.0, identity.1);
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    let result = runner.run(&strategy, |case| {
        let status = rt.block_on(send(client.clone(), base.clone(), case));
        prop_assert!(acceptable(status), "status {status}");
        Ok::<(), TestCaseError>(())
    });
    // Still serving after every case.
    let ok = rt.block_on(async {
        crate::harness::post_find(
            &env.pfs(),
            &server.url("/find-requests"),
            &uuid::Uuid::new_v4().to_string(),
            &find_body(),
        )
        .await
        .status()
    });
    rt.block_on(server.stop());
    result.unwrap();
    assert_eq!(ok, 202);
}

const PFS: (&str, &str) = (files::PFS, files::PFS_KEY);

#[test]
fn any_find_body_gets_202_4xx_or_503() {
    run(
        PFS,
        prop_oneof![mutated_find(), prop::collection::vec(any::<u8>(), 0..512)],
        |client, base, body| async move {
            client
                .post(format!("{base}/find-requests"))
                .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        },
    );
}

#[test]
fn any_headers_get_202_4xx_or_503() {
    let header_value = "[ -~]{0,80}";
    run(
        PFS,
        (
            header_value,
            header_value,
            prop::collection::vec(("[a-z][a-z0-9-]{0,20}", header_value), 0..6),
        ),
        |client, base, (id, content_type, extra)| async move {
            let mut req = client
                .post(format!("{base}/find-requests"))
                .body(serde_json::to_vec(&find_body()).unwrap());
            for (name, value) in [("x-request-id", id), ("content-type", content_type)]
                .into_iter()
                .chain(extra.iter().map(|(n, v)| (n.as_str(), v.clone())))
            {
                if let (Ok(n), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                    reqwest::header::HeaderValue::from_str(&value),
                ) {
                    req = req.header(n, v);
                }
            }
            req.send().await.unwrap().status().as_u16()
        },
    );
}

#[test]
fn any_view_path_gets_4xx_or_503() {
    run(
        (files::DASHBOARD, files::DASHBOARD_KEY),
        ("[ -~]{0,60}", "[ -~]{0,40}"),
        |client, base, (path, query)| async move {
            client
                .get(format!(
                    "{base}/view-data/{}?{}",
                    urlencode(&path),
                    urlencode(&query)
                ))
                .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        },
    );
}

/// Percent-encodes all but unreserved characters and the path and query separators.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b'='
            | b'&' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
