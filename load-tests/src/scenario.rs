//! Scenarios: a TOML file whose fields mirror the command-line flags, resolved with the flags
//! (which win) and the defaults into the [`Plan`] a run follows.
//!
//! ```toml
//! name = "steady"
//! mode = "open"                 # or "closed"
//! rate = 2000.0                 # finds/s (open loop)
//! duration_s = 60
//! connections = 4               # open loop: independent clients (keep-alive pools)
//! concurrency = 64              # closed loop: requests back to back
//! max_in_flight = 4096          # open loop: past this a due request is dropped by the client
//! mix = { yes = 1, possible = 1, no = 1 }
//! follow_completion = true
//! completion_sample = 0.1
//! cas_control = "http://127.0.0.1:8445"
//! cas_faults = { latency_ms = 200, error_rate = 0.05, error_status = 503 }
//! members = "data/demo/members.jsonl"   # or member_count + seed, generated in memory
//! seed = 42
//! expect_shedding = false       # true: 503s are counted as shed, not as errors
//! max_error_rate = 0.001
//! recovery = { rate = 100.0, duration_s = 10, settle_s = 2 }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mix::Mix;
use super::{LoadArgs, LoadError};

/// Open loop (a fixed schedule) or closed loop (back to back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Request `i` is sent at `start + i / rate`, whatever the answers.
    Open,
    /// `concurrency` tasks each send the next request when the last is answered.
    Closed,
}

/// A recovery phase after the main one: a low open-loop rate at which errors must be ~0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Finds/s.
    pub rate: f64,
    /// Length, seconds.
    pub duration_s: f64,
    /// Pause between the main phase and this one, seconds.
    #[serde(default)]
    pub settle_s: f64,
    /// Error threshold of this phase (default: the scenario's `max_error_rate`). `503`s count.
    #[serde(default)]
    pub max_error_rate: Option<f64>,
}

/// Faults injected at the CAS simulator for the run (cleared at its end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasFaults {
    /// Added to every CAS answer, ms.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of CAS calls answered with `error_status` (0 to 1).
    #[serde(default)]
    pub error_rate: f64,
    /// Status of injected errors.
    #[serde(default = "default_error_status")]
    pub error_status: u16,
    /// The CAS answers every call with `503` for this long from the start, ms.
    #[serde(default)]
    pub outage_ms: u64,
    /// Only these endpoints (e.g. `"POST /rreguri"`); all when empty.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

fn default_error_status() -> u16 {
    503
}

impl CasFaults {
    /// The simulator's form.
    pub fn to_sim(&self) -> pdp_sim::cas::Faults {
        pdp_sim::cas::Faults {
            latency_ms: self.latency_ms,
            error_rate: self.error_rate,
            error_status: self.error_status,
            outage_ms: self.outage_ms,
            endpoints: self.endpoints.clone(),
        }
    }
}

/// A scenario file as written: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name of the scenario (default: the file's stem).
    pub name: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Open or closed loop.
    pub mode: Option<Mode>,
    /// Finds/s (open loop).
    pub rate: Option<f64>,
    /// Seconds.
    pub duration_s: Option<f64>,
    /// Open loop: independent clients.
    pub connections: Option<usize>,
    /// Closed-loop tasks.
    pub concurrency: Option<usize>,
    /// Open-loop bound on requests awaiting an answer.
    pub max_in_flight: Option<usize>,
    /// Per-request time-out, ms.
    pub request_timeout_ms: Option<u64>,
    /// Outcome weights.
    pub mix: Option<Mix>,
    /// A member file (JSON lines).
    pub members: Option<PathBuf>,
    /// Members generated in memory when no file is given.
    pub member_count: Option<u64>,
    /// Seed of generated members and of the mix.
    pub seed: Option<u64>,
    /// Follow completion at the CAS simulator.
    pub follow_completion: Option<bool>,
    /// Share of matching finds followed (0 to 1).
    pub completion_sample: Option<f64>,
    /// The CAS simulator's control URL.
    pub cas_control: Option<String>,
    /// Views/s after the finds.
    pub view_rate: Option<f64>,
    /// The CAS base URL for the dashboard.
    pub cas_url: Option<String>,
    /// Faults injected at the CAS simulator for the run.
    pub cas_faults: Option<CasFaults>,
    /// `503`s are expected: counted as shed, not as errors.
    pub expect_shedding: Option<bool>,
    /// Error threshold, a share of requests (0 to 1).
    pub max_error_rate: Option<f64>,
    /// A recovery phase after the main one.
    pub recovery: Option<Recovery>,
}

