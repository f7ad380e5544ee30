//! A real smoke run: the CAS simulator and the endpoint in-process over loopback mTLS, then
//! `run` for 2 s at 50 finds/s following completion.

use std::time::{Duration, Instant};

use super::*;
use crate::config::Config;

const SEED: u64 = 11;
const MEMBERS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_against_the_endpoint_and_cas_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    crate::tls::pki::init(&certs).unwrap();
    let tls = crate::demo::sim_tls(&certs);
    let cas = crate::sim::cas::CasSim::start(
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
    crate::members::generate::write_jsonl(
        std::fs::File::create(&member_file).unwrap(),
        MEMBERS,
        SEED,
    )
    .unwrap();
    {
        let key = crate::store::sealed::DataKey::load(&config.crypto).unwrap();
        let store = crate::store::Store::open(
            &config.store.path,
            key,
            crate::store::StoreLimits::default(),
        )
        .unwrap();
        let report =
            crate::members::import::import_from_async(&member_file, &store, Default::default())
                .await
                .unwrap();
        assert!(report.errors.is_empty());
        store.close().await;
    }
    let running = crate::app::start(config).await.unwrap();
    cas.state.publish_jwks(&running.jwks().unwrap());

    let out = dir.path().join("out");
    let args = LoadArgs {
        target: Some(format!("https://127.0.0.1:{}", running.addr.port())),
        certs: certs.clone(),
        rate: Some(50.0),
        duration: Some(2.0),
        connections: Some(2),
        member_count: Some(MEMBERS),
        seed: Some(SEED),
        follow_completion: true,
        completion_sample: Some(1.0),
        cas_control: Some(format!("http://{}", cas.control_addr)),
        view_rate: Some(20.0),
        cas_url: Some(cas.base_url()),
        out: Some(out.clone()),
        name: Some("smoke".into()),
        quiet: true,
        ..LoadArgs::default()
    };
    let started = Instant::now();
    // `run` is `run_until` plus a Ctrl-C handler, which would outlive the test.
    let code = run_until(args, CancellationToken::new()).await.unwrap();
    let took = started.elapsed();

    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for plot in ["latency-over-time.svg", "percentiles.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.contains("<svg"), "{plot}");
    }
    let main = &result["phases"][0];
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
    assert!(result["machine"]["nproc"].as_u64().unwrap() >= 1);
    assert_eq!(result["verdict"]["passed"], true, "{summary}");
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains("| main | ack |"), "{summary}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    running.stop().await;
    cas.stop();
}
