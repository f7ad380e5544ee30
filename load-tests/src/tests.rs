//! Real runs: the CAS simulator and the endpoint in-process over loopback mTLS, then `run` for
//! 2 s at 50 finds/s following completion and calling views: a smoke run that passes, runs whose
//! views all fail for a known reason, and a run against nothing, each failure counted by reason.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use pdp_provider::config::Config;

const SEED: u64 = 11;
const MEMBERS: u64 = 200;

/// The CAS simulator and the endpoint, with `MEMBERS` members imported; the provider's JWK set
/// is not published at the CAS until [`Rig::publish_jwks`].
struct Rig {
    dir: tempfile::TempDir,
    certs: PathBuf,
    cas: pdp_sim::cas::CasSim,
    running: pdp_provider::app::Running,
}

// === impl Rig ===

impl Rig {
    async fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        pdp_provider::keys::init_dev(&certs).unwrap();
        let tls = pdp_sim::tls::sim_tls(&certs);
        let cas = pdp_sim::cas::CasSim::start(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            &tls,
        )
        .await
        .unwrap();

        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.ops_listen = "127.0.0.1:0".parse().unwrap();
        config.tls = tls;
        config.store.path = dir.path().join("pdp.sqlite");
        config.crypto.data_key_file = Some(certs.join(files::DATA_KEY));
        config.crypto.data_key_env = None;
        config.workers.max_in_flight = 2;
        config.workers.backoff_base_ms = 50;
        config.workers.backoff_cap_ms = 500;
        config.workers.poll_interval_ms = 100;
        config.cas.base_url = cas.base_url();
        config.cas.client_cert = certs.join(files::PROVIDER);
        config.cas.client_key = certs.join(files::PROVIDER_KEY);
        config.cas.ca = certs.join(files::CA);
        config.view.signing_key = certs.join(files::VIEW_SIGNING_KEY);

        let member_file = dir.path().join("members.jsonl");
        pdp_provider::members::generate::write_jsonl(
            std::fs::File::create(&member_file).unwrap(),
            MEMBERS,
            SEED,
        )
        .unwrap();
        {
            let key = pdp_provider::sealed::DataKey::load(&config.crypto).unwrap();
            let store = pdp_provider::store::Store::open(
                &config.store.path,
                key,
                pdp_provider::store::StoreLimits::default(),
            )
            .unwrap();
            let report = pdp_provider::members::import::import_from_async(
                &member_file,
                &store,
                Default::default(),
            )
            .await
            .unwrap();
            assert!(report.errors.is_empty());
            store.close().await;
        }
        let running = pdp_provider::app::start(config).await.unwrap();
        Rig {
            dir,
            certs,
            cas,
            running,
        }
    }

    /// Publishes the provider's JWK set at the CAS's `jwk_uri`, as PDP does at onboarding.
    fn publish_jwks(&self) {
        self.cas.state.publish_jwks(&self.running.jwks().unwrap());
    }

    /// 2 s at 50 finds/s, every matching find followed, then 2 s of views at 20/s.
    fn args(&self, name: &str) -> LoadArgs {
        LoadArgs {
            target: Some(format!("https://127.0.0.1:{}", self.running.addr.port())),
            certs: self.certs.clone(),
            rate: Some(50.0),
            duration: Some(2.0),
            connections: Some(2),
            member_count: Some(MEMBERS),
            seed: Some(SEED),
            follow_completion: true,
            completion_sample: Some(1.0),
            cas_control: Some(format!("http://{}", self.cas.control_addr)),
            view_rate: Some(20.0),
            cas_url: Some(self.cas.base_url()),
            out: Some(self.dir.path().join(name)),
            name: Some(name.into()),
            quiet: true,
            ..LoadArgs::default()
        }
    }

    async fn stop(self) {
        self.running.stop().await;
        self.cas.stop();
    }
}

/// What a run wrote: its exit code, `result.json` and `summary.md`.
struct Written {
    code: u8,
    result: serde_json::Value,
    summary: String,
}

// === impl Written ===

impl Written {
    fn main(&self) -> &serde_json::Value {
        &self.result["phases"][0]
    }
}

