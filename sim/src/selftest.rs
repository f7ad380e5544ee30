//! `pdp-provider selftest`: PDP's system test scenarios played against an endpoint whose CAS is
//! the simulator, judged on what the endpoint answered and what the simulator's call log shows,
//! with the evidence a test manager uploads (HTML and JSON).
//!
//! Without `--target` it starts the endpoint itself for the run (in-process, the configuration
//! given or the defaults, a fresh PKI, store and members in a temporary directory) with the
//! simulator as its CAS. With `--target` it tests an endpoint already running, whose CAS is the
//! simulator at `--sim` (its control listener), trusting and presenting the PKI in `--certs`;
//! that endpoint holds the selftest's members (`members generate --count 200 --seed 2027`), and
//! `--config` (its configuration) lets the selftest read how finds ended. `--oat` sends PDP's
//! operational acceptance test alone: one signed synthetic find that matches nobody.
//!
//! - [`catalogue`]: the cases, their IDs, titles and what each proves.
//! - [`runner`]: plays them, all at once, and records the exchanges.
//! - [`judge`]: the rules each case is judged by.
//! - [`reporting`]: the reporting cases (the endpoint's daily submissions, scripted faults).
//! - [`redact`]: what the report may show (no token, no personal data).
//! - [`report`]: the evidence, as JSON and HTML.

pub mod catalogue;
pub mod judge;
pub mod redact;
pub mod report;
pub mod reporting;
pub mod runner;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pdp_provider::config::Config;
use pdp_provider::store::{Store, StoreLimits};
use pdp_provider::tls::pki::files;

/// Options of `pdp-provider selftest`.
#[derive(Debug, Clone, clap::Args)]
pub struct SelftestArgs {
    /// List the cases and exit.
    #[arg(long)]
    pub list: bool,
    /// Only these cases (IDs, comma-separated; `S9` takes `S9.1` to `S9.5`).
    #[arg(long)]
    pub only: Option<String>,
    /// An endpoint already running (`https://host:port`); without it the selftest starts one.
    #[arg(long)]
    pub target: Option<String>,
    /// The PKI to trust and present (`certs init`'s files) with `--target`.
    #[arg(long, default_value = "certs")]
    pub certs: PathBuf,
    /// The CAS simulator's control listener (`http://host:port`) with `--target`.
    #[arg(long)]
    pub sim: Option<String>,
    /// The CAS simulator's base URL with `--target` (default: `https://127.0.0.1:8444`).
    #[arg(long)]
    pub cas: Option<String>,
    /// The endpoint's configuration: with `--target`, to read how finds ended from its store;
    /// without, the configuration the selftest's own endpoint runs on (its paths replaced).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// PDP's operational acceptance test alone (with `--target`).
    #[arg(long)]
    pub oat: bool,
    /// Where the JSON evidence goes.
    #[arg(long, default_value = "selftest-report.json")]
    pub json: PathBuf,
    /// Where the HTML evidence goes.
    #[arg(long, default_value = "selftest-report.html")]
    pub html: PathBuf,
}

