//! The server's daily run: from `reporting.at` (UTC) each day, the previous day is submitted,
//! and any of the `reporting.catch_up_days` before it that were missed (the server was down at
//! that time) go as `late`. Days before the connection went live are never submitted.
//!
//! Every instance runs this; the store's claims make each holdername's day submitted once (see
//! [`super::submit`]). A run that finds everything answered remembers the day and skips it
//! until the next; one that leaves work (retries spent, another instance's claim) tries again
//! on the next tick, every minute.
//!
//! `pdp_report_last_submitted_day_seconds` is the start of the newest reporting day whose
//! submissions are all answered ([`newest_submitted`]), read from the store at start and after
//! a run that leaves work, and yesterday after a run that leaves none. A refused submission is
//! answered (its refusal is counted apart); days before go-live owe nothing. A day is due by
//! the end of the next (UTC): at 02:00 on day D+2, D+1 is due and D at least must be answered.

use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::submit::Reporter;
use crate::model::{StoredSubmission, SubmissionState};

/// How many days before yesterday the store's submissions are read for the newest day answered.
const LOOKBACK_DAYS: u64 = 31;

/// Runs until `shutdown`.
pub async fn run(reporter: Reporter, shutdown: CancellationToken) {
    let Some(at) = reporter.config.at_time() else {
        return;
    };
    export_submitted(&reporter, crate::now_micros()).await;
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
            Ok(true) => {
                done_through = Some(yesterday);
                crate::metrics::report_last_submitted_day(yesterday);
            }
            Ok(false) => export_submitted(&reporter, now).await,
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

/// Exports the newest reporting day whose submissions are all answered, as the store has it.
async fn export_submitted(reporter: &Reporter, now: i64) {
    match submitted_through(reporter, now).await {
        Ok(day) => crate::metrics::report_last_submitted_day(day),
        Err(e) => tracing::warn!(error = %e, "the newest reporting day submitted not read"),
    }
}

/// The newest reporting day up to yesterday (as of `now`) whose submissions are all answered,
/// from the store's submissions of the last [`LOOKBACK_DAYS`] days.
pub async fn submitted_through(
    reporter: &Reporter,
    now: i64,
) -> Result<NaiveDate, super::ReportError> {
    let yesterday = super::day_of(now) - chrono::Days::new(1);
    let since = yesterday - chrono::Days::new(LOOKBACK_DAYS);
    let live = crate::sla::live_since(&reporter.store, reporter.go_live).await?;
    let submissions = reporter.store.submissions(Some(since)).await?;
    Ok(newest_submitted(
        &submissions,
        live.map(super::day_of),
        since,
        yesterday,
    ))
}

/// The newest day of `[since, yesterday]` whose initial submissions (attempt 0) exist and are
/// all answered (accepted or refused), or that is before go-live (`live`: nothing is owed then;
/// never live: yesterday). The day before `since` when none is: at best that old.
pub fn newest_submitted(
    submissions: &[StoredSubmission],
    live: Option<NaiveDate>,
    since: NaiveDate,
    yesterday: NaiveDate,
) -> NaiveDate {
    let Some(live) = live else {
        return yesterday;
    };
    let mut day = yesterday;
    while day >= since {
        let mut initial = submissions
            .iter()
            .filter(|s| s.key.day == day && s.key.attempt == 0)
            .peekable();
        let submitted =
            initial.peek().is_some() && initial.all(|s| s.state != SubmissionState::Sending);
        if day < live || submitted {
            return day;
        }
        day = day - chrono::Days::new(1);
    }
    since - chrono::Days::new(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ReportKind, SubmissionKey, SubmissionReason, SubmissionStatus};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn submission(
        d: u32,
        kind: ReportKind,
        attempt: u32,
        state: SubmissionState,
    ) -> StoredSubmission {
        StoredSubmission {
            key: SubmissionKey {
                holdername: uuid::Uuid::from_u128(1),
                kind,
                day: day(d),
                attempt,
            },
            submission_id: None,
            status: SubmissionStatus::OnTime,
            reason: SubmissionReason::Initial,
            state,
            claimed_at: 0,
            parts: Vec::new(),
        }
    }

    #[test]
    fn the_newest_day_submitted_is_the_newest_with_every_initial_submission_answered() {
        use ReportKind::{RequestNumber, ResponseTime};
        use SubmissionState::{Accepted, Refused, Sending};
        let subs = [
            submission(5, RequestNumber, 0, Accepted),
            submission(5, ResponseTime, 0, Refused),
            submission(6, RequestNumber, 0, Accepted),
            submission(6, ResponseTime, 0, Sending),
            // A correction still sending does not unsay the initial submission's answer.
            submission(5, RequestNumber, 1, Sending),
        ];
        let newest = |live, yesterday| newest_submitted(&subs, live, day(1), day(yesterday));
        // Day 6 has a report still sending, day 7 nothing: day 5 (a refusal is an answer).
        assert_eq!(newest(Some(day(2)), 7), day(5));
        assert_eq!(newest(Some(day(2)), 5), day(5));
        // Nothing submitted since going live on day 6: the day before it owed nothing.
        assert_eq!(newest(Some(day(6)), 7), day(5));
        assert_eq!(newest_submitted(&[], Some(day(6)), day(1), day(7)), day(5));
        // Live today (after yesterday), or never: nothing is owed through yesterday.
        assert_eq!(newest(Some(day(8)), 7), day(7));
        assert_eq!(newest(None, 7), day(7));
        // Nothing answered in the window: at best the day before it.
        assert_eq!(newest_submitted(&[], Some(day(1)), day(3), day(7)), day(2));
    }
}
