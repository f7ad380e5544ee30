//! The metrics as a real Prometheus reads them, checked by Prometheus' own `promtool`.
//!
//! A server takes a few finds and a view over real sockets; its `/metrics` scrape must pass
//! `promtool check metrics` (help texts, base units, counter suffixes), and every expression of
//! `dashboards/grafana.json` must parse (`promtool check rules`, each expression a recording
//! rule) and name only metrics the server exports. Every `pdp_*` metric the alerting rules
//! (`deploy/prometheus/alerts.yml`) select must be exported with each label the rules match on
//! it or group by, and with the value of each `=` matcher (a bucket bound, an outcome): a rule
//! over a series that never exists is an alert that never fires.
//!
//! A real Prometheus server loads the rules file as it is and evaluates every rule without error.
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

/// Labels Prometheus adds to every series it scrapes (the target's), never the endpoint.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// A label matcher: label, operator (`=`, `!=`, `=~`, `!~`), value.
type Matcher = (String, String, String);

/// Where the quoted string that opens at `b[i]` ends (the index after its closing quote).
fn after_quoted(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() && b[j] != q {
        j += if b[j] == b'\\' { 2 } else { 1 };
    }
    j + 1
}

/// The matchers of a selector's braces, `b[i]` just after its `{`; and the index after `}`.
fn matchers(expr: &str, mut i: usize) -> (Vec<Matcher>, usize) {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\n') {
            i += 1;
        }
        if i >= b.len() || b[i] == b'}' {
            return (out, i + 1);
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let label = expr[start..i].to_owned();
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let op_start = i;
        while i < b.len() && matches!(b[i], b'=' | b'!' | b'~') {
            i += 1;
        }
        let op = expr[op_start..i].to_owned();
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        assert!(
            i < b.len() && matches!(b[i], b'"' | b'\'' | b'`'),
            "a matcher without a quoted value in {expr:?}"
        );
        let end = after_quoted(b, i);
        out.push((label, op, expr[i + 1..end - 1].to_owned()));
        i = end;
    }
}

/// What an expression selects, and the labels it groups or matches on.
#[derive(Debug, Default, PartialEq, Eq)]
struct Selects {
    /// Each metric selected, with its matchers (a metric selected twice, twice).
    selectors: Vec<(String, Vec<Matcher>)>,
    /// Labels of `by`, `on`, `ignoring`, `group_left` and `group_right` lists.
    grouping: BTreeSet<String>,
}

/// The selectors and grouping labels of a PromQL expression (strings, range brackets and
/// `without` lists skipped; function calls and keywords are not metrics).
fn selects(expr: &str) -> Selects {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = Selects::default();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = after_quoted(b, i);
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'{' {
            // A selector by matchers alone (`{__name__=~"..."}`): no metric name to check.
            i = matchers(expr, i + 1).1;
        } else if c == b'[' {
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
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
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let call = j < b.len() && b[j] == b'(';
            if call
                && matches!(
                    word,
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                )
            {
                let close = j + expr[j..].find(')').expect("a closed label list");
                if word != "without" {
                    out.grouping.extend(
                        expr[j + 1..close]
                            .split(',')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(String::from),
                    );
                }
                i = close + 1;
            } else if !call && !KEYWORDS.contains(&word) {
                let (m, end) = if j < b.len() && b[j] == b'{' {
                    matchers(expr, j + 1)
                } else {
                    (Vec::new(), i)
                };
                out.selectors.push((word.to_owned(), m));
                i = end;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every `expr` of a Prometheus rules file, with the rule (`record` or `alert`) it belongs to.
///
/// A reader for the YAML rule files are written in: `expr:` as a block scalar (`|`, `>`, with
/// chomping indicators) or on one line (plain, single- or double-quoted). It fails on a rule it
/// cannot pair with one expression, so a rule it misread cannot pass unchecked.
fn rule_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let key = |l: &str, k: &str| {
        let t = l.trim_start().trim_start_matches("- ");
        t.strip_prefix(k)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    };
    let mut out = Vec::new();
    let mut rule: Option<String> = None;
    let mut rules = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(name) = key(line, "record").or_else(|| key(line, "alert")) {
            rules += 1;
            rule = Some(name);
        }
        let Some(value) = key(line, "expr") else {
            i += 1;
            continue;
        };
        let at = indent(line) + usize::from(line.trim_start().starts_with("- ")) * 2;
        let mut body = Vec::new();
        let block = value.starts_with('|') || value.starts_with('>');
        if !block {
            body.push(match value.chars().next() {
                Some('"') => {
                    serde_json::from_str::<String>(&value).expect("a YAML double-quoted expr")
                }
                Some('\'') => value[1..value.len() - 1].replace("''", "'"),
                _ => value.split(" #").next().unwrap_or_default().to_owned(),
            });
        }
        i += 1;
        while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > at) {
            body.push(lines[i].trim().to_owned());
            i += 1;
        }
        let name = rule
            .take()
            .expect("every expr belongs to a record or an alert");
        out.push((name, body.join("\n")));
    }
    assert_eq!(out.len(), rules, "one expr for each record and alert");
    out
}