/// Everything a run does, resolved; written into `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Scenario name (names the output directory).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The scenario file, if any.
    pub scenario_file: Option<PathBuf>,
    /// Base URL of the endpoint.
    pub target: String,
    /// Directory with `ca.pem`, `pfs.pem`, `pfs.key`.
    pub certs: PathBuf,
    /// Open or closed loop.
    pub mode: Mode,
    /// Finds/s (open loop).
    pub rate: f64,
    /// Seconds.
    pub duration_s: f64,
    /// Open loop: independent clients (the closed loop opens a connection per task).
    pub connections: usize,
    /// Closed-loop tasks.
    pub concurrency: usize,
    /// Open-loop in-flight bound.
    pub max_in_flight: usize,
    /// Per-request time-out, ms.
    pub request_timeout_ms: u64,
    /// Outcome weights.
    pub mix: Mix,
    /// Member file, or generated.
    pub members: Option<PathBuf>,
    /// Members generated when no file is given.
    pub member_count: u64,
    /// Seed.
    pub seed: u64,
    /// Follow completion.
    pub follow_completion: bool,
    /// Share of matching finds followed.
    pub completion_sample: f64,
    /// CAS simulator control URL.
    pub cas_control: Option<String>,
    /// Views/s after the finds (0: none).
    pub view_rate: f64,
    /// The CAS base URL for the dashboard.
    pub cas_url: String,
    /// Faults injected for the run.
    pub cas_faults: Option<CasFaults>,
    /// `503`s are shed, not errors.
    pub expect_shedding: bool,
    /// Error threshold.
    pub max_error_rate: f64,
    /// Recovery phase.
    pub recovery: Option<Recovery>,
    /// Output directory.
    pub out: PathBuf,
    /// No progress lines.
    pub quiet: bool,
}

/// Defaults of fields neither the scenario nor a flag sets.
pub mod defaults {
    /// The endpoint.
    pub const TARGET: &str = "https://127.0.0.1:8443";
    /// Finds/s.
    pub const RATE: f64 = 100.0;
    /// Seconds.
    pub const DURATION_S: f64 = 10.0;
    /// Clients.
    pub const CONNECTIONS: usize = 4;
    /// Closed-loop tasks.
    pub const CONCURRENCY: usize = 32;
    /// Open-loop in-flight bound.
    pub const MAX_IN_FLIGHT: usize = 4096;
    /// Per-request time-out, ms.
    pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
    /// Members generated (as `demo` does).
    pub const MEMBER_COUNT: u64 = 2000;
    /// Seed (as `demo` and `members generate` use).
    pub const SEED: u64 = 42;
    /// Share of matching finds followed.
    pub const COMPLETION_SAMPLE: f64 = 0.1;
    /// Error threshold.
    pub const MAX_ERROR_RATE: f64 = 0.001;
}

// === impl Scenario ===

impl Scenario {
    /// Parses scenario TOML.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| LoadError::ScenarioFile {
            path: path.to_owned(),
            reason,
        })
    }
}

fn invalid(field: &str, reason: &str) -> LoadError {
    LoadError::Scenario(format!("{field}: {reason}"))
}

fn check_rate(field: &str, v: f64) -> Result<(), LoadError> {
    if !v.is_finite() || v <= 0.0 || v > 1e6 {
        return Err(invalid(field, "must be more than 0 and at most 1000000"));
    }
    Ok(())
}

fn check_duration(field: &str, v: f64) -> Result<(), LoadError> {
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        return Err(invalid(field, "must be more than 0 s and at most a day"));
    }
    Ok(())
}

fn check_share(field: &str, v: f64) -> Result<(), LoadError> {
    if !(0.0..=1.0).contains(&v) {
        return Err(invalid(field, "must be from 0 to 1"));
    }
    Ok(())
}

// === impl Plan ===

impl Plan {
    /// Resolves flags over the scenario over the defaults, and checks the result.
    ///
    /// `default_out` gives the output directory from the scenario's name when `--out` is absent.
    pub fn resolve(
        args: &LoadArgs,
        scenario: Option<(&Path, Scenario)>,
        default_out: impl FnOnce(&str) -> PathBuf,
    ) -> Result<Plan, LoadError> {
        let (file, s) = match scenario {
            Some((p, s)) => (Some(p.to_owned()), s),
            None => (None, Scenario::default()),
        };
        let name = Self::name(args, s.name.as_deref(), file.as_deref())?;
        let mode = if args.closed_loop {
            Mode::Closed
        } else {
            s.mode.unwrap_or(Mode::Open)
        };
        let mix = Self::mix(args, s.mix)?;
        let plan = Plan {
            out: args.out.clone().unwrap_or_else(|| default_out(&name)),
            name,
            description: s.description,
            scenario_file: file,
            target: args
                .target
                .clone()
                .unwrap_or_else(|| defaults::TARGET.into())
                .trim_end_matches('/')
                .to_owned(),
            certs: args.certs.clone(),
            mode,
            rate: args.rate.or(s.rate).unwrap_or(defaults::RATE),
            duration_s: args
                .duration
                .or(s.duration_s)
                .unwrap_or(defaults::DURATION_S),
            connections: args
                .connections
                .or(s.connections)
                .unwrap_or(defaults::CONNECTIONS),
            concurrency: args
                .concurrency
                .or(s.concurrency)
                .unwrap_or(defaults::CONCURRENCY),
            max_in_flight: args
                .max_in_flight
                .or(s.max_in_flight)
                .unwrap_or(defaults::MAX_IN_FLIGHT),
            request_timeout_ms: args
                .request_timeout_ms
                .or(s.request_timeout_ms)
                .unwrap_or(defaults::REQUEST_TIMEOUT_MS),
            mix,
            members: args.members.clone().or(s.members),
            member_count: args
                .member_count
                .or(s.member_count)
                .unwrap_or(defaults::MEMBER_COUNT),
            seed: args.seed.or(s.seed).unwrap_or(defaults::SEED),
            follow_completion: args.follow_completion || s.follow_completion.unwrap_or(false),
            completion_sample: args
                .completion_sample
                .or(s.completion_sample)
                .unwrap_or(defaults::COMPLETION_SAMPLE),
            cas_control: args
                .cas_control
                .clone()
                .or(s.cas_control)
                .map(|u| u.trim_end_matches('/').to_owned()),
            view_rate: args.view_rate.or(s.view_rate).unwrap_or(0.0),
            cas_url: args
                .cas_url
                .clone()
                .or(s.cas_url)
                .unwrap_or_else(|| "https://127.0.0.1:8444".into())
                .trim_end_matches('/')
                .to_owned(),
            cas_faults: s.cas_faults,
            expect_shedding: args.expect_shedding || s.expect_shedding.unwrap_or(false),
            max_error_rate: args
                .max_error_rate
                .or(s.max_error_rate)
                .unwrap_or(defaults::MAX_ERROR_RATE),
            recovery: s.recovery,
            quiet: args.quiet,
        };
        plan.check()?;
        Ok(plan)
    }