/// Runs `args` to its end and reads what it wrote.
async fn run_to_end(args: LoadArgs) -> Written {
    let out = args.out.clone().unwrap();
    // `run` is `run_until` plus a Ctrl-C handler, which would outlive the test.
    let code = run_until(args, CancellationToken::new()).await.unwrap();
    Written {
        code,
        result: serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap(),
        summary: std::fs::read_to_string(out.join("summary.md")).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_against_the_endpoint_and_cas_simulator() {
    let rig = Rig::start().await;
    rig.publish_jwks();
    let out = rig.dir.path().join("smoke");
    let started = Instant::now();
    let w = run_to_end(rig.args("smoke")).await;
    let took = started.elapsed();
    let (result, summary, main) = (&w.result, &w.summary, w.main());

    for plot in ["latency-over-time.svg", "percentiles.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.contains("<svg"), "{plot}");
    }
    assert_eq!(main["attempted"], 100, "{main:#}");
    assert!(main["acked"].as_u64().unwrap() > 0);
    assert_eq!(main["errors"], 0, "{main:#}");
    assert!(main["ack"]["count"].as_u64().unwrap() > 0);
    let completion = &main["completion"];
    assert!(
        completion["count"].as_u64().unwrap() > 0,
        "completions seen: {completion:#}"
    );
    assert_eq!(completion["missed"], 0, "{completion:#}");
    let views = &main["views"];
    assert!(views["count"].as_u64().unwrap() > 0, "{views:#}");
    assert_eq!(views["missed"], 0, "{views:#}");
    // Nothing failed, and the failures say so, stage by stage.
    assert_eq!(
        main["failures"],
        serde_json::json!({"find": {}, "completion": {}, "view": {}}),
        "{main:#}"
    );
    assert!(
        summary.contains("No find, completion or view failed."),
        "{summary}"
    );
    assert!(result["machine"]["nproc"].as_u64().unwrap() >= 1);
    assert_eq!(result["verdict"]["passed"], true, "{summary}");
    assert_eq!(w.code, 0, "{summary}");
    assert!(summary.contains("| main | ack |"), "{summary}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    rig.stop().await;
}

/// The views a run with `view_rate` 20/s for 2 s calls.
const VIEWS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_the_cas_cannot_verify_are_counted_by_reason() {
    let rig = Rig::start().await;

    // The CAS publishes no key of the provider's (a standalone simulator before it did):
    // every view's token names a kid that is not at `jwk_uri`.
    let w = run_to_end(rig.args("unpublished")).await;
    let main = w.main();
    assert_eq!(main["errors"], 0, "the finds are fine: {main:#}");
    assert_eq!(main["completion"]["missed"], 0, "{main:#}");
    assert_eq!(main["views"]["count"], 0, "{main:#}");
    assert_eq!(main["views"]["missed"], VIEWS, "{main:#}");
    assert_eq!(
        main["failures"],
        serde_json::json!({
            "find": {},
            "completion": {},
            "view": {"jws: kid not published": VIEWS},
        }),
        "{main:#}"
    );
    assert!(
        w.summary.contains(&format!(
            "| main | view | jws: kid not published | {VIEWS} |"
        )),
        "{}",
        w.summary
    );
    assert_eq!(w.result["verdict"]["passed"], false);
    assert_eq!(w.code, 1);

    // A key published under the provider's kid that is not the provider's: every signature
    // fails.
    let mut forged = pdp_sim::cas::provider_jwks(&other_pki(&rig), None)
        .unwrap()
        .unwrap();
    forged["keys"][0]["kid"] = rig.running.jwks().unwrap()["keys"][0]["kid"].clone();
    rig.cas.state.publish_jwks(&forged);
    let w = run_to_end(rig.args("forged")).await;
    let main = w.main();
    assert_eq!(main["views"]["missed"], VIEWS, "{main:#}");
    assert_eq!(
        main["failures"]["view"],
        serde_json::json!({"jws: bad signature": VIEWS}),
        "{main:#}"
    );
    assert_eq!(w.code, 1);

    rig.stop().await;
}

/// Another dev PKI, beside the rig's.
fn other_pki(rig: &Rig) -> PathBuf {
    let other = rig.dir.path().join("other-certs");
    pdp_provider::keys::init_dev(&other).unwrap();
    other
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_nobody_answers_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    pdp_provider::keys::init_dev(&certs).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = run_to_end(LoadArgs {
        target: Some(format!("https://127.0.0.1:{port}")),
        certs,
        rate: Some(20.0),
        duration: Some(1.0),
        member_count: Some(MEMBERS),
        out: Some(dir.path().join("refused")),
        name: Some("refused".into()),
        quiet: true,
        ..LoadArgs::default()
    })
    .await;
    let main = w.main();
    assert_eq!(main["attempted"], 20, "{main:#}");
    assert_eq!(main["errors"], 20, "{main:#}");
    assert_eq!(main["transport_errors"], serde_json::json!({"connect": 20}));
    assert_eq!(
        main["failures"],
        serde_json::json!({"find": {"connect: refused": 20}}),
        "{main:#}"
    );
    assert!(
        w.summary
            .contains("| main | find | connect: refused | 20 |"),
        "{}",
        w.summary
    );
    assert_eq!(w.code, 1);
}