/// Each exported series' name with its labels and their values.
fn exported_series(scrape: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for line in scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name_end = line.find(['{', ' ']).expect("a sample has a name");
        let name = line[..name_end].to_owned();
        let mut labels = Vec::new();
        if line.as_bytes()[name_end] == b'{' {
            let (m, _) = matchers(line, name_end + 1);
            labels = m.into_iter().map(|(l, _, v)| (l, v)).collect();
        }
        out.push((name, labels));
    }
    out
}

/// What the alerting rules select that the scrape lacks: each `pdp_*` metric, each label it is
/// matched on or the rule groups by, each value of an `=` matcher. Labels Prometheus adds
/// ([`TARGET_LABELS`]) and recorded series (`pdp:…`) are not the endpoint's.
fn missing_from_scrape(rules: &[(String, String)], scrape: &str) -> Vec<String> {
    let series = exported_series(scrape);
    let labels_of = |name: &str| -> BTreeSet<&str> {
        series
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, l)| l.iter().map(|(k, _)| k.as_str()))
            .collect()
    };
    let mut missing = Vec::new();
    for (rule, expr) in rules {
        let s = selects(expr);
        let ours: Vec<_> = s
            .selectors
            .iter()
            .filter(|(n, _)| n.starts_with("pdp_"))
            .collect();
        for (name, matchers) in &ours {
            if !series.iter().any(|(n, _)| n == name) {
                missing.push(format!("{rule}: {name}"));
                continue;
            }
            for (label, op, value) in matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                let has = |l: &[(String, String)]| {
                    l.iter()
                        .any(|(k, v)| k == label && (op != "=" || v == value))
                };
                if !series.iter().any(|(n, l)| n == name && has(l)) {
                    let what = if op == "=" {
                        format!("{label}={value:?}")
                    } else {
                        label.clone()
                    };
                    missing.push(format!("{rule}: {name}{{{what}}}"));
                }
            }
        }
        for label in s
            .grouping
            .iter()
            .filter(|l| !TARGET_LABELS.contains(&l.as_str()))
        {
            if !ours.is_empty()
                && !ours
                    .iter()
                    .any(|(n, _)| labels_of(n).contains(label.as_str()))
            {
                missing.push(format!(
                    "{rule}: a label {label} on any of its pdp_ metrics"
                ));
            }
        }
    }
    missing
}