    /// The run's name: `--name`, else the scenario's, else its file's stem, else `adhoc`; it
    /// names a directory, so letters, digits, '-', '_' and '.' only, not leading '.'.
    fn name(
        args: &LoadArgs,
        scenario: Option<&str>,
        file: Option<&Path>,
    ) -> Result<String, LoadError> {
        let name = args
            .name
            .clone()
            .or(scenario.map(str::to_owned))
            .or_else(|| {
                file.and_then(|f| f.file_stem())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "adhoc".into());
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.starts_with('.')
        {
            return Err(invalid("name", "letters, digits, '-', '_', '.' only"));
        }
        Ok(name)
    }

    /// The mix: `--mix`, else the scenario's, else 1,1,1; checked.
    fn mix(args: &LoadArgs, scenario: Option<Mix>) -> Result<Mix, LoadError> {
        let mix = match &args.mix {
            Some(m) => Mix::parse(m).map_err(|r| invalid("mix", &r))?,
            None => scenario.unwrap_or_default(),
        };
        mix.check().map_err(|r| invalid("mix", &r))?;
        Ok(mix)
    }

    /// Checks ranges and combinations.
    pub fn check(&self) -> Result<(), LoadError> {
        if !self.target.starts_with("https://") {
            return Err(invalid("target", "must be an https:// URL (mutual TLS)"));
        }
        if self.mode == Mode::Open {
            check_rate("rate", self.rate)?;
        }
        check_duration("duration_s", self.duration_s)?;
        if !(1..=1024).contains(&self.connections) {
            return Err(invalid("connections", "must be from 1 to 1024"));
        }
        if !(1..=65_536).contains(&self.concurrency) {
            return Err(invalid("concurrency", "must be from 1 to 65536"));
        }
        if !(1..=1_000_000).contains(&self.max_in_flight) {
            return Err(invalid("max_in_flight", "must be from 1 to 1000000"));
        }
        if !(1..=600_000).contains(&self.request_timeout_ms) {
            return Err(invalid("request_timeout_ms", "must be from 1 to 600000"));
        }
        if self.members.is_none() && !(1..=10_000_000).contains(&self.member_count) {
            return Err(invalid("member_count", "must be from 1 to 10000000"));
        }
        check_share("completion_sample", self.completion_sample)?;
        check_share("max_error_rate", self.max_error_rate)?;
        if let Some(c) = &self.cas_control {
            if !c.starts_with("http://") && !c.starts_with("https://") {
                return Err(invalid("cas_control", "must be an http:// URL"));
            }
        }
        if self.follow_completion && self.cas_control.is_none() {
            return Err(invalid(
                "follow_completion",
                "needs cas_control (the CAS simulator's control URL)",
            ));
        }
        if self.view_rate != 0.0 {
            check_rate("view_rate", self.view_rate)?;
            if self.cas_control.is_none() {
                return Err(invalid(
                    "view_rate",
                    "needs cas_control (the PeIs to view are read from the CAS simulator)",
                ));
            }
        }
        if let Some(f) = &self.cas_faults {
            if self.cas_control.is_none() {
                return Err(invalid("cas_faults", "needs cas_control"));
            }
            check_share("cas_faults.error_rate", f.error_rate)?;
        }
        if let Some(r) = &self.recovery {
            check_rate("recovery.rate", r.rate)?;
            check_duration("recovery.duration_s", r.duration_s)?;
            if !r.settle_s.is_finite() || !(0.0..=3600.0).contains(&r.settle_s) {
                return Err(invalid("recovery.settle_s", "must be from 0 to 3600"));
            }
            if let Some(e) = r.max_error_rate {
                check_share("recovery.max_error_rate", e)?;
            }
        }
        Ok(())
    }

    /// The main phase's length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_s)
    }
}

#[cfg(test)]
mod tests;
