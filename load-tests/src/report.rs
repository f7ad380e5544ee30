//! What a run writes: `result.json` (every figure, the resolved config, the machine),
//! `summary.md` (tables), and the plots ([`plot`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

pub mod plot;

use super::driver::PhaseResult;
use super::failure::Failures;
use super::histogram::{SecondPoint, SeriesSummary};
use super::scenario::{Mode, Plan};
use super::verdict::{Severity, Verdict};
use super::LoadError;

/// The machine the load ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// CPUs available to this process.
    pub nproc: usize,
    /// CPU model, where the OS says.
    pub cpu_model: Option<String>,
    /// `linux`, `macos`, …
    pub os: &'static str,
    /// `x86_64`, `aarch64`, …
    pub arch: &'static str,
}

// === impl Machine ===

impl Machine {
    /// This machine.
    pub fn detect() -> Self {
        let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        Self {
            hostname,
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }

    /// The host name reduced to characters safe in a directory name.
    pub fn safe_hostname(&self) -> String {
        self.hostname
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// One phase's figures, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `main` or `recovery`.
    pub name: String,
    /// Open or closed loop.
    pub mode: Mode,
    /// Finds/s offered (open loop).
    pub offered_rate: Option<f64>,
    /// Tasks (closed loop).
    pub concurrency: Option<usize>,
    /// Planned length, s.
    pub duration_s: f64,
    /// From the run's start to the phase's, s.
    pub start_s: f64,
    /// From the phase's start to its last answer, s.
    pub elapsed_s: f64,
    /// Due or started, dropped included.
    pub attempted: u64,
    /// Sent.
    pub sent: u64,
    /// `202`s.
    pub acked: u64,
    /// `202`s per second: the throughput achieved (closed loop: the sustainable maximum).
    pub achieved_rate: f64,
    /// `503`s counted as shed (only when shedding is expected).
    pub shed: u64,
    /// Whether `503`s were expected.
    pub expect_shedding: bool,
    /// Non-`202` statuses by code.
    pub statuses: BTreeMap<String, u64>,
    /// Requests with no answer, by coarse cause (`timeout`, `connect`, `other`); `failures`
    /// has the reasons.
    pub transport_errors: BTreeMap<String, u64>,
    /// Dropped by the client (in-flight bound).
    pub dropped: u64,
    /// All errors.
    pub errors: u64,
    /// `errors / attempted`.
    pub error_rate: f64,
    /// The threshold.
    pub max_error_rate: f64,
    /// ACK latency.
    pub ack: SeriesSummary,
    /// Completion latency, when followed.
    pub completion: Option<SeriesSummary>,
    /// Control polls that failed while following completion.
    pub completion_poll_errors: Option<u64>,
    /// View latency, when views were called.
    pub views: Option<SeriesSummary>,
    /// Every failed find, completion and view, by reason ([`super::failure`]).
    pub failures: PhaseFailures,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
    /// Per-second figures.
    pub timeline: Vec<SecondPoint>,
}

/// A phase's failures by stage and reason: the finds' add up to `errors`, the completions' to
/// the completion series' `missed`, the views' to the view series' `missed`.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseFailures {
    /// Failed finds.
    pub find: Failures,
    /// Followed finds not seen registered (when completion was followed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Failures>,
    /// Views that did not end with a verified `200` (when views were called).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<Failures>,
}

// === impl PhaseFailures ===

impl PhaseFailures {
    /// The stages with failures, in the order a find visits them.
    pub fn stages(&self) -> Vec<(&'static str, &Failures)> {
        [
            ("find", Some(&self.find)),
            ("completion", self.completion.as_ref()),
            ("view", self.view.as_ref()),
        ]
        .into_iter()
        .filter_map(|(stage, f)| f.filter(|f| !f.is_empty()).map(|f| (stage, f)))
        .collect()
    }
}

/// Everything a run writes to `result.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `pdp-provider load`.
    pub tool: &'static str,
    /// The crate's version.
    pub version: &'static str,
    /// The scenario's name.
    pub scenario: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// What it ran.
    pub config: Plan,
    /// Each phase.
    pub phases: Vec<PhaseReport>,
    /// The verdict.
    pub verdict: Verdict,
}

// === impl PhaseReport ===