/// The alerting rules shipped with the project.
fn alert_rules() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yml");
    let yaml = std::fs::read_to_string(path).expect("deploy/prometheus/alerts.yml is readable");
    rule_exprs(&yaml)
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
/// are counts unless named `_seconds` or `_ratio` (or recorded as `level:metric:ratio_…`).
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
    } else if all("_ratio") || (!names.is_empty() && names.iter().all(|n| n.contains(":ratio"))) {
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
        ("1 - level:a_errors:ratio_rate5m", Ratio),
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

#[test]
fn selectors_matchers_and_grouping_labels_are_found_in_expressions() {
    let s = selects(
        "sum by (report) (increase(pdp_a_total{outcome=\"refused\", x =~ 'b|c'}[1d])) > 0\n\
         # a comment naming pdp_not_a_metric\n\
         and on (instance, job) max without (le) (pdp_b) / ignoring(y) {__name__=\"z\"}",
    );
    let m = |l: &str, o: &str, v: &str| (l.to_owned(), o.to_owned(), v.to_owned());
    assert_eq!(
        s.selectors,
        [
            (
                "pdp_a_total".to_owned(),
                vec![m("outcome", "=", "refused"), m("x", "=~", "b|c")]
            ),
            ("pdp_b".to_owned(), vec![]),
        ]
    );
    assert_eq!(
        s.grouping,
        ["instance", "job", "report", "y"].map(String::from).into()
    );
}

#[test]
fn rule_exprs_are_read_from_block_and_inline_scalars_and_checked_against_a_scrape() {
    let yaml = "groups:\n  - name: g\n    rules:\n      - record: r:x\n        expr: |\n          \
                sum by (endpoint) (\n            rate(pdp_x_total{status=\"0\"}[5m])\n          )\n\n      \
                - alert: A\n        expr: pdp_up_gauge == 0 # down\n        for: 1m\n      \
                - alert: B\n        expr: \"pdp_q{le=\\\"2\\\"} > 1\"\n        labels:\n          severity: page\n";
    let rules = rule_exprs(yaml);
    assert_eq!(
        rules,
        [
            (
                "r:x".to_owned(),
                "sum by (endpoint) (\nrate(pdp_x_total{status=\"0\"}[5m])\n)\n".to_owned()
            ),
            ("A".to_owned(), "pdp_up_gauge == 0".to_owned()),
            ("B".to_owned(), "pdp_q{le=\"2\"} > 1".to_owned()),
        ]
    );
    let scrape =
        "# TYPE pdp_x_total counter\npdp_x_total{endpoint=\"POST /token\",status=\"0\"} 0\n\
                  pdp_up_gauge 1\npdp_q{le=\"5\"} 3\n";
    assert_eq!(missing_from_scrape(&rules, scrape), ["B: pdp_q{le=\"2\"}"]);
    let scrape = "pdp_x_total{status=\"1\"} 0\n";
    assert_eq!(
        missing_from_scrape(&rules, scrape),
        [
            "r:x: pdp_x_total{status=\"0\"}",
            "r:x: a label endpoint on any of its pdp_ metrics",
            "A: pdp_up_gauge",
            "B: pdp_q",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_scrape_and_every_dashboard_expression() {
    let tool = promtool();

    // A few finds, matching and not, one refused, and a view with its challenge.
    let env = Env::new();
    let members = env.with_members(50).await;
    let cas = cas_sim(&env).await;
    let mut config = env.config_with_cas(&cas);
    // Backups on, so that their gauges (which the backup alert reads) are exported.
    config.backup.directory = Some(env.dir.path().join("backups"));
    let server = Server::start(config).await;
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

    // The upkeep's, the member poll's and the reporting run's gauges arrive on their first
    // ticks, the completions as the finds end: scraped until every series the rules select is
    // there, for at most 30 s (then the assertion below names what is missing).
    let rules = alert_rules();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let scrape = loop {
        let m = server.metrics().await;
        let ready = m.contains("pdp_availability_ratio") && m.contains("pdp_certificate_expiry");
        if ready
            && (missing_from_scrape(&rules, &m).is_empty()
                || tokio::time::Instant::now() > deadline)
        {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    server.stop().await;

    // Every metric the alerting rules select, with their labels.
    let missing = missing_from_scrape(&rules, &scrape);
    assert!(
        missing.is_empty(),
        "deploy/prometheus/alerts.yml selects what the endpoint does not export: {missing:#?}\n\
         scrape:\n{scrape}"
    );
    let selected: BTreeSet<String> = rules
        .iter()
        .flat_map(|(_, e)| selects(e).selectors.into_iter().map(|(n, _)| n))
        .filter(|n| n.starts_with("pdp_"))
        .collect();
    println!(
        "alerts.yml: {} rules, {} pdp_ series, all exported",
        rules.len(),
        selected.len()
    );

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

    // And names only what the server exports, what the rules record, and Prometheus' ALERTS.
    let have = exported(&scrape);
    let recorded: BTreeSet<String> = alert_rules().into_iter().map(|(n, _)| n).collect();
    let missing: Vec<String> = exprs
        .iter()
        .flat_map(|(title, expr)| {
            metric_names(expr)
                .into_iter()
                .filter(|n| !have.contains(n) && !recorded.contains(n) && n != "ALERTS")
                .map(move |n| format!("{n} (panel {title:?})"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard names metrics the server does not export: {missing:?}\nexported: {have:?}"
    );
}

/// A file of `deploy/prometheus/`.
fn rules_file(name: &str) -> String {
    format!("{}/deploy/prometheus/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Each alert of the rules file with its text, from its `- alert:` line to the next rule.
fn alert_blocks() -> Vec<(String, String)> {
    let yaml = std::fs::read_to_string(rules_file("alerts.yml")).unwrap();
    yaml.split("\n      - ")
        .filter_map(|rule| {
            let name = rule.strip_prefix("alert: ")?.lines().next()?.trim();
            Some((name.to_owned(), rule.to_owned()))
        })
        .collect()
}

#[test]
fn promtool_checks_the_alerting_rules() {
    let file = rules_file("alerts.yml");
    let (code, out) = run_promtool(&["check", "rules", &file], "");
    assert_eq!(code, 0, "promtool check rules {file}:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_unit_tests_of_the_alerting_rules_pass() {
    let file = rules_file("alerts.test.yml");
    let (code, out) = run_promtool(&["test", "rules", &file], "");
    assert_eq!(code, 0, "promtool test rules {file}:\n{out}");
}

#[test]
fn every_alert_has_a_severity_a_coco_clause_a_runbook_and_tests_that_fire_it_and_not() {
    let alerts = alert_blocks();
    assert!(
        alerts.len() >= 20,
        "the rules file has its alerts: {alerts:?}"
    );
    let tests = std::fs::read_to_string(rules_file("alerts.test.yml")).unwrap();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (name, rule) in &alerts {
        assert!(
            rule.contains("severity: page") || rule.contains("severity: ticket"),
            "{name}: a severity"
        );
        assert!(rule.contains("summary: "), "{name}: a summary");
        let description = rule.split("description:").nth(1).unwrap_or_default();
        assert!(
            description.contains("CoCo") || description.contains("Regulation 28(3)"),
            "{name}: its CoCo clause (or the regulation, for reporting)"
        );
        let runbook = format!("docs/runbooks/{name}.md");
        assert!(
            rule.contains(&format!("runbook_url: \"{runbook}\"")),
            "{name}: runbook_url"
        );
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(&runbook)
                .is_file(),
            "{name}: {runbook} exists"
        );
        // Each `alertname:` of the unit tests is followed by what is expected of it.
        let expected: Vec<&str> = lines
            .windows(3)
            .filter(|w| w[0] == format!("alertname: {name}"))
            .map(|w| {
                if w[1] == "exp_alerts: []" {
                    "silent"
                } else {
                    w[2]
                }
            })
            .collect();
        assert!(
            expected.contains(&"silent"),
            "{name}: a run that keeps it silent"
        );
        assert!(
            expected.iter().any(|e| e.starts_with("- exp_labels:")),
            "{name}: a run that fires it"
        );
    }
}

#[test]
fn the_dashboard_draws_the_rules_recorded_series_and_the_alerts_states() {
    let recorded: BTreeSet<String> = alert_rules()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.contains(':'))
        .collect();
    let exprs = dashboard_exprs();
    for (title, expr) in &exprs {
        for n in metric_names(expr).iter().filter(|n| n.contains(':')) {
            assert!(
                recorded.contains(n),
                "{title}: {n} is not recorded by alerts.yml"
            );
        }
    }
    // Each service level's panel draws the error ratio its alerts fire on, with its line.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/grafana.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (series, line) in [
        ("pdp:find_ack_errors:ratio_rate", 0.999),
        ("pdp:find_registration_errors:ratio_rate", 0.999),
        ("pdp:view_errors:ratio_rate", 0.999),
        ("pdp:availability_errors:ratio_rate", 0.995),
    ] {
        let panel = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["expr"].as_str().unwrap().contains(series))
            })
            .unwrap_or_else(|| panic!("no panel draws {series}"));
        let steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap();
        assert!(
            steps.iter().any(|s| s["value"] == line),
            "{series}: a threshold line at {line}"
        );
    }
    assert!(
        exprs
            .iter()
            .any(|(_, e)| e.contains("ALERTS{alertname=~\"Pdp.*\"")),
        "a panel shows the alerts' states"
    );
}

/// `prometheus` beside `promtool` (Debian's package ships both).
fn prometheus_server() -> PathBuf {
    promtool().with_file_name("prometheus")
}

/// A plain HTTP GET of `path` on `127.0.0.1:port`: the body, or `None` while nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// Stops the Prometheus server a test started, whatever the test's outcome.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_prometheus_loads_the_rules_as_they_are_and_evaluates_them_without_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files:\n  - {}\n",
            rules_file("alerts.yml")
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(prometheus_server())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .expect("starting prometheus (Debian's prometheus package)");
    let _running = Running(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let rules = loop {
        // Every rule evaluated at least once: none is left without a health.
        let body = http_get(port, "/api/v1/rules").unwrap_or_default();
        if body.contains("\"status\":\"success\"") && !body.contains("\"health\":\"unknown\"") {
            break body;
        }
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus did not load and evaluate the rules in 60 s:\n{body}\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for group in ["pdp-sla-recording", "pdp-sla-alerts", "pdp-silent-failures"] {
        assert!(
            rules.contains(&format!("\"name\":\"{group}\"")),
            "{group}: {rules}"
        );
    }
    let alerts = alert_blocks().len();
    let count = |kind: &str| rules.matches(&format!("\"type\":\"{kind}\"")).count();
    assert_eq!(count("alerting"), alerts, "{rules}");
    assert!(count("recording") > 0, "{rules}");
    assert!(
        !rules.contains("\"health\":\"err\""),
        "a rule failed to evaluate: {rules}"
    );
}
