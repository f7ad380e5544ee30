//! `pdp-provider load`: drives a provider endpoint as the PFS would, and judges the result
//! against the code of connection.
//!
//! It sends find requests over mutual TLS (the PFS identity from `--certs`), derived from
//! generated member records in a yes/possible/no mix, either open loop at a fixed rate
//! (latency measured from when each request was due: coordinated-omission correct) or closed
//! loop (the sustainable maximum). Optionally it follows a sample of matching finds to their PeI
//! registration at the CAS simulator and injects CAS faults. ACK and completion latencies go
//! into HdrHistograms and are checked against the CoCo limits and the recommended targets;
//! every failed find, completion and view is counted by its reason; `result.json`,
//! `summary.md` and SVG plots land in the output directory. Scenarios are TOML
//! files (`load-tests/scenarios/`) whose fields mirror the flags; flags win.
//!
//! - [`scenario`]: the scenario file and the resolved [`scenario::Plan`].
//! - [`pacing`]: when request `i` is due.
//! - [`mix`]: what each request asks for.
//! - [`driver`]: open and closed loops, the collector, the progress line.
//! - [`request`]: each find request's ID and body.
//! - [`client`]: the closed loop's HTTP/1.1 connections (open loop: reqwest).
//! - [`completion`]: the CAS simulator's control listener: completion polls, faults.
//! - [`views`]: the view phase, as MaPS' dashboard calls views.
//! - [`failure`]: why a find, completion or view failed, in a few stable words.
//! - [`histogram`]: latency series per kind (ACK, completion, view) and per second.
//! - [`verdict`]: limits, targets, error thresholds.
//! - [`report`]: what is written, the plots too ([`report::plot`]).

// The load tool's functions stay short enough to read whole (clippy.toml: 100 lines).
#![warn(clippy::too_many_lines)]

pub mod client;
pub mod completion;
pub mod driver;
pub mod failure;
pub mod histogram;
pub mod history;
pub mod mix;
pub mod pacing;
pub mod report;
pub mod request;
pub mod scenario;
pub mod verdict;
pub mod views;

#[cfg(test)]
mod testing;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use completion::Control;
use driver::{Ctx, PhaseResult, PhaseSpec};
use pdp_provider::tls::client::{mtls_client, Identity};
use pdp_provider::tls::pki::files;
use report::{Machine, PhaseReport, Report};
use scenario::{Mode, Plan, Scenario};
use verdict::Verdict;

