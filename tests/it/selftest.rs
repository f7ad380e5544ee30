//! `pdp-provider selftest`: the real binary plays PDP's system test scenarios against its own
//! endpoint (all pass, the evidence renders in Chromium), against an endpoint configured to
//! break them (retries cut short by the budget, an access list that admits every certificate),
//! and against a stand-in that serves views without introspection: the matching cases fail,
//! saying why.

use std::path::{Path, PathBuf};
use std::process::Command;

use pdp_provider::tls::pki::files;
use pdp_sim::selftest::catalogue::CASES;

use crate::harness::{cas_sim, Env, Server};

/// Runs `pdp-provider selftest` with `args` from the repository (the default configuration's
/// calendar is a relative path), writing its evidence into `dir`; the exit code and the JSON.
fn selftest(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let json = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("selftest")
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(dir.join("report.html"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    (out.status.code(), report, stdout)
}

/// Each case's result and reason, by ID.
fn verdicts(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["verdict"]["result"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["verdict"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn verdict<'a>(v: &'a [(String, String, String)], id: &str) -> (&'a str, &'a str) {
    let c = v
        .iter()
        .find(|c| c.0 == id)
        .unwrap_or_else(|| panic!("no case {id}: {v:?}"));
    (c.1.as_str(), c.2.as_str())
}

#[tokio::test]
async fn selftest_passes_every_case_against_its_own_endpoint_and_the_evidence_renders() {
    let dir = tempfile::tempdir().unwrap();
    let (code, report, stdout) = selftest(dir.path(), &[]);
    let v = verdicts(&report);
    let failed: Vec<_> = v.iter().filter(|c| c.1 != "pass").collect();
    assert!(failed.is_empty(), "{failed:#?}\n{stdout}");
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(v.len(), CASES.len());
    for case in CASES {
        assert!(v.iter().any(|c| c.0 == case.id), "{} missing", case.id);
    }
    assert_eq!(report["summary"]["passed"], CASES.len());
    assert!(report["stub"]
        .as_str()
        .unwrap()
        .contains("pdp-test-harness v1.1.5"));
    assert!(report["certificate"]["subject"]
        .as_str()
        .unwrap()
        .contains("CN=localhost"));
    // Each find case carries its call-log lines, with timestamps.
    let s12 = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "S12.2")
        .unwrap();
    let retried = s12["calls"].as_array().unwrap();
    assert!(
        retried.iter().filter(|c| c["status"] == 429).count() >= 2,
        "{s12}"
    );
    assert!(retried
        .iter()
        .all(|c| c["at"].as_str().is_some_and(|a| a.ends_with('Z'))));
    assert!(
        s12["ended"].as_str().unwrap().starts_with("failed: "),
        "{s12}"
    );

    // No token and no personal data in the evidence.
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    for text in [&html, &json] {
        assert!(!text.contains("eyJ"), "a JWT in the evidence");
        for m in people() {
            let nino = m.nino.clone().unwrap();
            assert!(!text.contains(&nino), "a NINO in the evidence");
            assert!(
                !text.contains(&m.date_of_birth),
                "a date of birth in the evidence"
            );
        }
    }
    render(&dir.path().join("report.html"), CASES.len()).await;
}

/// The selftest's members (`members generate --seed 2027`).
fn people() -> Vec<pdp_provider::members::record::MemberRecord> {
    let schemes = pdp_provider::members::generate::schemes(pdp_sim::selftest::runner::SEED);
    (0..pdp_sim::selftest::runner::MEMBERS)
        .map(|i| {
            pdp_provider::members::generate::member(pdp_sim::selftest::runner::SEED, i, &schemes)
        })
        .filter(|m| m.nino.is_some())
        .collect()
}

/// Opens the HTML evidence in headless Chromium: the summary table has a row per case, and
/// the screenshot goes to docs/selftest/report.png.
async fn render(html: &Path, cases: usize) {
    use fantoccini::Locator;
    let (_driver, c) = crate::console::chromium("").await;
    c.goto(&format!("file://{}", html.display())).await.unwrap();
    let rows = c.find_all(Locator::Css("#summary tr")).await.unwrap();
    assert_eq!(rows.len(), cases + 1, "a header row and one per case");
    let title = c
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, "PDP system test evidence");
    let result = c
        .find(Locator::XPath(
            "//dt[text()='Result']/following-sibling::dd[1]",
        ))
        .await
        .unwrap();
    assert_eq!(
        result.text().await.unwrap(),
        format!("{cases} of {cases} cases passed")
    );
    let png = c.screenshot().await.unwrap();
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/selftest/report.png");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(out, png).unwrap();
    c.close().await.unwrap();
}

#[test]
fn list_only_and_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args(["selftest", "--list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    for case in CASES {
        assert!(listed.contains(case.id) && listed.contains(case.title));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args(["selftest", "--only", "S99"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case S99"));
    let out = Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args(["selftest", "--oat"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--oat without --target");
}

#[tokio::test]
async fn a_budget_too_short_to_retry_and_an_open_access_list_fail_their_cases() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    // A whole configuration (its paths are replaced by the selftest's own). Retry-After is 2 to
    // 10 s: a 1.5 s budget leaves no retry. "*" admits any certificate the
    // ecosystem CA issued to the find endpoint, the dashboard's included.
    std::fs::write(
        &config,
        "[crypto]\ndata_key_file = \"replaced-by-the-selftest.key\"\n\
         [workers]\ncompletion_budget_ms = 1500\n[access]\nfind = [\"*\"]\n",
    )
    .unwrap();
    let only = "S1,S11.2,S12.2,S17.4";
    let (code, report, stdout) = selftest(
        dir.path(),
        &["--only", only, "--config", config.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{stdout}");
    let v = verdicts(&report);
    assert_eq!(verdict(&v, "S1").0, "pass", "{v:?}");
    for id in ["S11.2", "S12.2"] {
        let (result, why) = verdict(&v, id);
        assert_eq!(result, "fail");
        assert!(
            why.contains("was not called again (retryable)"),
            "{id}: {why}"
        );
    }
    let (result, why) = verdict(&v, "S17.4");
    assert_eq!(result, "fail");
    assert_eq!(why, "expected 403, got 202");
    assert!(
        stdout.contains("FAIL") && stdout.contains("1 of 4 cases passed"),
        "{stdout}"
    );
}

/// A stand-in endpoint: finds forwarded to the real one, views answered `200` at once, without
/// introspecting the RPT.
async fn stand_in(
    env: &Env,
    server: &Server,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use http_body_util::{BodyExt, Full};
    let tls = pdp_sim::tls::sim_tls(&env.dir.path().join("certs"));
    let acceptor =
        tokio_rustls::TlsAcceptor::from(pdp_provider::tls::server::server_config(&tls).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (pfs, find_url) = (env.pfs(), server.url("/find-requests"));
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, pfs, find_url) = (acceptor.clone(), pfs.clone(), find_url.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (pfs, find_url) = (pfs.clone(), find_url.clone());
                        async move {
                            let (status, body) = if req.uri().path() == "/find-requests" {
                                let id = req.headers().get("x-request-id").cloned();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let mut fwd = pfs
                                    .post(find_url)
                                    .header("content-type", "application/json")
                                    .body(body);
                                if let Some(id) = id {
                                    fwd = fwd.header("X-Request-ID", id);
                                }
                                let r = fwd.send().await.unwrap();
                                (r.status().as_u16(), r.bytes().await.unwrap())
                            } else {
                                (
                                    200,
                                    bytes::Bytes::from_static(
                                        b"{\"view_data_token\": \"served.without.introspection\"}",
                                    ),
                                )
                            };
                            let mut resp = hyper::Response::new(Full::new(body));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                // HTTP/1.1 or HTTP/2, as the endpoint's TLS config offers both.
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn views_served_without_introspection_fail_the_view_cases() {
    let env = Env::new();
    let store = env.open_store().await;
    let members = env.dir.path().join("selftest-members.jsonl");
    pdp_provider::members::generate::write_jsonl(
        std::fs::File::create(&members).unwrap(),
        pdp_sim::selftest::runner::MEMBERS,
        pdp_sim::selftest::runner::SEED,
    )
    .unwrap();
    pdp_provider::members::import::import_from_async(&members, &store, Default::default())
        .await
        .unwrap();
    store.close().await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    crate::harness::publish_jwks(&server, &cas).await;
    let (addr, task) = stand_in(&env, &server).await;
    let config = env.dir.path().join("serve.toml");
    std::fs::write(
        &config,
        env.serve_toml(&env.cert(files::DATA_KEY), &cas.base_url(), ""),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("https://127.0.0.1:{}", addr.port());
    let sim = format!("http://{}", cas.control_addr);
    let certs = env.dir.path().join("certs");
    let cas_url = cas.base_url();
    let args: Vec<String> = [
        "--only",
        "S1,S7,S8,S9.1,S17.3",
        "--target",
        &target,
        "--sim",
        &sim,
        "--cas",
        &cas_url,
        "--certs",
        certs.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    // The binary runs beside this test's runtime, which serves the CAS, the endpoint and the
    // stand-in meanwhile.
    let out = dir.path().to_owned();
    let (code, report, stdout) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        selftest(&out, &args)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{stdout}");
    let v = verdicts(&report);
    assert_eq!(verdict(&v, "S1").0, "pass", "{v:?}");
    assert_eq!(verdict(&v, "S17.3").0, "pass", "{v:?}");
    for id in ["S8", "S9.1"] {
        let (result, why) = verdict(&v, id);
        assert_eq!(result, "fail");
        assert!(why.ends_with("got 200: the view was served"), "{id}: {why}");
    }
    let (result, why) = verdict(&v, "S7");
    assert_eq!(result, "fail");
    assert!(
        why.contains("served without introspecting the RPT") || why.contains("token"),
        "{why}"
    );
    task.abort();
    server.stop().await;
}

#[tokio::test]
async fn the_oat_sends_one_synthetic_find_acked_and_nothing_registered() {
    let env = Env::new();
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--oat",
        "--target",
        &server.url(""),
        "--sim",
        &format!("http://{}", cas.control_addr),
        "--certs",
        env.dir.path().join("certs").to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    let out = dir.path().to_owned();
    let (code, report, stdout) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        selftest(&out, &args)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        verdicts(&report),
        [("O1".into(), "pass".into(), String::new())]
    );
    let o1 = &report["cases"][0];
    assert_eq!(o1["exchanges"].as_array().unwrap().len(), 1, "one find");
    assert_eq!(o1["exchanges"][0]["response"]["line"], "HTTP 202");
    assert!(cas.state.calls().is_empty(), "the CAS was called");
    server.stop().await;
}
