//! The view phase: after the finds, views of registered PeIs at a rate, as MaPS' dashboard
//! calls them (empty Bearer, ticket from the challenge, RPT from the CAS, one retry, token
//! verified against the CAS `jwk_uri`).
//!
//! A view's latency is the whole flow, scheduled time to verified payload (coordinated-omission
//! correct, like the find phase): both provider calls and the CAS token exchange, a conservative
//! reading of CoCo2.1.3. Anything but a verified `200` on the retry is a failed view and counts
//! as a missed sample (an infinitely slow one) in the series.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::completion::Control;
use super::histogram::{Series, SeriesKind};
use super::pacing;
use super::LoadError;
use crate::sim::dashboard::Dashboard;

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

/// Runs views at `rate` for `duration` over `guids`, round robin.
pub async fn run(
    dashboard: Dashboard,
    guids: Vec<String>,
    rate: f64,
    duration: Duration,
    cancel: &CancellationToken,
    quiet: bool,
) -> Series {
    let mut series = Series::new(SeriesKind::View);
    if guids.is_empty() || rate <= 0.0 {
        if !quiet {
            eprintln!("views: no registered PeIs to view");
        }
        return series;
    }
    let total = pacing::count(rate, duration);
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
            continue;
        };
        let (d, guid) = (dashboard.clone(), guids[i as usize % guids.len()].clone());
        tasks.spawn(async move {
            let ok = matches!(
                d.view(&guid).await,
                Ok(v) if v.retry_status == Some(200) && v.view_data.is_some()
            );
            drop(permit);
            (ok, due.elapsed())
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((true, latency)) => series.record(latency),
            _ => series.missed += 1,
        }
    }
    if !quiet {
        eprintln!(
            "views: {} verified, {} failed",
            series.count(),
            series.missed
        );
    }
    series
}