/// Options of `pdp-provider load`. Every option but `--target`, `--certs`, `--out`, `--name`
/// and `--quiet` can also be set in the scenario file; a flag given wins over the file.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// A scenario file (TOML; see `load-tests/scenarios/`).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// The endpoint's base URL [default: https://127.0.0.1:8443].
    #[arg(long)]
    pub target: Option<String>,
    /// Directory with the PFS identity and the CA: `ca.pem`, `pfs.pem`, `pfs.key`.
    #[arg(long, default_value = "certs")]
    pub certs: PathBuf,
    /// Closed loop: `--concurrency` requests back to back (the maximum sustainable rate).
    #[arg(long)]
    pub closed_loop: bool,
    /// Open loop: find requests per second [default: 100].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds to send for [default: 10].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Open loop: independent clients (keep-alive connection pools), used in turn; the closed
    /// loop opens one connection per task instead [default: 4].
    #[arg(long)]
    pub connections: Option<usize>,
    /// Closed loop: requests at once [default: 32].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Open loop: requests awaiting an answer at most; a request due past it is dropped by
    /// the client and counted as an error [default: 4096].
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Time-out of one request, ms [default: 30000].
    #[arg(long)]
    pub request_timeout_ms: Option<u64>,
    /// Weights of finds meant to match, possibly match and not match, `Y,P,N` [default: 1,1,1].
    #[arg(long)]
    pub mix: Option<String>,
    /// Members (JSON lines) the endpoint has imported; without it they are generated from
    /// `--seed` and `--member-count`, as `members generate` does.
    #[arg(long)]
    pub members: Option<PathBuf>,
    /// Members to generate when no file is given [default: 2000, as `demo`].
    #[arg(long)]
    pub member_count: Option<u64>,
    /// Seed of generated members and of the mix [default: 42, as `demo`].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Follow a sample of matching finds to their PeI registration at the CAS simulator.
    #[arg(long)]
    pub follow_completion: bool,
    /// Share of matching finds followed, 0 to 1 [default: 0.1].
    #[arg(long)]
    pub completion_sample: Option<f64>,
    /// The CAS simulator's control URL, e.g. `http://127.0.0.1:8445`.
    #[arg(long)]
    pub cas_control: Option<String>,
    /// Views/s after the finds, as MaPS' dashboard calls them (needs `cas_control`) [default: 0].
    #[arg(long)]
    pub view_rate: Option<f64>,
    /// The CAS base URL the dashboard swaps tickets and reads `jwk_uri` at
    /// [default: `https://127.0.0.1:8444`].
    #[arg(long)]
    pub cas_url: Option<String>,
    /// `503`s (load shed) are expected: counted apart, not as errors.
    #[arg(long)]
    pub expect_shedding: bool,
    /// Errors allowed, a share of requests [default: 0.001].
    #[arg(long)]
    pub max_error_rate: Option<f64>,
    /// Output directory [default: load-tests/results/<UTC date>-<hostname>/<scenario name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Scenario name in the report and the default output directory.
    #[arg(long)]
    pub name: Option<String>,
    /// No progress lines on stderr (the summary is still printed on stdout).
    #[arg(long)]
    pub quiet: bool,
}

impl Default for LoadArgs {
    /// As with no flags given.
    fn default() -> Self {
        Self {
            scenario: None,
            target: None,
            certs: PathBuf::from("certs"),
            closed_loop: false,
            rate: None,
            duration: None,
            connections: None,
            concurrency: None,
            max_in_flight: None,
            request_timeout_ms: None,
            mix: None,
            members: None,
            member_count: None,
            seed: None,
            follow_completion: false,
            completion_sample: None,
            cas_control: None,
            view_rate: None,
            cas_url: None,
            expect_shedding: false,
            max_error_rate: None,
            out: None,
            name: None,
            quiet: false,
        }
    }
}

