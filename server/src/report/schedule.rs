//! The server's daily run: from `reporting.at` (UTC) each day, the previous day is submitted,
//! and any of the `reporting.catch_up_days` before it that were missed (the server was down at
//! that time) go as `late`. Days before the connection went live are never submitted.
//!
//! Every instance runs this; the store's claims make each holdername's day submitted once (see
//! [`super::submit`]). A run that finds everything answered remembers the day and skips it
//! until the next; one that leaves work (retries spent, another instance's claim) tries again
//! on the next tick, every minute.

use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::submit::Reporter;

/// Runs until `shutdown`.
pub async fn run(reporter: Reporter, shutdown: CancellationToken) {
    let Some(at) = reporter.config.at_time() else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut done_through: Option<NaiveDate> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let now = crate::now_micros();
        let now_dt = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default();
        if now_dt.time() < at {
            continue;
        }
        let yesterday = now_dt.date_naive() - chrono::Days::new(1);
        if done_through == Some(yesterday) {
            continue;
        }
        match run_due(&reporter, yesterday, now).await {
            Ok(true) => done_through = Some(yesterday),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "daily PDP reporting run failed; retried in a minute")
            }
        }
    }
}

/// Submits `yesterday` and the missed days before it; true when nothing is left to send.
pub async fn run_due(
    reporter: &Reporter,
    yesterday: NaiveDate,
    now: i64,
) -> Result<bool, super::ReportError> {
    let live = crate::sla::live_since(&reporter.store, reporter.go_live).await?;
    let Some(live_day) = live.map(super::day_of) else {
        return Ok(true);
    };
    let first = yesterday - chrono::Days::new(u64::from(reporter.config.catch_up_days));
    let mut day = first.max(live_day);
    let mut settled = true;
    while day <= yesterday {
        let out = reporter.submit_day(day, false, now).await?;
        if out.accepted + out.refused > 0 {
            tracing::info!(%day, ?out, "PDP reporting submitted");
        }
        settled &= out.pending == 0 && out.busy == 0;
        day = day + chrono::Days::new(1);
    }
    Ok(settled)
}
