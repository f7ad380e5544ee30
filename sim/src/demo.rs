//! `pdp-provider demo`: the endpoint on the embedded default, with a simulated ecosystem.
//!
//! It writes the dev PKI if there is none, generates and imports members, starts the CAS
//! simulator and the endpoint, sends find requests as the PFS would (a mix that matches,
//! possibly matches and does not match), waits for them to be registered, prints a summary,
//! and keeps serving until Ctrl-C (or exits with `--exit`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pdp_provider::config::{Config, ConfigError, TlsConfig};
use pdp_provider::members::generate::{self, FindKind};
use pdp_provider::store::{FindState, Store, StoreLimits};
use pdp_provider::tls::pki::files;

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
    /// Data key.
    #[error(transparent)]
    Key(#[from] pdp_provider::store::sealed::SealError),
}

/// The TLS config of a simulator: the dev server certificate, the dev CA for clients.
pub fn sim_tls(certs: &Path) -> TlsConfig {
    TlsConfig {
        cert: certs.join(files::SERVER),
        key: certs.join(files::SERVER_KEY),
        client_ca: certs.join(files::CA),
    }
}

/// Runs the demo; the exit code is non-zero if a find did not end as expected.
pub async fn run(args: DemoArgs) -> Result<u8, DemoError> {
    if !args.certs.join(files::CA).exists() {
        pdp_provider::tls::pki::init(&args.certs)?;
        println!("wrote a development PKI to {}", args.certs.display());
    }
    std::fs::create_dir_all(&args.dir)?;
    let mut config = Config::load(&args.config)?;
    config.store.path = args.dir.join("pdp.sqlite");
    // Every party uses the dev PKI in `--certs`.
    config.tls = sim_tls(&args.certs);
    config.crypto.data_key_file = Some(args.certs.join(files::DATA_KEY));
    config.crypto.data_key_env = None;
    config.cas.client_cert = args.certs.join(files::PROVIDER);
    config.cas.client_key = args.certs.join(files::PROVIDER_KEY);
    config.cas.ca = args.certs.join(files::CA);
    config.view.signing_key = args.certs.join(files::VIEW_SIGNING_KEY);

    // Members: generated once, imported into the store.
    let seed = 42;
    let member_file = args.dir.join("members.jsonl");
    if !member_file.exists() {
        generate::write_jsonl(std::fs::File::create(&member_file)?, args.members, seed)?;
    }
    let key = pdp_provider::store::sealed::DataKey::load(&config.crypto)?;
    // The demo's own handle on the store: member import now, find states later.
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

    // The simulated CAS where the config expects it.
    let cas_addr = config
        .cas
        .base_url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| "127.0.0.1:8444".parse().expect("literal"));
    let control: std::net::SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let cas = crate::cas::CasSim::start(cas_addr, control, &sim_tls(&args.certs)).await?;
    config.cas.base_url = cas.base_url();
    println!(
        "CAS simulator on {} (control http://{})",
        cas.base_url(),
        cas.control_addr
    );

    let running = pdp_provider::app::start(config.clone()).await?;
    // PDP publishes the provider's signing key at the CAS jwk_uri at onboarding.
    if let Some(jwks) = running.jwks() {
        cas.state.publish_jwks(&jwks);
    }
    let base = format!("https://127.0.0.1:{}", running.addr.port());
    println!("endpoint on {base} (ops http://{})", running.ops_addr);
    let pfs = crate::pfs::Pfs::new(
        &base,
        &args.certs.join(files::CA),
        &args.certs.join(files::PFS),
        &args.certs.join(files::PFS_KEY),
    )?;

    // Find requests: yes, possible, no, in turn.
    let schemes = generate::schemes(seed);
    let mut sent = Vec::new();
    let mut ack_ms = Vec::new();
    for i in 0..args.finds {
        let kind = [FindKind::Yes, FindKind::Possible, FindKind::No][i % 3];
        let mut n = (i as u64 * 7919) % args.members.max(1);
        let mut member = generate::member(seed, n, &schemes);
        while member.nino.is_none() {
            n = (n + 1) % args.members.max(1);
            member = generate::member(seed, n, &schemes);
        }
        let sub = uuid::Uuid::new_v4().to_string();
        let body = generate::find_for(&member, kind, &sub);
        let t = Instant::now();
        let answer = pfs.find(&body).await;
        ack_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        sent.push((answer, kind, member.pensions.len()));
    }

    // Wait for every find to reach its end.
    let deadline = Instant::now() + Duration::from_secs(70);
    let ended = |s: FindState| matches!(s, FindState::Done | FindState::Failed);
    loop {
        let mut open = 0;
        for (a, _, _) in &sent {
            let row = store.find_request(&a.request_id).await.ok().flatten();
            if row.is_none_or(|f| !ended(f.state)) {
                open += 1;
            }
        }
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!();
    println!(
        "{:<36}  {:<9}  {:<4}  {:<15}  {:>12}",
        "request_id", "sent as", "ACK", "outcome", "ACK→done ms"
    );
    let mut as_expected = 0;
    for (a, kind, _) in &sent {
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
    ack_ms.sort_by(f64::total_cmp);
    let registered = cas.state.registrations().len();
    println!();
    println!(
        "{} finds ACKed ({} as expected); {} PeIs registered at the CAS simulator",
        sent.iter().filter(|(a, _, _)| a.status == 202).count(),
        as_expected,
        registered
    );
    if let (Some(first), Some(last)) = (ack_ms.first(), ack_ms.last()) {
        println!(
            "ACK latency: min {first:.1} ms, median {:.1} ms, max {last:.1} ms",
            ack_ms[ack_ms.len() / 2]
        );
    }
    let code = if as_expected == sent.len() { 0 } else { 1 };
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