/// Why a load run could not run (a run that ran but missed a limit is `Ok(1)`).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A scenario value or flag is out of range or inconsistent.
    #[error("scenario: {0}")]
    Scenario(String),
    /// A scenario file does not parse.
    #[error("scenario {path}: {reason}")]
    ScenarioFile {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        reason: String,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A member file line is not a member record.
    #[error("{path} line {line}: {reason}")]
    Members {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why (never the record's content).
        reason: String,
    },
    /// The PFS identity or CA.
    #[error(transparent)]
    Tls(#[from] pdp_provider::tls::TlsError),
    /// An mTLS client (the PFS's, the dashboard's) could not be built.
    #[error(transparent)]
    Mtls(#[from] pdp_provider::tls::client::ClientError),
    /// An HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The CAS simulator's control listener did not answer as expected.
    #[error("CAS simulator control {url}: {reason}")]
    Control {
        /// Its base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Writing the report or plots.
    #[error("report: {0}")]
    Report(String),
}

/// The default output directory: `load-tests/results/<UTC date>-<hostname>/<name>`.
fn default_out(date: &chrono::DateTime<chrono::Utc>, machine: &Machine, name: &str) -> PathBuf {
    PathBuf::from("load-tests/results")
        .join(format!(
            "{}-{}",
            date.format("%Y-%m-%d"),
            machine.safe_hostname()
        ))
        .join(name)
}

/// The PFS's clients for the open loop: HTTP/1.1 keep-alive over mutual TLS.
fn clients(plan: &Plan) -> Result<Vec<reqwest::Client>, LoadError> {
    (0..plan.connections)
        .map(|_| {
            let identity = Identity {
                ca: &plan.certs.join(files::CA),
                cert: &plan.certs.join(files::PFS),
                key: &plan.certs.join(files::PFS_KEY),
            };
            Ok(mtls_client(identity, |b| {
                b.http1_only()
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .timeout(Duration::from_millis(plan.request_timeout_ms))
                    .connect_timeout(Duration::from_secs(10))
            })?)
        })
        .collect()
}

/// The phases of a plan: the main one, then recovery if asked.
fn phases(plan: &Plan) -> (PhaseSpec, Option<(Duration, PhaseSpec)>) {
    let main = PhaseSpec {
        name: "main".into(),
        mode: plan.mode,
        rate: plan.rate,
        duration: plan.duration(),
        concurrency: plan.concurrency,
        max_in_flight: plan.max_in_flight,
        expect_shedding: plan.expect_shedding,
        max_error_rate: plan.max_error_rate,
        follow: plan.follow_completion,
    };
    let recovery = plan.recovery.as_ref().map(|r| {
        (
            Duration::from_secs_f64(r.settle_s),
            PhaseSpec {
                name: "recovery".into(),
                mode: Mode::Open,
                rate: r.rate,
                duration: Duration::from_secs_f64(r.duration_s),
                concurrency: plan.concurrency,
                max_in_flight: plan.max_in_flight,
                expect_shedding: false,
                max_error_rate: r.max_error_rate.unwrap_or(plan.max_error_rate),
                follow: plan.follow_completion,
            },
        )
    });
    (main, recovery)
}

/// Every check of a run's phases.
pub fn judge(phases: &[PhaseResult]) -> Verdict {
    let mut checks = Vec::new();
    for p in phases {
        let name = &p.spec.name;
        checks.extend(verdict::series_checks(name, &p.ack));
        if let Some(c) = &p.completion {
            checks.extend(verdict::series_checks(name, &c.series));
        }
        if let Some(v) = &p.views {
            checks.extend(verdict::series_checks(name, &v.series));
        }
        checks.push(verdict::error_check(
            name,
            p.errors(),
            p.attempted,
            p.spec.max_error_rate,
        ));
    }
    Verdict::of(checks)
}

/// Runs a load test; the exit code is 0 when every CoCo limit held and errors stayed under the
/// threshold, 1 otherwise. Ctrl-C stops sending early; the report covers what was sent.
pub async fn run(args: LoadArgs) -> Result<u8, LoadError> {
    let cancel = CancellationToken::new();
    let on_ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping, the report covers what was sent");
                cancel.cancel();
            }
        })
    };
    let result = run_until(args, cancel).await;
    on_ctrl_c.abort();
    result
}

/// [`run`] without a signal handler: sending stops early when `cancel` is cancelled. For
/// callers that handle signals themselves (and tests, where a SIGINT handler would outlive the
/// run).
pub async fn run_until(args: LoadArgs, cancel: CancellationToken) -> Result<u8, LoadError> {
    let scenario = match &args.scenario {
        Some(p) => Some((p.as_path(), Scenario::load(p)?)),
        None => None,
    };
    let started = chrono::Utc::now();
    let machine = Machine::detect();
    let plan = Plan::resolve(&args, scenario, |name| {
        default_out(&started, &machine, name)
    })?;

    let ctx = Arc::new(context(&plan, cancel).await?);
    if !plan.quiet {
        eprintln!(
            "load `{}` against {} ({} members); results in {}",
            plan.name,
            plan.target,
            ctx.members.len(),
            plan.out.display()
        );
    }
    let mut results = run_finds(&plan, &ctx).await?;
    if plan.view_rate > 0.0 && !ctx.cancel.is_cancelled() {
        if let (Some(c), Some(last)) = (&ctx.control, results.last_mut()) {
            last.views = Some(run_views(&plan, c, &ctx.cancel).await?);
        }
    }

    let verdict = judge(&results);
    let code = verdict.exit_code();
    let report = Report {
        tool: "pdp-provider load",
        version: env!("CARGO_PKG_VERSION"),
        scenario: plan.name.clone(),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        machine,
        config: plan.clone(),
        phases: results.iter().map(PhaseReport::of).collect(),
        verdict,
    };
    report.write(&plan.out, &results)?;
    println!("{}", report.summary_md());
    println!("written to {}", plan.out.display());
    Ok(code)
}

