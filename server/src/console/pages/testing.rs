//! The load tool's recorded runs ([`Action::Testing`](crate::console::roles::Action)): each
//! `result.json` below `console.load_results_dir`, newest first: what ran, against what, how
//! fast, and its verdict against the CoCo limits. Runs are started with `pdp-provider load`
//! against a test environment and the simulators, never from here against the live endpoint.

use std::path::Path;

use crate::console::page::Page;
use crate::console::respond::Resp;
use crate::console::ConsoleError;

/// The runs, newest first.
pub(crate) async fn runs(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let dir = p.console.config.console.load_results_dir.clone();
    let mut runs = crate::store::blocking(move || Ok(load_runs(&dir))).await?;
    runs.sort_by(|a, b| b[0].cmp(&a[0]));
    p.table(
        "/testing",
        "Load and simulator runs",
        "Runs recorded by `pdp-provider load` (against a test environment with `pdp-provider sim cas`; see load-tests/README.md), newest first. Each verdict checks ACK, completion and view latencies against the CoCo limits and the error rate.",
        &["Started", "Scenario", "Target", "Finds/s achieved", "Verdict", "Failed checks", "Result"],
        runs,
        "No run recorded in console.load_results_dir.",
        None,
    )
}

/// The rows of the load tool's `result.json` files below `dir` (three levels at most); files
/// that are not such results are passed over.
fn load_runs(dir: &Path) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && depth < 3 {
                stack.push((path, depth + 1));
            } else if path.file_name().is_some_and(|n| n == "result.json") {
                out.extend(load_run(&path));
            }
        }
    }
    out
}

/// One run's row: started, scenario, target, the rate each phase achieved, the verdict, how
/// many checks failed, the file.
fn load_run(path: &Path) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let rates: Vec<String> = v["phases"]
        .as_array()?
        .iter()
        .map(|p| {
            format!(
                "{} {:.0}",
                p["name"].as_str().unwrap_or("?"),
                p["achieved_rate"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    let failed = v["verdict"]["checks"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c["passed"] == false).count());
    Some(vec![
        v["started_at"].as_str()?.to_owned(),
        v["scenario"].as_str().unwrap_or("?").to_owned(),
        v["config"]["target"].as_str().unwrap_or("?").to_owned(),
        rates.join(", "),
        if v["verdict"]["passed"] == true {
            "passed"
        } else {
            "FAILED"
        }
        .to_owned(),
        failed.to_string(),
        path.display().to_string(),
    ])
}
