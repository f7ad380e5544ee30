//! The `pdp-provider` binary: clap subcommands only. `anyhow` and exit codes live here.

// The binary's functions stay short enough to read whole (clippy.toml: 100 lines).
#![warn(clippy::too_many_lines)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Exit status for a bad config or usage (sysexits EX_USAGE).
const EX_USAGE: u8 = 64;

#[derive(Parser)]
#[command(
    name = "pdp-provider",
    version,
    about = "A pensions dashboards provider endpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the endpoint.
    Serve {
        /// The config file.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Development certificates and keys.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Data keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Member records.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// Find requests, for operators.
    Finds {
        #[command(subcommand)]
        command: FindsCommand,
    },
    /// Simulators of the ecosystem.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// The operator console: create its first primary business contact; recover a locked-out
    /// organisation (unsuspend a user, reset a password or a second factor), audited.
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// Schemes (holdernames): suspend, resume, sever (CoCo3.2.5).
    Schemes {
        #[command(subcommand)]
        command: SchemesCommand,
    },
    /// PeIs, for operators: de-registration, flagged PeIs.
    Peis {
        #[command(subcommand)]
        command: PeisCommand,
    },
    /// Value calculations owed under the 3/10 working-day rule.
    Values {
        #[command(subcommand)]
        command: ValuesCommand,
    },
    /// Service levels from the audit trail.
    Sla {
        #[command(subcommand)]
        command: SlaCommand,
    },
    /// PDP reporting: the six daily submissions, planned downtime, possible matches.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The audit trail: forensic export, retention purge.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Take an online copy of the embedded store while the endpoint serves.
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Restore the embedded store from a backup, checked first (integrity, schema version, the
    /// data key on a sample of sealed values); the server must be stopped.
    Restore {
        /// The backup to restore.
        #[arg(long)]
        from: PathBuf,
        /// Move a store already at `store.path` aside (with its -wal and -shm) instead of
        /// refusing.
        #[arg(long)]
        replace: bool,
        /// Check the backup only (on a copy of it beside `store.path`, removed after); put
        /// nothing in place.
        #[arg(long)]
        check_only: bool,
        /// The config naming the store and the data keys.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Print the view data signing key's public JWK set (for onboarding with PDP).
    Jwks {
        /// The config naming the signing key.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// The endpoint with a simulated CAS and PFS around it, generated members, and a summary.
    Demo(pdp_sim::demo::DemoArgs),
    /// Load-test an endpoint as the PFS (open or closed loop); exits 1 on a missed limit.
    Load(Box<pdp_load::LoadArgs>),
    /// PDP's system test scenarios against an endpoint whose CAS is the simulator, with the
    /// evidence (HTML and JSON); exits 1 when any case fails.
    Selftest(Box<pdp_sim::selftest::SelftestArgs>),
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Print what would be sent for a day: one JSON body per call.
    Preview {
        /// The reporting day, `YYYY-MM-DD` (UTC).
        #[arg(long)]
        date: chrono::NaiveDate,
        /// Only this holdername.
        #[arg(long)]
        holdername: Option<uuid::Uuid>,
        /// As a correction.
        #[arg(long)]
        resubmit: bool,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Send a day's submissions (once: a day already sent is not sent again); exit 1 when any
    /// is refused or still pending.
    Submit {
        /// The reporting day, `YYYY-MM-DD` (UTC).
        #[arg(long)]
        date: chrono::NaiveDate,
        /// Send a correction (`correction`, `resubmission`) of every report of the day.
        #[arg(long)]
        resubmit: bool,
        /// The config naming the store and the CAS.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// What was sent, refused or is still to send (late days too); exit 1 when any needs
    /// attention.
    Status {
        /// From this reporting day (default: 30 days ago).
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Announce planned unavailability (5 working days' notice, CoCo2.2.1).
    Downtime {
        /// `find`, `view` or `both`.
        #[arg(long)]
        service: String,
        /// From, RFC 3339 or `YYYY-MM-DD`.
        #[arg(long)]
        from: String,
        /// To, RFC 3339 or `YYYY-MM-DD`.
        #[arg(long)]
        to: String,
        /// Why, as reported (letters, digits, space, `_`, `.`, `-`).
        #[arg(long)]
        reason: String,
        /// Only this holdername (default: all).
        #[arg(long)]
        holdername: Option<uuid::Uuid>,
        /// Less notice than CoCo2.2.1 asks: accepted, reported as unscheduled.
        #[arg(long)]
        emergency: bool,
        /// The config naming the store and the calendar.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Regulation 28(3): possible matches per holdername and how they ended.
    PossibleMatches {
        /// From, `YYYY-MM-DD` or RFC 3339.
        #[arg(long)]
        from: String,
        /// To, `YYYY-MM-DD` or RFC 3339.
        #[arg(long)]
        to: String,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum SlaCommand {
    /// The month's 99.9th percentiles, shares within limit, availability and counts; exits 1
    /// when a standard is missed.
    Report {
        /// `YYYY-MM`.
        #[arg(long)]
        month: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Audit records for a forensic request (CoCo3.2.4), JSON lines or CSV.
    Export {
        /// From (`YYYY-MM-DD` or RFC 3339), inclusive.
        #[arg(long)]
        from: String,
        /// To (`YYYY-MM-DD` or RFC 3339), exclusive.
        #[arg(long)]
        to: String,
        /// Only this transaction or find request ID (with its registrations and views).
        #[arg(long)]
        request_id: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: pdp_provider::audit::export::Format,
        /// Output file (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Delete audit records past `audit.retention_days` (the server also does this daily).
    Purge {
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Write the look-up IDs of the audit records of every hour that ended ten minutes ago, and
    /// of the records since up to 75 s ago, at once (upkeep does so as it goes; look-ups read
    /// the rest by time).
    WriteIds {
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PeisCommand {
    /// De-register a PeI at the CAS with a deletion reason valid for its match status.
    Deregister {
        /// The PeI's asset GUID.
        #[arg(long)]
        asset_guid: String,
        /// Why.
        #[arg(long, value_enum)]
        reason: pdp_provider::peis::DeletionReason,
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Resolve a reviewed possible match: yes (PATCH to match-yes) or no (de-register, match-no).
    Resolve {
        /// The PeI's asset GUID.
        #[arg(long)]
        asset_guid: String,
        /// The review's outcome.
        #[arg(long = "as", value_enum)]
        resolution: pdp_provider::peis::Resolution,
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// De-register, as match-timeout, possible matches unreviewed for
    /// `matching.possible_review_days`.
    ExpirePossible {
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// PeIs flagged "de-registration pending: notify PDP" (CoCo2.2.4).
    Flagged {
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ValuesCommand {
    /// Calculations due and overdue (and, with --all, completed ones).
    Report {
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
        /// Include completed calculations.
        #[arg(long)]
        all: bool,
    },
    /// Import calculated values (JSON lines: {"assetGuid", "calculationDate",
    /// "benefitIllustrations"}) and close their calculations.
    Import {
        /// The file.
        file: PathBuf,
        /// The config.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum MembersCommand {
    /// Add, update or remove member records (CSV or JSON lines; a JSON line
    /// `{"action": "remove", "memberId": ...}` removes one). A running endpoint picks the changes
    /// up without a restart; removed pensions' PeIs are de-registered (`asset-removed`). Bad
    /// records are listed by line and field.
    Import {
        /// The file (`.csv`, or JSON lines).
        file: PathBuf,
        /// The file is the whole membership: members it does not name are removed.
        #[arg(long)]
        snapshot: bool,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// A record may take a pension (asset GUID) another member holds: it is taken from that
        /// member, whose PeIs are de-registered (`asset-removed`). Without it, such a record is
        /// refused, naming both members.
        #[arg(long)]
        move_pensions: bool,
        /// The config naming the store, data key and CAS.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Write synthetic members as JSON lines.
    Generate {
        /// How many members.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// The output file (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed: the same seed gives the same members and asset GUIDs.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Create the first primary business contact (refused once one exists); the password is
    /// read from the environment variable named by --password-env (never an argument).
    CreatePbc {
        /// Sign-in name.
        #[arg(long)]
        username: String,
        /// Full name, as PDP holds it.
        #[arg(long)]
        name: String,
        /// Contact email, as PDP holds it.
        #[arg(long)]
        email: String,
        /// The environment variable holding the password (at least 12 characters).
        #[arg(long, default_value = "PDP_CONSOLE_PASSWORD")]
        password_env: String,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Lift a user's suspension (audited).
    Unsuspend {
        /// The user's sign-in name.
        username: String,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Set a user's password (audited); read from the environment variable named by
    /// --password-env (never an argument). The user's sessions end.
    ResetPassword {
        /// The user's sign-in name.
        username: String,
        /// The environment variable holding the password (at least 12 characters).
        #[arg(long, default_value = "PDP_CONSOLE_PASSWORD")]
        password_env: String,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Remove a user's second factor and recovery codes (audited): they enrol again at their
    /// next sign-in. Their sessions end.
    ResetMfa {
        /// The user's sign-in name.
        username: String,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum SchemesCommand {
    /// Stop matching a scheme's members and serving its views (404), at once; reversible.
    Suspend {
        /// The scheme's holdername GUID.
        holdername: uuid::Uuid,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Serve a suspended scheme again.
    Resume {
        /// The scheme's holdername GUID.
        holdername: uuid::Uuid,
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Sever a scheme as PDP directs (CoCo3.2.5): suspended, its PeIs de-registered
    /// (`asset-removed`), its members removed.
    Sever {
        /// The scheme's holdername GUID.
        holdername: uuid::Uuid,
        /// The config naming the store and CAS.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// List schemes that are suspended or severed.
    List {
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum FindsCommand {
    /// List failed find requests with their reasons (CoCo2.2.6).
    Failed {
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
    /// Write years of ended finds and their audit records into the store, as an endpoint that
    /// ran for them would have left it, then tally their hours: for measuring at scale, never
    /// on a live store.
    SeedHistory {
        /// The config naming the store.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
        /// Finds to write.
        #[arg(long, default_value_t = 10_000_000)]
        finds: u64,
        /// Days they are spread over (six years by default).
        #[arg(long, default_value_t = 2_190)]
        days: u32,
        /// The day they end before (YYYY-MM-DD, UTC); by default, the hot table's day ago.
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Run the CAS simulator over mTLS, with a plain-HTTP control listener.
    Cas {
        /// mTLS address.
        #[arg(long, default_value = "127.0.0.1:8444")]
        listen: std::net::SocketAddr,
        /// Control address.
        #[arg(long, default_value = "127.0.0.1:8445")]
        control: std::net::SocketAddr,
        /// The dev PKI directory.
        #[arg(long, default_value = "certs")]
        certs: PathBuf,
        /// The provider's JWK set to publish at `/jwk_uri` (as `pdp-provider jwks` prints it);
        /// by default the public key of `<certs>/view-signing.key`, when present.
        #[arg(long)]
        jwks: Option<PathBuf>,
    },
    /// The bare hyper + tokio-rustls stack over the endpoint's mutual TLS, answering every
    /// request `202`: the reference `load-tests/ceiling.sh` measures the durable ACK against.
    Bare {
        /// mTLS address.
        #[arg(long, default_value = "127.0.0.1:8446")]
        listen: std::net::SocketAddr,
        /// The dev PKI directory.
        #[arg(long, default_value = "certs")]
        certs: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a development PKI (ecosystem CA, server, PFS, dashboard, provider, rogue CA), a data
    /// key and a view signing key.
    Init {
        /// Where to write.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a fresh AES-256 data key (64 hex digits).
    Init {
        /// The key file.
        #[arg(long, default_value = "certs/data.key")]
        file: PathBuf,
    },
    /// Re-seal everything stored with the active data key (after a new key was made active and
    /// the old one listed in `crypto.old_data_key_files`); resumable; exit 1 if a value no
    /// configured key opens was found.
    Rotate {
        /// The config naming the store and the keys.
        #[arg(long, default_value = "config/dev.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(default_log_level(&cli.command));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pdp-provider: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The log level when `RUST_LOG` is not set. The endpoint logs its running at `info`. Every other
/// command prints only its own output (the demo its summary), so the library's logs, the store's
/// migrations among them, show only from `warn` up.
fn default_log_level(command: &Command) -> &'static str {
    match command {
        Command::Serve { .. } => "info",
        _ => "warn",
    }
}

fn init_tracing(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("PDP_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Certs {
            command: CertsCommand::Init { dir },
        } => {
            pdp_provider::keys::init_dev(&dir).context("certs init")?;
            println!("wrote development PKI and data key to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { command } => keys(command),
        Command::Members { command } => members(command),
        Command::Schemes { command } => schemes(command),
        Command::Console { command } => console(command),
        Command::Finds {
            command: FindsCommand::Failed { config },
        } => {
            let config = load_config(&config)?;
            let failed = with_store(&config, |s| async move { s.failed().await })?;
            print!("{}", pdp_provider::pipeline::failed_table(&failed));
            Ok(ExitCode::SUCCESS)
        }
        Command::Finds {
            command:
                FindsCommand::SeedHistory {
                    config,
                    finds,
                    days,
                    until,
                    seed,
                },
        } => {
            let config = load_config(&config)?;
            runtime()?.block_on(async move {
                let store = open_store(&config).await?;
                let out = seed_history(&store, finds, (days, until), seed).await;
                store.close().await;
                out
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim {
            command:
                SimCommand::Cas {
                    listen,
                    control,
                    certs,
                    jwks,
                },
        } => {
            runtime()?.block_on(pdp_sim::cas::serve_standalone(
                listen,
                control,
                &certs,
                jwks.as_deref(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim {
            command: SimCommand::Bare { listen, certs },
        } => {
            runtime()?.block_on(pdp_sim::bare::serve(listen, &certs))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Peis { command } => peis(command),
        Command::Values { command } => values(command),
        Command::Sla { command } => sla(command),
        Command::Report { command } => report(command),
        Command::Audit { command } => audit(command),
        Command::Backup { to, config } => backup(&to, &config),
        Command::Restore {
            from,
            replace,
            check_only,
            config,
        } => restore(&from, replace, check_only, &config),
        Command::Jwks { config } => {
            let config = load_config(&config)?;
            let signer = pdp_provider::view_data::token::Signer::from_config(&config)?;
            println!("{}", serde_json::to_string_pretty(signer.jwks())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => Ok(ExitCode::from(runtime()?.block_on(pdp_load::run(*args))?)),
        Command::Demo(args) => Ok(ExitCode::from(
            runtime()?.block_on(pdp_sim::demo::run(args))?,
        )),
        Command::Selftest(args) => Ok(ExitCode::from(
            runtime()?.block_on(pdp_sim::selftest::run(*args))?,
        )),
    }
}

/// Exit 1 when `failed` is true: a target missed, something refused or overdue.
fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `serve`: the endpoint until SIGTERM or Ctrl-C; a bad config exits 64 before any port is bound.
fn serve(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = match pdp_provider::config::Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pdp-provider: {e}");
            return Ok(ExitCode::from(EX_USAGE));
        }
    };
    runtime()?.block_on(async move {
        let running = pdp_provider::app::start(config).await?;
        tokio::spawn(pdp_provider::shutdown::on_signal(running.shutdown_token()));
        running.run_until_shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `keys init|rotate`.
fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Init { file } => {
            pdp_provider::keys::write_new_key(&file)
                .context("keys init (the file must not exist yet)")?;
            println!("wrote data key to {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate { config } => {
            let config = load_config(&config)?;
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let out = with_store(&config, |s| async move {
                pdp_provider::keys::rotate(&s, progress).await
            })?;
            println!(
                "{} values re-sealed with the active key; {} no configured key opens",
                out.resealed, out.unreadable
            );
            Ok(exit_code(out.unreadable > 0))
        }
    }
}

/// `members import|generate`.
fn members(command: MembersCommand) -> anyhow::Result<ExitCode> {
    match command {
        MembersCommand::Import {
            file,
            snapshot,
            dry_run,
            move_pensions,
            config,
        } => {
            let config = load_config(&config)?;
            let rt = runtime()?;
            let store = rt.block_on(open_store(&config))?;
            let options = pdp_provider::members::import::Options {
                snapshot,
                dry_run,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                move_pensions,
            };
            let report = pdp_provider::members::import::import(&file, &store, rt.handle(), options)
                .map_err(|e| match e {
                    pdp_provider::members::import::ImportError::WrongKey { .. } => {
                        let key = data_key_source(&config.crypto);
                        anyhow::Error::from(e).context(format!("members import: data key {key}"))
                    }
                    e => e.into(),
                })?;
            for e in &report.errors {
                eprintln!("{}: {e}", file.display());
            }
            for m in &report.moved {
                println!("{}: {m}", file.display());
            }
            // Pensions gone or moved: their PeIs are de-registered at the CAS now.
            let gone = report.removed_pensions.len() + report.moved.len();
            let deregistered = if dry_run || gone == 0 {
                0
            } else {
                let cas = pdp_provider::cas::client::CasClient::new(&config.cas, store.clone())?;
                rt.block_on(pdp_provider::peis::sweep(&store, &cas))?
            };
            rt.block_on(store.close());
            println!("{}", report.summary(dry_run, deregistered));
            if report.snapshot_withheld {
                eprintln!(
                    "snapshot: records were refused, so no member was removed for being absent"
                );
            }
            Ok(exit_code(!report.errors.is_empty()))
        }
        MembersCommand::Generate { count, out, seed } => {
            match out {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    pdp_provider::members::generate::write_jsonl(f, count, seed)?;
                    eprintln!("wrote {count} members to {}", path.display());
                }
                None => {
                    pdp_provider::members::generate::write_jsonl(std::io::stdout(), count, seed)?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where the active data key comes from, named for an error (never the key itself).
fn data_key_source(crypto: &pdp_provider::config::CryptoConfig) -> String {
    match (&crypto.data_key_env, &crypto.data_key_file) {
        (Some(var), _) if std::env::var_os(var).is_some() => format!("environment variable {var}"),
        (_, Some(path)) => path.display().to_string(),
        _ => "(none configured)".into(),
    }
}

/// `peis deregister|resolve|expire-possible|flagged`.
fn peis(command: PeisCommand) -> anyhow::Result<ExitCode> {
    match command {
        PeisCommand::Deregister {
            asset_guid,
            reason,
            config,
        } => {
            let config = load_config(&config)?;
            let guid = asset_guid.clone();
            let out = with_cas(&config, |q, cas| async move {
                pdp_provider::peis::deregister(&q, &cas, &guid, reason).await
            })?;
            println!("{asset_guid}: {out:?}");
            Ok(exit_for(out))
        }
        PeisCommand::Resolve {
            asset_guid,
            resolution,
            config,
        } => {
            let config = load_config(&config)?;
            let guid = asset_guid.clone();
            let out = with_cas(&config, |q, cas| async move {
                pdp_provider::peis::resolve_possible(&q, &cas, &guid, resolution).await
            })?;
            println!("{asset_guid}: {resolution:?} ({out:?})");
            Ok(exit_for(out))
        }
        PeisCommand::ExpirePossible { config } => {
            let config = load_config(&config)?;
            let days = config.matching.possible_review_days;
            let n = with_cas(&config, |q, cas| async move {
                pdp_provider::peis::expire_possible(&q, &cas, days).await
            })?;
            println!("{n} possible matches de-registered as match-timeout");
            Ok(ExitCode::SUCCESS)
        }
        PeisCommand::Flagged { config } => {
            let config = load_config(&config)?;
            let flagged = with_store(&config, |s| async move { s.flagged().await })?;
            print!("{}", pdp_provider::peis::flagged_table(&flagged));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `values report|import`.
fn values(command: ValuesCommand) -> anyhow::Result<ExitCode> {
    match command {
        ValuesCommand::Report { config, all } => {
            let config = load_config(&config)?;
            let calculations = with_store(&config, |s| async move { s.calculations().await })?;
            let today = chrono::Utc::now().date_naive();
            let (table, overdue) =
                pdp_provider::view_data::values::report_table(&calculations, today, all);
            print!("{table}");
            println!("{overdue} overdue");
            Ok(exit_code(overdue > 0))
        }
        ValuesCommand::Import { file, config } => {
            let config = load_config(&config)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let out = with_store(&config, |s| async move {
                Ok::<_, std::convert::Infallible>(
                    pdp_provider::view_data::values::import_text(&s, &text).await,
                )
            })?;
            for (line, closed) in &out.imported {
                println!("line {line}: values imported; {closed} calculations closed");
            }
            for (line, e) in &out.refused {
                eprintln!("{}: line {line}: {e}", file.display());
            }
            println!(
                "{} imported, {} refused",
                out.imported.len(),
                out.refused.len()
            );
            Ok(exit_code(!out.refused.is_empty()))
        }
    }
}

/// `report ...`: PDP reporting.
fn report(command: ReportCommand) -> anyhow::Result<ExitCode> {
    use pdp_provider::report::{cli, submit::Reporter};
    let reporter = |config: &pdp_provider::config::Config, store, cas| Reporter {
        store,
        cas,
        config: config.reporting.clone(),
        go_live: config.sla.go_live,
    };
    match command {
        ReportCommand::Preview {
            date,
            holdername,
            resubmit,
            config,
        } => {
            let config = load_config(&config)?;
            let text = with_store(&config, |s| async {
                cli::preview(&reporter(&config, s, None), date, holdername, resubmit).await
            })?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Submit {
            date,
            resubmit,
            config,
        } => {
            let config = load_config(&config)?;
            let (out, bad) = with_store(&config, |s| async {
                let cas = pdp_provider::cas::client::CasClient::new(&config.cas, s.clone())?;
                cli::submit(&reporter(&config, s, Some(cas)), date, resubmit).await
            })?;
            println!("{}", serde_json::to_string(&out)?);
            Ok(exit_code(bad))
        }
        ReportCommand::Status { since, config } => {
            let config = load_config(&config)?;
            let since =
                since.unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Days::new(30));
            let (text, bad) = with_store(&config, |s| async {
                cli::status(&reporter(&config, s, None), since).await
            })?;
            print!("{text}");
            Ok(exit_code(bad))
        }
        ReportCommand::Downtime {
            service,
            from,
            to,
            reason,
            holdername,
            emergency,
            config,
        } => {
            let config = load_config(&config)?;
            let service = pdp_provider::model::Service::parse(&service)
                .context("--service: find, view or both")?;
            let announcement = pdp_provider::report::downtime::Announcement {
                service,
                holdername,
                from: parse_time(&from)?,
                to: parse_time(&to)?,
                reason,
                emergency,
            };
            let calendar = pdp_provider::report::downtime::calendar(&config);
            let nation = config.view.nation_of(holdername);
            let id = with_store(&config, |s| async move {
                pdp_provider::report::downtime::announce(
                    &s,
                    &calendar,
                    nation,
                    announcement,
                    pdp_provider::now_micros(),
                )
                .await
            })?;
            println!("window {id} announced");
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::PossibleMatches { from, to, config } => {
            let config = load_config(&config)?;
            let (from, to) = (parse_time(&from)?, parse_time(&to)?);
            let text = with_store(&config, |s| async {
                cli::possible_matches(&reporter(&config, s, None), from, to).await
            })?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `console create-pbc|unsuspend|reset-password|reset-mfa`.
fn console(command: ConsoleCommand) -> anyhow::Result<ExitCode> {
    use pdp_provider::console::recovery;
    let password = |env: &str| {
        std::env::var(env).map_err(|_| anyhow::anyhow!("{env} is not set: it holds the password"))
    };
    let (username, name, email, password_env, config) = match command {
        ConsoleCommand::CreatePbc {
            username,
            name,
            email,
            password_env,
            config,
        } => (username, name, email, password_env, config),
        ConsoleCommand::Unsuspend { username, config } => {
            let config = load_config(&config)?;
            with_store(&config, |s| async move {
                recovery::unsuspend(&s, &username).await
            })?;
            println!("unsuspended");
            return Ok(ExitCode::SUCCESS);
        }
        ConsoleCommand::ResetPassword {
            username,
            password_env,
            config,
        } => {
            let (config, password) = (load_config(&config)?, password(&password_env)?);
            with_store(&config, |s| async move {
                recovery::reset_password(&s, &username, password).await
            })?;
            println!("password set; the user's sessions have ended");
            return Ok(ExitCode::SUCCESS);
        }
        ConsoleCommand::ResetMfa { username, config } => {
            let config = load_config(&config)?;
            with_store(&config, |s| async move {
                recovery::reset_mfa(&s, &username).await
            })?;
            println!("second factor removed: the user enrols again at their next sign-in");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let (config, password) = (load_config(&config)?, password(&password_env)?);
    let id = with_store(&config, |s| async move {
        pdp_provider::console::create_first_pbc(&s, &username, &name, &email, password).await
    })?;
    println!("primary business contact created (user {id})");
    Ok(ExitCode::SUCCESS)
}

/// `sla report`: exits 1 when a standard was missed.
fn sla(command: SlaCommand) -> anyhow::Result<ExitCode> {
    let SlaCommand::Report {
        month,
        json,
        config,
    } = command;
    let config = load_config(&config)?;
    let go_live = config.sla.go_live;
    let report = with_store(&config, |s| async move {
        pdp_provider::sla::report(&s, &month, pdp_provider::now_micros(), go_live).await
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let missed = report.missed();
    if !missed.is_empty() {
        eprintln!("missed: {}", missed.join(", "));
    }
    Ok(exit_code(!missed.is_empty()))
}

/// `audit export|purge`.
fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Export {
            from,
            to,
            request_id,
            format,
            out,
            config,
        } => {
            let config = load_config(&config)?;
            let filter = pdp_provider::audit::export::Filter {
                from: parse_time(&from)?,
                to: parse_time(&to)?,
                request_id,
            };
            let sink: Box<dyn std::io::Write + Send> = match out {
                Some(path) => Box::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?,
                ),
                None => Box::new(std::io::stdout()),
            };
            let n = with_store(&config, |s| async move {
                pdp_provider::audit::export::export(&s, &filter, format, sink).await
            })?;
            eprintln!("exported {n} audit records");
        }
        AuditCommand::Purge { config } => {
            let config = load_config(&config)?;
            let days = config.audit.retention_days;
            let n = with_store(&config, |s| async move {
                pdp_provider::audit::export::purge(&s, days, pdp_provider::now_micros()).await
            })?;
            println!("purged {n} audit records older than {days} days");
        }
        AuditCommand::WriteIds { config } => {
            let config = load_config(&config)?;
            let now = pdp_provider::now_micros();
            let through = pdp_provider::upkeep::ids_through(now);
            let (spans, slices) = with_store(&config, |s| async move {
                let mut spans = 0;
                while let n @ 1.. = s.write_audit_ids(through, 100).await? {
                    spans += n;
                }
                let slices = s.write_recent_audit_ids(now).await?;
                Ok::<_, pdp_provider::store::StoreError>((spans, slices))
            })?;
            println!(
                "audit IDs written for look-ups: {spans} spans by week, {slices} recent slices"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup --to`: an online copy of the embedded store.
fn backup(to: &std::path::Path, config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    if config.store.backend != pdp_provider::config::Backend::Sqlite {
        anyhow::bail!(
            "backup: store.backend is postgres; back it up with PostgreSQL's own tools \
             (pg_basebackup, a synchronous standby: deploy/README.md)"
        );
    }
    let pace = pdp_provider::store::backup::Pace::default();
    let copied = runtime()?.block_on(pdp_provider::store::backup::backup(
        &config.store.path,
        to,
        pace,
    ))?;
    println!(
        "backup of {} written to {}: {} bytes in {:.1} s",
        config.store.path.display(),
        copied.path.display(),
        copied.bytes,
        copied.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `restore --from`: a checked backup put in place as the embedded store.
fn restore(
    from: &std::path::Path,
    replace: bool,
    check_only: bool,
    config: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    if config.store.backend != pdp_provider::config::Backend::Sqlite {
        anyhow::bail!("restore: store.backend is postgres; restore it with PostgreSQL's own tools");
    }
    let key = pdp_provider::sealed::DataKey::load(&config.crypto)
        .map_err(|e| format!("{} ({e})", data_key_source(&config.crypto)));
    use pdp_provider::store::backup::RestoreMode;
    let mode = match (check_only, replace) {
        (true, _) => RestoreMode::CheckOnly,
        (false, true) => RestoreMode::Replace,
        (false, false) => RestoreMode::New,
    };
    let target = &config.store.path;
    let out = runtime()?.block_on(pdp_provider::store::backup::restore(
        from, target, key, mode,
    ))?;
    let c = &out.checked;
    println!(
        "{}: integrity ok; schema migration {} (this binary's {}); {} sealed values opened \
         (data key ID {})",
        from.display(),
        c.schema,
        c.known,
        c.sampled,
        c.key_ids.join(", ")
    );
    if check_only {
        println!("checked only: nothing put in place");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &out.moved_aside {
        println!("moved aside: {}", p.display());
    }
    println!(
        "restored to {} in {:.1} s; start the server on it",
        target.display(),
        out.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the store an operator command works on.
async fn open_store(
    config: &pdp_provider::config::Config,
) -> anyhow::Result<pdp_provider::store::Store> {
    let key = pdp_provider::sealed::DataKey::load(&config.crypto)?;
    Ok(pdp_provider::store::Store::from_config(
        &config.store,
        key,
        pdp_provider::store::StoreLimits::default(),
    )
    .await?)
}

/// Runs an operator action on the store; everything it wrote is committed before returning.
fn with_store<T, E, F, Fut>(config: &pdp_provider::config::Config, f: F) -> anyhow::Result<T>
where
    F: FnOnce(pdp_provider::store::Store) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    runtime()?.block_on(async move {
        let store = open_store(config).await?;
        let out = f(store.clone()).await;
        store.close().await;
        Ok(out?)
    })
}

/// `finds seed-history`: writes the history with a progress line, then tallies its hours.
async fn seed_history(
    store: &pdp_provider::store::Store,
    finds: u64,
    (days, until): (u32, Option<chrono::NaiveDate>),
    seed: u64,
) -> anyhow::Result<()> {
    let now = pdp_provider::now_micros();
    let latest = pdp_load::history::latest(now);
    let end = until.map_or(latest, pdp_provider::day_start);
    anyhow::ensure!(end <= latest, "--until: at most the day before yesterday");
    let start = end - i64::from(days) * 86_400_000_000;
    let mut last = std::time::Instant::now();
    let seeded = pdp_load::history::seed(store, finds, (start, end), seed, |n| {
        if last.elapsed().as_secs() >= 5 || n == finds {
            last = std::time::Instant::now();
            eprint!("\r{n} of {finds} finds written");
        }
    })
    .await?;
    eprintln!();
    // The hours the history now fills are tallied and their audit IDs written again, every one.
    store.forget_derived().await?;
    let t = std::time::Instant::now();
    let mut hours = 0;
    loop {
        let n = pdp_provider::sla::tally_closed_hours(store, now).await?;
        // Into the database file as it goes: the write-ahead log stays small.
        store.checkpoint().await?;
        if n == 0 {
            break;
        }
        hours += n;
    }
    let tallied = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let through = pdp_provider::upkeep::ids_through(now);
    while store.write_audit_ids(through, 4).await? > 0 {
        store.checkpoint().await?;
    }
    let ids = t.elapsed().as_secs_f64();
    // Into the database file, so that the endpoint measured next does not copy it while it runs.
    store.checkpoint().await?;
    println!(
        "{} finds and {} audit records over {days} days in {:.1} s ({:.0} rows/s); \
         {hours} hours tallied in {tallied:.1} s; their audit IDs written in {ids:.1} s",
        seeded.finds,
        seeded.audit,
        seeded.seconds,
        (seeded.finds + seeded.audit) as f64 / seeded.seconds,
    );
    Ok(())
}

/// Runs an operator action that calls the CAS (its audit records go to the store).
fn with_cas<T, F, Fut>(config: &pdp_provider::config::Config, f: F) -> anyhow::Result<T>
where
    F: FnOnce(pdp_provider::store::Store, pdp_provider::cas::client::CasClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, pdp_provider::peis::DeregError>>,
{
    with_store(config, |store| async move {
        let cas = pdp_provider::cas::client::CasClient::new(&config.cas, store.clone())
            .map_err(pdp_provider::peis::DeregError::from)?;
        f(store, cas).await
    })
}

/// `schemes ...`: operator actions on a scheme.
fn schemes(command: SchemesCommand) -> anyhow::Result<ExitCode> {
    use pdp_provider::store::SchemeState;
    let (holdername, state, config) = match command {
        SchemesCommand::List { config } => {
            let config = load_config(&config)?;
            let inactive = with_store(&config, |s| async move { s.inactive_schemes().await })?;
            for (h, state) in &inactive {
                println!("{h}  {state}");
            }
            println!("{} schemes not active", inactive.len());
            return Ok(ExitCode::SUCCESS);
        }
        SchemesCommand::Suspend { holdername, config } => {
            (holdername, SchemeState::Suspended, config)
        }
        SchemesCommand::Resume { holdername, config } => (holdername, SchemeState::Active, config),
        SchemesCommand::Sever { holdername, config } => {
            let config = load_config(&config)?;
            let out = with_cas(&config, |store, cas| async move {
                pdp_provider::schemes::sever(&store, &cas, holdername).await
            })?;
            println!(
                "{holdername} severed: {} PeIs de-registered, {} failed, {} members removed",
                out.deregistered, out.failed, out.members_removed
            );
            return Ok(exit_code(out.failed > 0));
        }
    };
    let config = load_config(&config)?;
    with_store(&config, |store| async move {
        pdp_provider::schemes::set(&store, holdername, state).await
    })?;
    println!("{holdername} {state}");
    Ok(ExitCode::SUCCESS)
}

/// Exit 1 when a PeI had to be flagged for PDP.
fn exit_for(out: pdp_provider::peis::Deregistered) -> ExitCode {
    if out == pdp_provider::peis::Deregistered::FlaggedPatExpired {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339, as µs since the epoch.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(pdp_provider::day_start(d));
    }
    Ok(chrono::DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("{s}: expected YYYY-MM-DD or RFC 3339"))?
        .timestamp_micros())
}

fn load_config(path: &std::path::Path) -> anyhow::Result<pdp_provider::config::Config> {
    pdp_provider::config::Config::load(path).map_err(|e| anyhow::anyhow!(e))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
