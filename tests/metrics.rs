//! Metrics after real traffic over sockets. Its own test binary, so that the process-wide
//! Prometheus recorder holds this test's requests only and counts can be exact.

#[path = "it/harness.rs"]
mod harness;

use harness::{cas_sim, post_find, Env, Server};
use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::tls::pki::files;

/// The value of the sample line that starts with `series` (name and labels, exactly).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{metrics}"))
}

/// The sum of a metric's samples over its label sets that contain every one of `labels`.
fn sum_over(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_and_the_sla_report_agrees() {
    let env = Env::new();
    let members = env.with_members(300).await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;

    // Before any traffic: every counter over a known label set is there at 0, so that
    // `increase()` sees its first event; and the process start time.
    let m = server.metrics().await;
    for series in [
        "pdp_sla_breaches_total{standard=\"CoCo2.1.1\"}",
        "pdp_sla_breaches_total{standard=\"CoCo2.1.2\"}",
        "pdp_sla_breaches_total{standard=\"CoCo2.1.3\"}",
        "pdp_finds_failed_total{reason=\"cas_unavailable\"}",
        "pdp_finds_failed_total{reason=\"budget_exhausted\"}",
        "pdp_finds_failed_total{reason=\"uat_no_sub\"}",
        "pdp_cas_retries_total{endpoint=\"POST /token\"}",
        "pdp_cas_retries_total{endpoint=\"POST /rreguri\"}",
        "pdp_cas_retries_total{endpoint=\"PATCH /rreguri\"}",
        "pdp_cas_retries_total{endpoint=\"DELETE /rreguri\"}",
        "pdp_audit_dropped_total",
        "pdp_tls_handshake_failures_total{reason=\"no_client_certificate\"}",
        "pdp_tls_handshake_failures_total{reason=\"untrusted_client_certificate\"}",
        "pdp_tls_handshake_failures_total{reason=\"protocol_version\"}",
        "pdp_tls_handshake_failures_total{reason=\"not_tls\"}",
        "pdp_tls_handshake_failures_total{reason=\"timeout\"}",
        "pdp_tls_handshake_failures_total{reason=\"other\"}",
    ] {
        assert_eq!(sample(&m, series), 0.0, "{series}");
    }
    let started = sample(&m, "process_start_time_seconds");
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    assert!(
        started > now - 600.0 && started <= now,
        "{started} vs {now}"
    );

    harness::publish_jwks(&server, &cas).await;
    let url = server.url("/find-requests");
    let with_nino: Vec<_> = members.iter().filter(|m| m.nino.is_some()).collect();
    let mut yes_ids = Vec::new();
    let mut pensions = 0;
    for m in with_nino.iter().take(5) {
        let id = uuid::Uuid::new_v4().to_string();
        post_find(&env.pfs(), &url, &id, &find_for(m, FindKind::Yes, &id)).await;
        pensions += m.pensions.len();
        yes_ids.push(id);
    }
    let mut no_ids = Vec::new();
    for m in with_nino.iter().skip(5).take(2) {
        let id = uuid::Uuid::new_v4().to_string();
        post_find(&env.pfs(), &url, &id, &find_for(m, FindKind::No, &id)).await;
        no_ids.push(id);
    }
    let bad = env
        .pfs()
        .post(&url)
        .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    for id in yes_ids.iter().chain(&no_ids) {
        env.ended(id).await;
    }
    let pei = &env.store().peis_for_request(&yes_ids[0]).await.unwrap()[0];
    let dashboard = pdp_sim::dashboard::Dashboard::new(
        &server.url(""),
        &cas.base_url(),
        &env.cert(files::CA),
        &env.cert(files::DASHBOARD),
        &env.cert(files::DASHBOARD_KEY),
    )
    .unwrap();
    assert_eq!(
        dashboard
            .view(&pei.matched.asset_guid.to_string())
            .await
            .unwrap()
            .retry_status,
        Some(200)
    );

    let m = server.metrics().await;
    assert_eq!(sample(&m, "pdp_find_requests_total{outcome=\"ack\"}"), 7.0);
    assert_eq!(
        sample(&m, "pdp_find_requests_total{outcome=\"invalid_json\"}"),
        1.0
    );
    assert_eq!(sample(&m, "pdp_find_ack_seconds_count"), 7.0);
    assert_eq!(
        sample(
            &m,
            "pdp_http_responses_total{endpoint=\"find\",status=\"202\"}"
        ),
        7.0
    );
    assert_eq!(
        sample(
            &m,
            "pdp_http_responses_total{endpoint=\"find\",status=\"400\"}"
        ),
        1.0
    );
    assert_eq!(sample(&m, "pdp_find_ack_seconds_bucket{le=\"2\"}"), 7.0);
    assert!(sample(&m, "pdp_find_ack_seconds_bucket{le=\"0.25\"}") <= 7.0);
    assert_eq!(
        sample(&m, "pdp_finds_completed_total{outcome=\"match-yes\"}"),
        5.0
    );
    assert_eq!(
        sample(&m, "pdp_finds_completed_total{outcome=\"no-match\"}"),
        2.0
    );
    // Completion is observed per holdername matched: each member here is in one scheme.
    assert_eq!(
        sum_over(&m, "pdp_find_completion_seconds_count", &["holdername=\""]),
        5.0
    );
    assert_eq!(
        sum_over(
            &m,
            "pdp_find_completion_seconds_bucket",
            &["holdername=\"", "le=\"60\""]
        ),
        5.0
    );
    assert_eq!(
        sample(&m, "pdp_peis_registered_total{match_status=\"match-yes\"}"),
        pensions as f64
    );
    assert_eq!(
        sample(
            &m,
            "pdp_cas_calls_total{endpoint=\"POST /token\",status=\"200\"}"
        ),
        5.0
    );
    // Views carry their PeI's holdername.
    let h = format!("holdername=\"{}\"", pei.matched.holdername);
    assert_eq!(
        sample(&m, &format!("pdp_views_total{{outcome=\"challenge\",{h}}}")),
        1.0
    );
    assert_eq!(
        sample(&m, &format!("pdp_views_total{{outcome=\"ok\",{h}}}")),
        1.0
    );
    // The challenge is timed apart: it does not flatter the latency of views served.
    assert_eq!(
        sample(
            &m,
            &format!("pdp_view_seconds_count{{outcome=\"challenge\",{h}}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            &format!("pdp_view_seconds_count{{outcome=\"served\",{h}}}")
        ),
        1.0
    );
    assert!(
        !m.contains("pdp_view_seconds_count "),
        "no unlabelled views"
    );
    assert_eq!(sample(&m, "pdp_find_queue_depth"), 0.0);
    // Base units: the test PKI's server certificate is good for more than 300 days.
    assert!(
        sample(&m, "pdp_certificate_expiry_seconds{certificate=\"server\"}") > 300.0 * 86_400.0
    );
    assert!(!m.contains("pdp_certificate_expiry_days"), "{m}");
    // One availability series, no label that changes every month; and this server, first
    // started a moment ago, has been up for all of the time it has been live.
    let m = loop {
        let m = server.metrics().await;
        if m.contains("pdp_availability_ratio") {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(sample(&m, "pdp_availability_ratio"), 1.0);
    assert!(!m.contains("pdp_availability_ratio{"), "{m}");
    for standard in ["CoCo2.1.1", "CoCo2.1.2", "CoCo2.1.3"] {
        let series = format!("pdp_sla_breaches_total{{standard=\"{standard}\"}}");
        assert_eq!(sample(&m, &series), 0.0, "no breach happened");
    }

    // The SLA report reads the same story from the audit trail.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let store = env.store();
    let report = loop {
        let r = pdp_provider::sla::report(&store, &month, pdp_provider::now_micros(), None)
            .await
            .unwrap();
        if r.counts.get("GET /view-data ok") == Some(&1) {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // One view: its challenge is half of it, not a second view.
    assert_eq!(report.view.count, 1);
    assert_eq!(report.counts["GET /view-data challenge"], 1);
    assert!(report.availability.met, "{}", report.table());
    assert_eq!(report.ack.count, 7);
    assert!(report.ack.met && report.view.met && report.completion.met);
    assert_eq!(report.completion.count, 5);
    assert_eq!(report.counts["POST /find-requests invalid_json"], 1);
    server.stop().await;
}
