//! The operator commands' bodies: `report preview`, `submit`, `status`, `downtime`,
//! `possible-matches` (`main.rs` only wires them).

use std::fmt::Write;

use chrono::NaiveDate;
use uuid::Uuid;

use super::submit::{status_for, DayOutcome, Reporter};
use super::ReportError;
use crate::model::{StoredSubmission, SubmissionState};

/// `report preview --date D [--holdername H]`: the bodies that would be sent now, one JSON
/// document per call, each headed by its endpoint.
pub async fn preview(
    reporter: &Reporter,
    day: NaiveDate,
    holdername: Option<Uuid>,
    resubmit: bool,
) -> Result<String, ReportError> {
    let now = crate::now_micros();
    let status = if resubmit {
        crate::model::SubmissionStatus::Correction
    } else {
        status_for(day, now)
    };
    let mut out = String::new();
    for (h, b) in reporter.build_day(day, holdername, status, now).await? {
        for (i, (_, body)) in b.parts.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let _ = writeln!(
                out,
                "# POST {} holdername {h} part {}/{}\n{}",
                b.kind,
                i + 1,
                b.parts.len(),
                serde_json::to_string_pretty(&v).unwrap_or_default()
            );
        }
    }
    Ok(out)
}

/// `report submit --date D [--resubmit]`; the outcome, and whether anything of the day is not
/// accepted (a report whose latest attempt was refused, this run or before; one still pending
/// or held by another instance).
pub async fn submit(
    reporter: &Reporter,
    day: NaiveDate,
    resubmit: bool,
) -> Result<(DayOutcome, bool), ReportError> {
    let out = reporter
        .submit_day(day, resubmit, crate::now_micros())
        .await?;
    let mut latest = std::collections::HashMap::new();
    for s in reporter.store.submissions(Some(day)).await? {
        if s.key.day == day {
            latest.insert((s.key.holdername, s.key.kind), s.state);
        }
    }
    let bad =
        out.pending > 0 || out.busy > 0 || latest.values().any(|s| *s != SubmissionState::Accepted);
    Ok((out, bad))
}

/// The columns of `report status`, each padded to its width (the last, the answer, is not).
const COLUMNS: [(&str, usize); 11] = [
    ("day", 10),
    ("holdername", 36),
    ("report", 36),
    ("attempt", 7),
    ("state", 10),
    ("status", 10),
    ("reason", 18),
    ("parts", 7),
    ("submission_id", 36),
    ("http", 4),
    ("answer", 0),
];

/// One row of `report status`: `cells` in [`COLUMNS`]' order, two spaces apart.
fn row(cells: [&str; 11]) -> String {
    let mut out = String::new();
    for (cell, (_, width)) in cells.iter().zip(COLUMNS) {
        let _ = write!(out, "{cell:<width$}  ");
    }
    out.truncate(out.trim_end().len());
    out
}

/// A submission's row. `superseded`: a later attempt of its report was accepted, so this one,
/// whatever its state, needs no attention (shown as `superseded`).
fn line(s: &StoredSubmission, superseded: bool) -> String {
    let last = s
        .parts
        .iter()
        .filter(|p| p.state != SubmissionState::Accepted)
        .chain(s.parts.iter())
        .next();
    let (status, answer) = last.map_or((String::new(), String::new()), |p| {
        (
            p.http_status.map(|s| s.to_string()).unwrap_or_default(),
            p.answer.clone().unwrap_or_default().replace('\n', " "),
        )
    });
    let accepted = s
        .parts
        .iter()
        .filter(|p| p.state == SubmissionState::Accepted)
        .count();
    let state = if superseded && s.state != SubmissionState::Accepted {
        "superseded"
    } else {
        s.state.as_str()
    };
    row([
        &s.key.day.to_string(),
        &s.key.holdername.to_string(),
        s.key.kind.as_str(),
        &s.key.attempt.to_string(),
        state,
        s.status.as_str(),
        s.reason.as_str(),
        &format!("{accepted}/{}", s.parts.len()),
        &s.submission_id
            .map_or_else(|| "null".into(), |u| u.to_string()),
        &status,
        &answer,
    ])
}

/// `report status [--since D]`: every submission (sent, refused, still sending), then the days
/// since go-live with nothing submitted (they will go as `late`). True when a report needs
/// attention: its latest attempt refused or pending, or a day missing. An attempt that a later
/// accepted attempt (a correction) replaced is listed as `superseded` and needs none.
pub async fn status(reporter: &Reporter, since: NaiveDate) -> Result<(String, bool), ReportError> {
    let subs = reporter.store.submissions(Some(since)).await?;
    let mut out = row(COLUMNS.map(|(name, _)| name));
    out.push('\n');
    // The latest attempt of each (day, holdername, report): listed by attempt, the last wins.
    let mut latest = std::collections::HashMap::new();
    for s in &subs {
        latest.insert(
            (s.key.day, s.key.holdername, s.key.kind),
            (s.key.attempt, s.state),
        );
    }
    let mut attention = latest
        .values()
        .any(|(_, state)| *state != SubmissionState::Accepted);
    for s in &subs {
        let (last, last_state) = latest[&(s.key.day, s.key.holdername, s.key.kind)];
        let superseded = s.key.attempt < last && last_state == SubmissionState::Accepted;
        out.push_str(&line(s, superseded));
        out.push('\n');
    }
    let live = crate::sla::live_since(&reporter.store, reporter.go_live).await?;
    let yesterday = super::day_of(crate::now_micros()) - chrono::Days::new(1);
    if let Some(live_day) = live.map(super::day_of) {
        let mut day = since.max(live_day);
        while day <= yesterday {
            if !subs.iter().any(|s| s.key.day == day) {
                attention = true;
                let _ = writeln!(
                    out,
                    "{day}  missing: not submitted; the next run sends it as late"
                );
            }
            day = day + chrono::Days::new(1);
        }
    }
    Ok((out, attention))
}

/// `report possible-matches --from D --to D`: Regulation 28(3), per holdername.
pub async fn possible_matches(
    reporter: &Reporter,
    from: i64,
    to: i64,
) -> Result<String, ReportError> {
    let rows = super::possible::report(&reporter.store, from, to).await?;
    let mut out =
        String::from("holdername  total  yes  no  timed_out  open  resolution_s(min/median/max)\n");
    for r in rows {
        let s = &r.resolution_seconds;
        let stats = if s.is_empty() {
            "-".into()
        } else {
            format!("{}/{}/{}", s[0], s[s.len() / 2], s[s.len() - 1])
        };
        let _ = writeln!(
            out,
            "{}  {}  {}  {}  {}  {}  {}",
            r.holdername, r.total, r.yes, r.no, r.timed_out, r.open, stats
        );
    }
    Ok(out)
}
