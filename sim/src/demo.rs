//! `pdp-provider demo`: the endpoint on the embedded default, with a simulated ecosystem.
//!
//! It writes the dev PKI if there is none, writes the config it runs to `--dir` (`demo.toml`:
//! `--config` with the demo's store, the dev PKI and the operator console on), generates and
//! imports members, starts the CAS simulator and the endpoint with its console, sends find
//! requests as the PFS would (a mix that matches, possibly matches and does not match), waits
//! for them to be registered, prints a summary, the console's address and the command that
//! creates its first user (against `demo.toml`, so the demo's store), and keeps serving until
//! Ctrl-C (or exits with `--exit`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pdp_provider::config::{Config, ConfigError};
use pdp_provider::members::generate::{self, FindKind};
use pdp_provider::store::{FindState, Store, StoreLimits};
use pdp_provider::tls::pki::files;

use crate::pfs::FindAnswer;
use crate::tls::sim_tls;

/// Options of `pdp-provider demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// The endpoint config (its store path is replaced by `--dir`).
    #[arg(long, default_value = "config/dev.toml")]
    pub config: PathBuf,
    /// The dev PKI directory (written if empty).
    #[arg(long, default_value = "certs")]
    pub certs: PathBuf,
    /// Where the demo keeps its store and member file.
    #[arg(long, default_value = "data/demo")]
    pub dir: PathBuf,
    /// Members to generate.
    #[arg(long, default_value_t = 2000)]
    pub members: u64,
    /// Find requests to send.
    #[arg(long, default_value_t = 30)]
    pub finds: usize,
    /// Exit after the summary instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Starting a server.
    #[error(transparent)]
    Start(#[from] pdp_provider::app::StartError),
    /// Starting the CAS simulator.
    #[error(transparent)]
    Sim(#[from] crate::cas::SimError),
    /// PKI.
    #[error(transparent)]
    Tls(#[from] pdp_provider::tls::TlsError),
    /// The simulated PFS's client.
    #[error(transparent)]
    Client(#[from] pdp_provider::tls::client::ClientError),
    /// Store.
    #[error(transparent)]
    Store(#[from] pdp_provider::store::StoreError),
    /// Member import.
    #[error(transparent)]
    Import(#[from] pdp_provider::members::import::ImportError),
    /// Files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The config written for the demo.
    #[error("{path}: {reason}")]
    DemoConfig {
        /// The config read.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Data key.
    #[error(transparent)]
    Key(#[from] pdp_provider::sealed::SealError),
}

/// The seed of the demo's members and schemes: the same people on every run.
const SEED: u64 = 42;

/// Runs the demo; the exit code is non-zero if a find did not end as expected.
pub async fn run(args: DemoArgs) -> Result<u8, DemoError> {
    let mut config = demo_config(&args)?;
    let store = import_members(&args, &config).await?;
    let cas = start_cas(&mut config, &args.certs).await?;
    let (running, pfs) = start_endpoint(config, &args.certs, &cas).await?;
    let console_addr = running.console_addr;
    let mut sent = send_finds(&pfs, args.finds, args.members).await;
    wait_for_ends(&store, &sent.finds).await;
    let as_expected = print_outcomes(&store, &sent.finds).await?;
    sent.print_totals(as_expected, cas.state.registrations().len());
    let code = if as_expected == sent.finds.len() {
        0
    } else {
        1
    };
    print_console(console_addr, &args.dir);
    if !args.exit {
        println!();
        println!(
            "serving; metrics at http://{}/metrics; Ctrl-C to stop",
            running.ops_addr
        );
        let token = running.shutdown_token();
        tokio::spawn(pdp_provider::shutdown::on_signal(token));
        running.run_until_shutdown().await;
    } else {
        running.stop().await;
    }
    cas.stop();
    store.close().await;
    Ok(code)
}

/// The name of the config the demo writes to `--dir` and runs.
pub const DEMO_CONFIG: &str = "demo.toml";

/// The endpoint config the demo runs: `--config`, with the dev PKI in `--certs` (written if
/// missing) for every party, the store in `--dir` and the operator console on; written to
/// `--dir`/[`DEMO_CONFIG`] first, so that the commands an operator runs against the demo
/// (`console create-pbc --config data/demo/demo.toml`) open the demo's store.
fn demo_config(args: &DemoArgs) -> Result<Config, DemoError> {
    if !args.certs.join(files::CA).exists() {
        pdp_provider::keys::init_dev(&args.certs)?;
        println!("wrote a development PKI to {}", args.certs.display());
    }
    std::fs::create_dir_all(&args.dir)?;
    let bad = |reason: String| DemoError::DemoConfig {
        path: args.config.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&args.config)?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let path = |p: PathBuf| toml::Value::String(p.display().to_string());
    let (certs, dir) = (&args.certs, &args.dir);
    let tls = sim_tls(certs);
    // Every party uses the dev PKI in `--certs`.
    for (section, key, value) in [
        ("store", "path", path(dir.join("pdp.sqlite"))),
        ("tls", "cert", path(tls.cert)),
        ("tls", "key", path(tls.key)),
        ("tls", "client_ca", path(tls.client_ca)),
        ("crypto", "data_key_file", path(certs.join(files::DATA_KEY))),
        ("cas", "client_cert", path(certs.join(files::PROVIDER))),
        ("cas", "client_key", path(certs.join(files::PROVIDER_KEY))),
        ("cas", "ca", path(certs.join(files::CA))),
        (
            "view",
            "signing_key",
            path(certs.join(files::VIEW_SIGNING_KEY)),
        ),
        ("console", "enabled", toml::Value::Boolean(true)),
    ] {
        let t = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let t = t
            .as_table_mut()
            .ok_or_else(|| bad(format!("[{section}] is not a table")))?;
        t.insert(key.to_owned(), value);
    }
    if let Some(crypto) = table.get_mut("crypto").and_then(|c| c.as_table_mut()) {
        crypto.remove("data_key_env");
    }
    let written = dir.join(DEMO_CONFIG);
    let body = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
    std::fs::write(
        &written,
        format!(
            "# Written by `pdp-provider demo` from {}: the config the demo runs.\n{body}",
            args.config.display()
        ),
    )?;
    Ok(Config::load(&written)?)
}

/// Prints the console's address and how to create its first user.
fn print_console(addr: Option<std::net::SocketAddr>, dir: &Path) {
    let Some(addr) = addr else {
        return;
    };
    println!();
    println!("operator console on https://{addr} (the dev CA in --certs signs its certificate)");
    println!("create its first user (a primary business contact), then sign in and enrol an");
    println!("authenticator app from the QR code shown:");
    println!(
        "  PDP_CONSOLE_PASSWORD='a long passphrase' pdp-provider console create-pbc \\\n    \
         --config {} --username pbc --name 'Pat Business' --email pbc@example.invalid",
        dir.join(DEMO_CONFIG).display()
    );
}

/// Opens the demo's own handle on the store (member import now, find states later), with the
/// members generated once into `--dir` and imported if the store has none.
async fn import_members(args: &DemoArgs, config: &Config) -> Result<Store, DemoError> {
    let member_file = args.dir.join("members.jsonl");
    if !member_file.exists() {
        generate::write_jsonl(std::fs::File::create(&member_file)?, args.members, SEED)?;
    }
    let key = pdp_provider::sealed::DataKey::load(&config.crypto)?;
    let store = Store::open(&config.store.path, key, StoreLimits::default())?;
    if store.member_count().await? == 0 {
        let report = pdp_provider::members::import::import_from_async(
            &member_file,
            &store,
            pdp_provider::members::import::Options::default(),
        )
        .await?;
        println!(
            "imported {} members ({} pensions)",
            report.loaded(),
            report.pensions
        );
    }
    Ok(store)
}

/// Starts the simulated CAS where the config expects it, and points the config at it.
async fn start_cas(config: &mut Config, certs: &Path) -> Result<crate::cas::CasSim, DemoError> {
    let cas_addr = config
        .cas
        .base_url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| "127.0.0.1:8444".parse().expect("literal"));
    let control: std::net::SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let cas = crate::cas::CasSim::start(cas_addr, control, &sim_tls(certs)).await?;
    config.cas.base_url = cas.base_url();
    println!(
        "CAS simulator on {} (control http://{})",
        cas.base_url(),
        cas.control_addr
    );
    Ok(cas)
}

/// Starts the endpoint, publishes its signing key at the CAS, and returns it with the simulated
/// PFS that calls it.
async fn start_endpoint(
    config: Config,
    certs: &Path,
    cas: &crate::cas::CasSim,
) -> Result<(pdp_provider::app::Running, crate::pfs::Pfs), DemoError> {
    let running = pdp_provider::app::start(config).await?;
    // PDP publishes the provider's signing key at the CAS jwk_uri at onboarding.
    if let Some(jwks) = running.jwks() {
        cas.state.publish_jwks(&jwks);
    }
    let base = format!("https://127.0.0.1:{}", running.addr.port());
    println!("endpoint on {base} (ops http://{})", running.ops_addr);
    let pfs = crate::pfs::Pfs::new(
        &base,
        &certs.join(files::CA),
        &certs.join(files::PFS),
        &certs.join(files::PFS_KEY),
    )?;
    Ok((running, pfs))
}

/// One find request the simulated PFS sent.
struct SentFind {
    /// What the endpoint answered.
    answer: FindAnswer,
    /// The outcome it was built to have.
    kind: FindKind,
}

/// The find requests the demo sent, in order, and how long each took to be ACKed.
struct Sent {
    /// Each find request, in the order sent.
    finds: Vec<SentFind>,
    /// Each ACK's latency in milliseconds, in the order sent.
    ack_ms: Vec<f64>,
}

// === impl Sent ===

impl Sent {
    /// Prints the totals under the table: finds ACKed, as expected, PeIs registered, and the
    /// ACK latency's spread.
    fn print_totals(&mut self, as_expected: usize, registered: usize) {
        self.ack_ms.sort_by(f64::total_cmp);
        println!();
        println!(
            "{} finds ACKed ({} as expected); {} PeIs registered at the CAS simulator",
            self.finds.iter().filter(|f| f.answer.status == 202).count(),
            as_expected,
            registered
        );
        if let (Some(first), Some(last)) = (self.ack_ms.first(), self.ack_ms.last()) {
            println!(
                "ACK latency: min {first:.1} ms, median {:.1} ms, max {last:.1} ms",
                self.ack_ms[self.ack_ms.len() / 2]
            );
        }
    }
}

/// Sends `count` find requests (yes, possible, no, in turn) for members among the first
/// `members` that have a NINO.
async fn send_finds(pfs: &crate::pfs::Pfs, count: usize, members: u64) -> Sent {
    let schemes = generate::schemes(SEED);
    let mut sent = Sent {
        finds: Vec::new(),
        ack_ms: Vec::new(),
    };
    for i in 0..count {
        let kind = [FindKind::Yes, FindKind::Possible, FindKind::No][i % 3];
        let mut n = (i as u64 * 7919) % members.max(1);
        let mut member = generate::member(SEED, n, &schemes);
        while member.nino.is_none() {
            n = (n + 1) % members.max(1);
            member = generate::member(SEED, n, &schemes);
        }
        let sub = uuid::Uuid::new_v4().to_string();
        let body = generate::find_for(&member, kind, &sub);
        let t = Instant::now();
        let answer = pfs.find(&body).await;
        sent.ack_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        sent.finds.push(SentFind { answer, kind });
    }
    sent
}

/// Waits (up to 70 s) for every find to reach its end: done or failed.
async fn wait_for_ends(store: &Store, finds: &[SentFind]) {
    let deadline = Instant::now() + Duration::from_secs(70);
    let ended = |s: FindState| matches!(s, FindState::Done | FindState::Failed);
    loop {
        let mut open = 0;
        for f in finds {
            let row = store
                .find_request(&f.answer.request_id)
                .await
                .ok()
                .flatten();
            if row.is_none_or(|f| !ended(f.state)) {
                open += 1;
            }
        }
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints a row per find (its ACK, its outcome, how long from ACK to done) and returns how many
/// ended as they were built to.
async fn print_outcomes(store: &Store, finds: &[SentFind]) -> Result<usize, DemoError> {
    println!();
    println!(
        "{:<36}  {:<9}  {:<4}  {:<15}  {:>12}",
        "request_id", "sent as", "ACK", "outcome", "ACK→done ms"
    );
    let mut as_expected = 0;
    for SentFind { answer: a, kind } in finds {
        let row = store.find_request(&a.request_id).await?;
        let (outcome, took) = match &row {
            Some(f) if f.state == FindState::Failed => (
                format!("failed: {}", f.reason.clone().unwrap_or_default()),
                None,
            ),
            Some(f) => (
                f.outcome
                    .map_or_else(|| f.state.to_string(), |o| o.to_string()),
                f.completed_ms(),
            ),
            None => ("not stored".into(), None),
        };
        let expected = match kind {
            FindKind::Yes => "match-yes",
            FindKind::Possible => "match-possible",
            FindKind::No => "no-match",
        };
        if outcome == expected {
            as_expected += 1;
        }
        println!(
            "{:<36}  {:<9}  {:<4}  {:<15}  {:>12}",
            a.request_id,
            format!("{kind:?}"),
            a.status,
            outcome,
            took.map_or("-".into(), |t| format!("{t:.0}"))
        );
    }
    Ok(as_expected)
}
