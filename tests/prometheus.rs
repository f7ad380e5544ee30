//! The metrics as a real Prometheus reads them, checked by Prometheus' own `promtool`.
//!
//! A server takes a few finds and a view over real sockets; its `/metrics` scrape must pass
//! `promtool check metrics` (help texts, base units, counter suffixes), and every expression of
//! `dashboards/grafana.json` must parse (`promtool check rules`, each expression a recording
//! rule) and name only metrics the server exports.
//!
//! `promtool` comes with Debian's `prometheus` package; `.ci/run` installs it. This test never
//! skips: without `promtool` it fails and says how to get it.
//!
//! Its own test binary, so that the process-wide recorder holds this test's traffic only.

#[path = "it/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use harness::{cas_sim, post_find, Env, Server};
use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::tls::pki::files;

/// `promtool` from `PATH`, or a failure that says how to install it.
fn promtool() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "promtool not found on PATH: run .ci/run (it installs it), or \
                 `apt-get update && apt-get install -y prometheus` (Debian's package ships \
                 /usr/bin/promtool)"
            )
        })
}

/// Runs `promtool args…` with `stdin`; returns its exit code and its stdout and stderr.
fn run_promtool(args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("promtool reads stdin");
    let out = child.wait_with_output().expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Every PromQL expression of the dashboard, with the panel it belongs to.
fn dashboard_exprs() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/grafana.json");
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .expect("dashboards/grafana.json is JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has an expr");
            // Grafana's own variables, as Grafana would substitute them.
            let expr = ["$__rate_interval", "$__interval", "$__range"]
                .iter()
                .fold(expr.to_owned(), |e, v| e.replace(v, "5m"))
                // The dashboard's own variable, as Grafana substitutes "All".
                .replace("$holdername", ".*");
            out.push((p["title"].as_str().unwrap_or("?").to_owned(), expr));
        }
    }
    out
}

/// PromQL words that are not metric names.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names an expression selects: identifiers outside strings, label matchers, range
/// brackets and `by (…)`-style label lists, that are neither function calls nor keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let skip_to = |mut i: usize, close: u8| {
        while i < b.len() && b[i] != close {
            if b[i] == b'"' || b[i] == b'\'' {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i + 1
    };
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_to(i + 1, c);
        } else if c == b'{' {
            i = skip_to(i + 1, b'}');
        } else if c == b'[' {
            i = skip_to(i + 1, b']');
        } else if c.is_ascii_digit() || c == b'.' {
            while i < b.len() && (ident(b[i]) || b[i] == b'.') {
                i += 1;
            }
        } else if ident(c) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let call = j < b.len() && b[j] == b'(';
            let label_list = matches!(
                word,
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            );
            if label_list && call {
                i = skip_to(j + 1, b')');
            } else if !call && !KEYWORDS.contains(&word) {
                names.insert(word.to_owned());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The sample names of a scrape (histograms' `_bucket`, `_sum` and `_count` included).
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split(['{', ' '])
                .next()
                .expect("a sample has a name")
                .to_owned()
        })
        .collect()
}

/// What an expression's values are, as far as a y-axis is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Seconds,
    PerSecond,
    Ratio,
    Count,
}

/// The measure of an expression: quantiles and means of a histogram take its unit; a
/// `rate()` alone is per second; another division is a ratio; `increase()` and plain gauges
/// are counts unless named `_seconds` or `_ratio`.
fn measure(expr: &str) -> Measure {
    let names = metric_names(expr);
    let all = |suffix: &str| !names.is_empty() && names.iter().all(|n| n.ends_with(suffix));
    if expr.contains("histogram_quantile(") {
        if all("_seconds_bucket") {
            Measure::Seconds
        } else {
            Measure::Count
        }
    } else if expr.contains(" / ") {
        if names.iter().any(|n| n.ends_with("_seconds_sum")) {
            Measure::Seconds
        } else if names.iter().any(|n| n.ends_with("_sum")) {
            Measure::Count
        } else {
            Measure::Ratio
        }
    } else if expr.contains("rate(") {
        Measure::PerSecond
    } else if expr.contains("increase(") {
        Measure::Count
    } else if all("_seconds") {
        Measure::Seconds
    } else if all("_ratio") {
        Measure::Ratio
    } else {
        Measure::Count
    }
}

/// The measure a Grafana unit shows.
fn unit_measure(unit: &str) -> Option<Measure> {
    match unit {
        "s" => Some(Measure::Seconds),
        "reqps" | "cps" | "ops" => Some(Measure::PerSecond),
        "percentunit" => Some(Measure::Ratio),
        "short" | "none" => Some(Measure::Count),
        _ => None,
    }
}

