//! The view phase: after the finds, views of registered PeIs at a rate, as MaPS' dashboard
//! calls them (empty Bearer, ticket from the challenge, RPT from the CAS, one retry, token
//! verified against the CAS `jwk_uri`).
//!
//! A view's latency is the whole flow, scheduled time to verified payload (coordinated-omission
//! correct, like the find phase): both provider calls and the CAS token exchange, a conservative
//! reading of CoCo2.1.3. Anything but a verified `200` on the retry is a failed view: it counts
//! as a missed sample (an infinitely slow one) in the series, and by its reason
//! ([`super::failure::view`]: `401 on retry`, `jws: kid not published`, …) in the failures.
//! With nothing registered to view, every planned view fails as `no PeI registered`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::completion::Control;
use super::failure::{self, Failures};
use super::histogram::{Series, SeriesKind};
use super::pacing;
use super::LoadError;
use pdp_sim::dashboard::Dashboard;

/// In-flight views at most.
const MAX_IN_FLIGHT: usize = 512;

/// Asset GUIDs of the PeIs registered at the CAS simulator.
pub async fn asset_guids(control: &Control) -> Result<Vec<String>, LoadError> {
    let mut guids: Vec<String> = control
        .registered_peis()
        .await?
        .into_iter()
        .filter_map(|pei| pei.rsplit(':').next().map(str::to_owned))
        .collect();
    guids.sort();
    Ok(guids)
}

/// What the view phase measured.
#[derive(Debug, Clone)]
pub struct Views {
    /// Latencies of verified views; failed ones are its `missed`.
    pub series: Series,
    /// Failed views by reason; they add up to `series.missed`.
    pub failures: Failures,
}

/// Runs views at `rate` for `duration` over `guids`, round robin.
pub async fn run(
    dashboard: Dashboard,
    guids: Vec<String>,
    rate: f64,
    duration: Duration,
    cancel: &CancellationToken,
    quiet: bool,
) -> Views {
    let mut series = Series::new(SeriesKind::View);
    let mut failures = Failures::new();
    if rate <= 0.0 {
        return Views { series, failures };
    }
    let total = pacing::count(rate, duration);
    if guids.is_empty() {
        if !quiet {
            eprintln!("views: no PeI registered at the CAS simulator to view: {total} failed");
        }
        series.missed += total;
        failures.add_n(failure::NO_PEI, total);
        return Views { series, failures };
    }
    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + pacing::offset(i, rate);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = cancel.cancelled() => break,
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Too many outstanding: a failed view, not an unbounded queue.
            series.missed += 1;
            failures.add(failure::DROPPED);
            continue;
        };
        let (d, guid) = (dashboard.clone(), guids[i as usize % guids.len()].clone());
        tasks.spawn(async move {
            let failed = failure::view(&d.view(&guid).await);
            drop(permit);
            (failed, due.elapsed())
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((None, latency)) => series.record(latency),
            Ok((Some(reason), _)) => {
                series.missed += 1;
                failures.add(reason);
            }
            Err(_) => {
                series.missed += 1;
                failures.add("other");
            }
        }
    }
    if !quiet {
        let why = if failures.is_empty() {
            String::new()
        } else {
            format!(" ({})", failures.brief())
        };
        eprintln!(
            "views: {} verified, {} failed{why}",
            series.count(),
            series.missed
        );
    }
    Views { series, failures }
}