/// Why the selftest could not run (a case that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// Config.
    #[error(transparent)]
    Config(#[from] pdp_provider::config::ConfigError),
    /// Starting the endpoint.
    #[error(transparent)]
    Start(#[from] pdp_provider::app::StartError),
    /// Starting the simulator.
    #[error(transparent)]
    Sim(#[from] crate::cas::SimError),
    /// PKI.
    #[error(transparent)]
    Tls(#[from] pdp_provider::tls::TlsError),
    /// Store.
    #[error(transparent)]
    Store(#[from] pdp_provider::store::StoreError),
    /// Member import.
    #[error(transparent)]
    Import(#[from] pdp_provider::members::import::ImportError),
    /// Data key.
    #[error(transparent)]
    Key(#[from] pdp_provider::sealed::SealError),
    /// The CAS client reporting uses.
    #[error(transparent)]
    Client(#[from] pdp_provider::tls::client::ClientError),
    /// Files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The report.
    #[error(transparent)]
    Report(#[from] report::ReportError),
}

/// Runs the selftest; the exit code is 1 when any case failed.
pub async fn run(args: SelftestArgs) -> Result<u8, SelftestError> {
    let cases = if args.oat {
        vec![catalogue::OAT]
    } else {
        catalogue::select(args.only.as_deref()).map_err(SelftestError::Usage)?
    };
    if args.list {
        for c in &cases {
            println!("{:<6} {}  [{}]", c.id, c.title, c.proves);
        }
        return Ok(0);
    }
    if args.oat && args.target.is_none() {
        return Err(SelftestError::Usage("--oat needs --target".into()));
    }
    let (outcomes, endpoint, certificate) = match &args.target {
        Some(target) => {
            let ctx = target_ctx(&args, target).await?;
            let cert = certificate(&ctx.certs, target).await;
            (
                runner::run(Arc::new(ctx), &cases).await,
                target.clone(),
                cert,
            )
        }
        None => own(&args, &cases).await?,
    };
    let report = report::Report::new(endpoint, certificate, outcomes);
    std::fs::write(&args.json, report.json()?)?;
    std::fs::write(&args.html, report.html()?)?;
    for c in &report.cases {
        let (mark, why) = match &c.verdict {
            judge::Verdict::Pass => ("pass", String::new()),
            judge::Verdict::Fail(r) => ("FAIL", format!(": {r}")),
        };
        println!("{:<6} {mark}  {}{why}", c.id, c.title);
    }
    println!(
        "{} of {} cases passed; evidence in {} and {}",
        report.summary.passed,
        report.summary.total,
        args.html.display(),
        args.json.display()
    );
    Ok(u8::from(report.summary.failed > 0))
}

/// The selftest's members with a NINO and one pension (what the finds describe: one PeI each,
/// so each CAS call of a find is its only one).
fn people() -> Vec<pdp_provider::members::record::MemberRecord> {
    let schemes = pdp_provider::members::generate::schemes(runner::SEED);
    (0..runner::MEMBERS)
        .map(|i| pdp_provider::members::generate::member(runner::SEED, i, &schemes))
        .filter(|m| m.nino.is_some() && m.pensions.len() == 1)
        .collect()
}

async fn target_ctx(args: &SelftestArgs, target: &str) -> Result<runner::Ctx, SelftestError> {
    let (store, reporter, budget) = match &args.config {
        Some(path) => {
            let config = Config::load(path)?;
            let key = pdp_provider::sealed::DataKey::load(&config.crypto)?;
            let store = Store::open(&config.store.path, key, StoreLimits::default())?;
            let reporter = reporter(&config, &store)?;
            let budget = config.workers.completion_budget_ms;
            (Some(store), Some(reporter), budget)
        }
        None => (None, None, Config::default().workers.completion_budget_ms),
    };
    Ok(runner::Ctx {
        endpoint: target.trim_end_matches('/').to_owned(),
        certs: args.certs.clone(),
        sim_control: args.sim.clone().map(|s| s.trim_end_matches('/').to_owned()),
        cas: args
            .cas
            .clone()
            .unwrap_or_else(|| "https://127.0.0.1:8444".into()),
        store,
        reporter,
        find_wait: Duration::from_millis(budget) + Duration::from_secs(10),
        people: people(),
    })
}

/// The endpoint's reporting as `report submit` runs it.
fn reporter(
    config: &Config,
    store: &Store,
) -> Result<pdp_provider::report::submit::Reporter, SelftestError> {
    Ok(pdp_provider::report::submit::Reporter {
        store: store.clone(),
        cas: Some(pdp_provider::cas::client::CasClient::new(
            &config.cas,
            store.clone(),
        )?),
        config: config.reporting.clone(),
        go_live: config.sla.go_live,
    })
}

/// Starts an endpoint for the run, with the simulator as its CAS, and plays `cases` on it.
async fn own(
    args: &SelftestArgs,
    cases: &[catalogue::Case],
) -> Result<(Vec<runner::Outcome>, String, report::Certificate), SelftestError> {
    let dir = std::env::temp_dir().join(format!("pdp-selftest-{}", uuid::Uuid::new_v4()));
    let certs = dir.join("certs");
    pdp_provider::keys::init_dev(&certs)?;
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("literal");
    config.server.listen = any;
    config.server.ops_listen = any;
    config.console.enabled = false;
    config.tls = crate::tls::sim_tls(&certs);
    config.store.backend = pdp_provider::config::Backend::Sqlite;
    config.store.path = dir.join("pdp.sqlite");
    config.crypto.data_key_file = Some(certs.join(files::DATA_KEY));
    config.crypto.data_key_env = None;
    config.cas.client_cert = certs.join(files::PROVIDER);
    config.cas.client_key = certs.join(files::PROVIDER_KEY);
    config.cas.ca = certs.join(files::CA);
    config.view.signing_key = certs.join(files::VIEW_SIGNING_KEY);
    // The selftest submits the reporting days itself (the R cases), as `report submit` does.
    config.reporting.enabled = false;
    let store = import(&dir, &config).await?;
    let cas = crate::cas::CasSim::start(any, any, &crate::tls::sim_tls(&certs)).await?;
    config.cas.base_url = cas.base_url();
    let budget = config.workers.completion_budget_ms;
    let reporter = reporter(&config, &store)?;
    let running = pdp_provider::app::start(config).await?;
    if let Some(jwks) = running.jwks() {
        cas.state.publish_jwks(&jwks);
    }
    let endpoint = format!("https://127.0.0.1:{}", running.addr.port());
    let ctx = runner::Ctx {
        endpoint: endpoint.clone(),
        certs: certs.clone(),
        sim_control: Some(format!("http://{}", cas.control_addr)),
        cas: cas.base_url(),
        store: Some(store),
        reporter: Some(reporter),
        find_wait: Duration::from_millis(budget) + Duration::from_secs(10),
        people: people(),
    };
    let outcomes = runner::run(Arc::new(ctx), cases).await;
    let cert = certificate(&certs, &endpoint).await;
    running.stop().await;
    cas.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok((outcomes, endpoint, cert))
}

/// Imports the selftest's members into the store the endpoint will open.
async fn import(dir: &Path, config: &Config) -> Result<Store, SelftestError> {
    let file = dir.join("members.jsonl");
    pdp_provider::members::generate::write_jsonl(
        std::fs::File::create(&file)?,
        runner::MEMBERS,
        runner::SEED,
    )?;
    let key = pdp_provider::sealed::DataKey::load(&config.crypto)?;
    let store = Store::open(&config.store.path, key, StoreLimits::default())?;
    pdp_provider::members::import::import_from_async(&file, &store, Default::default()).await?;
    Ok(store)
}

/// The endpoint's served certificate: its subject and expiry, read from the handshake.
async fn certificate(certs: &Path, endpoint: &str) -> report::Certificate {
    match served(certs, endpoint).await {
        Ok(c) => c,
        Err(why) => report::Certificate {
            subject: format!("not read: {why}"),
            not_after: String::new(),
        },
    }
}

async fn served(certs: &Path, endpoint: &str) -> Result<report::Certificate, String> {
    let config = pdp_provider::tls::client::rustls_client(
        &certs.join(files::CA),
        Some((&certs.join(files::PFS), &certs.join(files::PFS_KEY))),
    )
    .map_err(|e| e.to_string())?;
    let host = endpoint
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let tcp = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
    let name =
        tokio_rustls::rustls::pki_types::ServerName::try_from(name).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate served")?;
    let left = pdp_provider::tls::seconds_to_expiry(cert).unwrap_or_default();
    let not_after = chrono::Utc::now() + chrono::Duration::seconds(left);
    Ok(report::Certificate {
        subject: pdp_provider::tls::subject_of(cert),
        not_after: not_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}