#[test]
fn the_dashboard_imports_with_a_data_source_choice_one_unit_a_panel_and_visible_thresholds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/grafana.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();

    // Grafana's import dialog offers a choice for each `__inputs` data source, and substitutes
    // it wherever `${NAME}` appears.
    let inputs = d["__inputs"].as_array().expect("__inputs");
    let ds = inputs
        .iter()
        .find(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus")
        .expect("a Prometheus data source input");
    let uid = format!("${{{}}}", ds["name"].as_str().unwrap());

    let panels = d["panels"].as_array().unwrap();
    let mut every_expr = String::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], uid.as_str(), "{title}");
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        let defaults = &p["fieldConfig"]["defaults"];
        let unit = defaults["unit"].as_str().unwrap_or("");
        let want = unit_measure(unit)
            .unwrap_or_else(|| panic!("{title}: unit {unit:?} is not a base unit"));
        // One unit a panel: no override gives a query another.
        for o in p["fieldConfig"]["overrides"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let props = o["properties"].as_array().into_iter().flatten();
            assert!(
                props.clone().all(|x| x["id"] != "unit"),
                "{title}: an override changes the unit"
            );
        }
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            assert_eq!(measure(expr), want, "{title}: {expr} shown as {unit}");
            every_expr.push_str(expr);
            every_expr.push('\n');
        }
        // A threshold drawn in one colour is invisible.
        let steps = defaults["thresholds"]["steps"].as_array().unwrap();
        let drawn = defaults["custom"]["thresholdsStyle"]["mode"] != "off";
        if drawn {
            let colours: BTreeSet<&str> =
                steps.iter().map(|s| s["color"].as_str().unwrap()).collect();
            assert!(colours.len() > 1, "{title}: thresholds all {colours:?}");
        }
        // Where higher is better, below the line is red.
        if ["Share of ACKs", "Availability", "Certificate"]
            .iter()
            .any(|t| title.starts_with(t))
        {
            assert!(drawn, "{title}: thresholds shown");
            assert_eq!(steps[0]["color"], "red", "{title}: a red base step");
            assert!(steps[0]["value"].is_null(), "{title}");
        }
    }
    if let Some(t) = panels
        .iter()
        .find(|p| p["title"].as_str().unwrap().starts_with("Availability"))
    {
        let steps = &t["fieldConfig"]["defaults"]["thresholds"]["steps"];
        assert_eq!(steps[1]["value"], 0.995, "CoCo2.1.5");
    }
    // The panels an operator needs beside the service levels.
    for (what, needle) in [
        (
            "the error rate",
            "pdp_http_responses_total{status=~\"5..\"}",
        ),
        (
            "views by outcome",
            "sum by (outcome) (rate(pdp_view_seconds_count",
        ),
        ("open connections", "pdp_open_connections"),
        ("TLS refusals", "pdp_tls_handshake_failures_total"),
        ("dropped audit records", "pdp_audit_dropped_total"),
        ("availability", "pdp_availability_ratio"),
        ("certificates", "pdp_certificate_expiry_seconds"),
    ] {
        assert!(every_expr.contains(needle), "no panel shows {what}");
    }
}

#[test]
fn measures_follow_the_expression() {
    use Measure::*;
    for (expr, m) in [
        (
            "histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket[5m])))",
            Seconds,
        ),
        ("sum by (e) (rate(a_total[5m]))", PerSecond),
        (
            "sum(rate(a_bucket{le=\"2\"}[5m])) / sum(rate(a_count[5m]))",
            Ratio,
        ),
        (
            "sum(rate(a_records_sum[5m])) / sum(rate(a_records_count[5m]))",
            Count,
        ),
        ("increase(a_total[1h])", Count),
        ("a_expiry_seconds", Seconds),
        ("a_ratio", Ratio),
        ("a_depth", Count),
    ] {
        assert_eq!(measure(expr), m, "{expr}");
    }
}

#[test]
fn metric_names_are_found_in_expressions() {
    let names = metric_names(
        "sum by (le, endpoint) (rate(pdp_x_bucket{le=\"2\",a=~\"b.*\"}[5m])) / \
         ignoring(x) group_left(y) max without (z) (pdp_y) > bool 0.5e3 or on() vector(1)",
    );
    assert_eq!(names, ["pdp_x_bucket", "pdp_y"].map(String::from).into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_scrape_and_every_dashboard_expression() {
    let tool = promtool();

    // A few finds, matching and not, one refused, and a view with its challenge.
    let env = Env::new();
    let members = env.with_members(50).await;
    let cas = cas_sim(&env).await;
    let server = Server::start(env.config_with_cas(&cas)).await;
    harness::publish_jwks(&server, &cas).await;
    let url = server.url("/find-requests");
    let with_nino: Vec<_> = members.iter().filter(|m| m.nino.is_some()).collect();
    let mut ids = Vec::new();
    for (m, kind) in with_nino
        .iter()
        .zip([FindKind::Yes, FindKind::Yes, FindKind::No])
    {
        let id = uuid::Uuid::new_v4().to_string();
        post_find(&env.pfs(), &url, &id, &find_for(m, kind, &id)).await;
        ids.push(id);
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
    for id in &ids {
        env.ended(id).await;
    }
    let pei = &env.store().peis_for_request(&ids[0]).await.unwrap()[0];
    let dashboard = pdp_sim::dashboard::Dashboard::new(
        &server.url(""),
        &cas.base_url(),
        &env.cert(files::CA),
        &env.cert(files::DASHBOARD),
        &env.cert(files::DASHBOARD_KEY),
    )
    .unwrap();
    let view = dashboard
        .view(&pei.matched.asset_guid.to_string())
        .await
        .unwrap();
    assert_eq!(view.retry_status, Some(200));

    // The upkeep's gauges arrive on its first tick.
    let scrape = loop {
        let m = server.metrics().await;
        if m.contains("pdp_availability_ratio") && m.contains("pdp_certificate_expiry") {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    server.stop().await;

    let (code, out) = run_promtool(&["check", "metrics"], &scrape);
    assert_eq!(
        code, 0,
        "promtool check metrics (exit {code}):\n{out}\nscrape:\n{scrape}"
    );
    println!("promtool check metrics: exit 0 {out}");

    // Each expression becomes a recording rule, so that promtool parses it.
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 12, "the dashboard has its panels");
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for (i, (_, expr)) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grafana-rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new(&tool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}\nrules:\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // And names only what the server exports.
    let have = exported(&scrape);
    let missing: Vec<String> = exprs
        .iter()
        .flat_map(|(title, expr)| {
            metric_names(expr)
                .into_iter()
                .filter(|n| !have.contains(n))
                .map(move |n| format!("{n} (panel {title:?})"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard names metrics the server does not export: {missing:?}\nexported: {have:?}"
    );
}