/// What the phases of a run share: the members and the mix over them, the PFS's clients, the
/// CAS simulator's control listener (and the PeIs it has already registered, so that a followed
/// find is a new one).
async fn context(plan: &Plan, cancel: CancellationToken) -> Result<Ctx, LoadError> {
    let members = Arc::new(match &plan.members {
        Some(p) => mix::read_members(p)?,
        None => mix::generate_members(plan.seed, plan.member_count),
    });
    let control = plan.cas_control.as_deref().map(Control::new).transpose()?;
    let registered = match (&control, plan.follow_completion) {
        (Some(c), true) => c.registered_peis().await?,
        _ => HashSet::new(),
    };
    let picker = mix::Picker::new(
        plan.seed,
        plan.mix,
        &members,
        plan.completion_sample,
        &registered,
    )?;
    let url = format!("{}/find-requests", plan.target);
    let connector = client::Connector::new(
        &url,
        &plan.certs.join(files::CA),
        &plan.certs.join(files::PFS),
        &plan.certs.join(files::PFS_KEY),
        Duration::from_millis(plan.request_timeout_ms),
    )
    .await?;
    Ok(Ctx {
        clients: clients(plan)?,
        connector,
        url,
        finds: request::Finds::new(members.clone()),
        members,
        picker: Mutex::new(picker),
        control,
        quiet: plan.quiet,
        cancel,
        run_start: tokio::time::Instant::now(),
    })
}

/// Sends the finds: the main phase, then (unless cancelled) the recovery phase once it has
/// settled; the plan's CAS faults are set before and cleared after.
async fn run_finds(plan: &Plan, ctx: &Arc<Ctx>) -> Result<Vec<PhaseResult>, LoadError> {
    let faults_set = match (&ctx.control, &plan.cas_faults) {
        (Some(c), Some(f)) => {
            c.set_faults(&f.to_sim()).await?;
            true
        }
        _ => false,
    };

    let (main, recovery) = phases(plan);
    let mut results = vec![driver::run_phase(ctx, main).await];
    if let Some((settle, spec)) = recovery {
        if !ctx.cancel.is_cancelled() {
            tokio::select! {
                _ = tokio::time::sleep(settle) => {}
                _ = ctx.cancel.cancelled() => {}
            }
            results.push(driver::run_phase(ctx, spec).await);
        }
    }
    if faults_set {
        if let Some(c) = &ctx.control {
            if let Err(e) = c.clear_faults().await {
                eprintln!("warning: faults left set at the CAS simulator: {e}");
            }
        }
    }
    Ok(results)
}

/// The view phase after the finds: MaPS' dashboard views the PeIs registered at the CAS
/// simulator, at the plan's view rate for its duration.
async fn run_views(
    plan: &Plan,
    control: &Control,
    cancel: &CancellationToken,
) -> Result<views::Views, LoadError> {
    let guids = views::asset_guids(control).await?;
    let dashboard = pdp_sim::dashboard::Dashboard::new(
        &plan.target,
        &plan.cas_url,
        &plan.certs.join(files::CA),
        &plan.certs.join(files::DASHBOARD),
        &plan.certs.join(files::DASHBOARD_KEY),
    )?;
    Ok(views::run(
        dashboard,
        guids,
        plan.view_rate,
        plan.duration(),
        cancel,
        plan.quiet,
    )
    .await)
}

#[cfg(test)]
mod tests;