impl PhaseReport {
    /// The report of a phase.
    pub fn of(p: &PhaseResult) -> Self {
        let errors = p.errors();
        Self {
            name: p.spec.name.clone(),
            mode: p.spec.mode,
            offered_rate: (p.spec.mode == Mode::Open).then_some(p.spec.rate),
            concurrency: (p.spec.mode == Mode::Closed).then_some(p.spec.concurrency),
            duration_s: p.spec.duration.as_secs_f64(),
            start_s: p.start_s,
            elapsed_s: p.elapsed.as_secs_f64(),
            attempted: p.attempted,
            sent: p.sent,
            acked: p.acked,
            achieved_rate: p.achieved_rate(),
            shed: p.shed,
            expect_shedding: p.spec.expect_shedding,
            statuses: p
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            transport_errors: p.transport.iter().fold(BTreeMap::new(), |mut m, (t, n)| {
                *m.entry(t.coarse().to_owned()).or_default() += n;
                m
            }),
            dropped: p.dropped,
            errors,
            error_rate: super::verdict::error_rate(errors, p.attempted),
            max_error_rate: p.spec.max_error_rate,
            ack: p.ack.summary(),
            completion: p.completion.as_ref().map(|c| c.series.summary()),
            completion_poll_errors: p.completion.as_ref().map(|c| c.poll_errors),
            views: p.views.as_ref().map(|v| v.series.summary()),
            failures: PhaseFailures {
                find: p.find_failures(),
                completion: p.completion.as_ref().map(|c| c.failures.clone()),
                view: p.views.as_ref().map(|v| v.failures.clone()),
            },
            interrupted: p.interrupted,
            timeline: p.timeline.points(p.start_s),
        }
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn yes_no(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "**MISSED**"
    }
}

// === impl Report ===

impl Report {
    /// Writes `result.json`, `summary.md` and the plots into `dir` (created if needed).
    pub fn write(&self, dir: &Path, phases: &[PhaseResult]) -> Result<(), LoadError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LoadError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let json = dir.join("result.json");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| LoadError::Report(format!("result.json: {e}")))?;
        std::fs::write(&json, text + "\n").map_err(io(&json))?;
        let md = dir.join("summary.md");
        std::fs::write(&md, self.summary_md()).map_err(io(&md))?;
        plot::latency_over_time(&dir.join("latency-over-time.svg"), &self.phases)?;
        plot::percentiles(&dir.join("percentiles.svg"), phases)?;
        Ok(())
    }

    /// The markdown summary: the verdict and the setup, then latency, requests and failures per
    /// phase, then how to read the figures.
    pub fn summary_md(&self) -> String {
        let mut s = String::new();
        self.write_heading(&mut s);
        self.write_setup(&mut s);
        self.write_latency(&mut s);
        self.write_requests(&mut s);
        self.write_failures(&mut s);
        self.write_notes(&mut s);
        s
    }

    /// The title, the scenario's description and the verdict.
    fn write_heading(&self, s: &mut String) {
        let c = &self.config;
        let verdict = match (self.verdict.passed, self.verdict.targets_met) {
            (true, true) => "**PASS**: every CoCo limit and recommended target met",
            (true, false) => "**PASS**: every CoCo limit met; a recommended target missed",
            (false, _) => "**FAIL**: a CoCo limit missed or errors over the threshold",
        };
        let _ = writeln!(s, "# Load test `{}`\n", self.scenario);
        if let Some(d) = &c.description {
            let _ = writeln!(s, "{d}\n");
        }
        let _ = writeln!(s, "{verdict}\n");
    }

    /// The setup as a list: the load, the mix and members, completion, CAS faults, the
    /// machine, when it ran.
    fn write_setup(&self, s: &mut String) {
        let c = &self.config;
        let load = match c.mode {
            Mode::Open => format!(
                "open loop at {} finds/s (at most {} in flight) for {} s over {} client(s)",
                c.rate, c.max_in_flight, c.duration_s, c.connections
            ),
            Mode::Closed => format!(
                "closed loop, {} at once for {} s, a connection each",
                c.concurrency, c.duration_s
            ),
        };
        let _ = writeln!(s, "- target: `{}`, {load}, HTTP/1.1 keep-alive", c.target);
        let _ = writeln!(
            s,
            "- mix yes/possible/no {}/{}/{}; members {}; seed {}",
            c.mix.yes,
            c.mix.possible,
            c.mix.no,
            c.members.as_ref().map_or_else(
                || format!("{} generated", c.member_count),
                |p| format!("`{}`", p.display())
            ),
            c.seed
        );
        if c.follow_completion {
            let _ = writeln!(
                s,
                "- completion followed for {}% of matching finds",
                c.completion_sample * 100.0
            );
        }
        if let Some(f) = &c.cas_faults {
            let _ = writeln!(
                s,
                "- CAS faults: {} ms latency, {}% errors ({}), {} ms outage",
                f.latency_ms,
                f.error_rate * 100.0,
                f.error_status,
                f.outage_ms
            );
        }
        let m = &self.machine;
        let _ = writeln!(
            s,
            "- machine: `{}`, {} CPU(s){}, {}/{}; load generator and endpoint share it unless \
             the target is remote",
            m.hostname,
            m.nproc,
            m.cpu_model
                .as_ref()
                .map_or(String::new(), |c| format!(" ({c})")),
            m.os,
            m.arch
        );
        let _ = writeln!(
            s,
            "- started {}, finished {}\n",
            self.started_at, self.finished_at
        );
    }

    /// The latency table: a row per phase and series, its percentiles against its CoCo limit
    /// and recommended target.
    fn write_latency(&self, s: &mut String) {
        let _ = writeln!(s, "## Latency (ms)\n");
        let _ = writeln!(
            s,
            "| phase | series | samples | missed | p50 | p99 | p99.9 | max | CoCo limit | target |"
        );
        let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|---|---|");
        for p in &self.phases {
            for sm in [Some(&p.ack), p.completion.as_ref(), p.views.as_ref()]
                .into_iter()
                .flatten()
            {
                let at = if sm.sla.percentile >= 100.0 {
                    "max".to_owned()
                } else {
                    format!("p{}", sm.sla.percentile)
                };
                let check = |sev: Severity| {
                    self.verdict
                        .checks
                        .iter()
                        .find(|c| {
                            c.phase == p.name
                                && c.severity == sev
                                && c.what.starts_with(sm.kind.name())
                        })
                        .map_or("n/a", |c| yes_no(c.passed))
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} ≤ {} ms: {} | {} ≤ {} ms: {} |",
                    p.name,
                    sm.kind.name(),
                    sm.count,
                    sm.missed,
                    ms(sm.p50_ms),
                    ms(sm.p99_ms),
                    ms(sm.p999_ms),
                    ms(sm.max_ms),
                    at,
                    sm.sla.limit.as_millis(),
                    check(Severity::Limit),
                    at,
                    sm.sla.target.as_millis(),
                    check(Severity::Target),
                );
            }
        }
    }

    /// The requests table: a row per phase, what was sent and answered, and its error rate
    /// against the threshold.
    fn write_requests(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Requests\n");
        let _ = writeln!(
            s,
            "| phase | attempted | acked | achieved/s | shed (503) | other statuses | no answer | dropped by client | error rate | threshold |"
        );
        let _ = writeln!(s, "|---|--:|--:|--:|--:|---|---|--:|--:|--:|");
        for p in &self.phases {
            let statuses = p
                .statuses
                .iter()
                .filter(|(k, _)| !(p.expect_shedding && k.as_str() == "503"))
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let transport = p
                .transport_errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let err_ok = self
                .verdict
                .checks
                .iter()
                .find(|c| c.phase == p.name && c.severity == Severity::Errors)
                .is_none_or(|c| c.passed);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {:.5} | {}: {} |",
                p.name,
                p.attempted,
                p.acked,
                p.achieved_rate,
                if p.expect_shedding {
                    p.shed.to_string()
                } else {
                    "n/a".into()
                },
                if statuses.is_empty() { "-" } else { &statuses },
                if transport.is_empty() {
                    "-"
                } else {
                    &transport
                },
                p.dropped,
                p.error_rate,
                p.max_error_rate,
                yes_no(err_ok),
            );
        }
    }

    /// The failures: a row per phase, stage and reason, most frequent first; or a line saying
    /// there were none.
    fn write_failures(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Failures\n");
        if self.phases.iter().all(|p| p.failures.stages().is_empty()) {
            let _ = writeln!(s, "No find, completion or view failed.");
        } else {
            let _ = writeln!(s, "| phase | stage | reason | count |");
            let _ = writeln!(s, "|---|---|---|--:|");
            for p in &self.phases {
                for (stage, f) in p.failures.stages() {
                    for (reason, n) in f.ranked() {
                        let _ = writeln!(s, "| {} | {stage} | {reason} | {n} |", p.name);
                    }
                }
            }
        }
    }

    /// An interruption, if there was one, and how the figures were measured.
    fn write_notes(&self, s: &mut String) {
        if self.phases.iter().any(|p| p.interrupted) {
            let _ = writeln!(
                s,
                "\nInterrupted (Ctrl-C): the figures cover what was sent."
            );
        }
        let _ = writeln!(
            s,
            "\nACK latency runs from when a request was due (open loop), so a stall on either \
             side counts; completion runs from the ACK to the poll that first saw the PeI at \
             the CAS simulator (100 ms polls). Plots: `latency-over-time.svg`, \
             `percentiles.svg`; every figure: `result.json`."
        );
    }
}
