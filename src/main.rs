//! The `pdp-provider` binary: clap subcommands only. `anyhow` and exit codes live here.

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
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a development PKI (ecosystem CA, server, PFS, dashboard, provider, rogue CA) and data key.
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pdp-provider: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
        Command::Serve { config } => {
            let config = match pdp_provider::config::Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("pdp-provider: {e}");
                    return Ok(ExitCode::from(EX_USAGE));
                }
            };
            runtime()?.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Certs {
            command: CertsCommand::Init { dir },
        } => {
            pdp_provider::tls::pki::init(&dir).context("certs init")?;
            println!("wrote development PKI and data key to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::Init { file },
        } => {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&file, pdp_provider::store::sealed::DataKey::generate_hex())
                .with_context(|| format!("writing {}", file.display()))?;
            println!("wrote data key to {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn serve(config: pdp_provider::config::Config) -> anyhow::Result<()> {
    let running = pdp_provider::app::start(config).await?;
    tokio::spawn(pdp_provider::shutdown::on_signal(running.shutdown_token()));
    running.run_until_shutdown().await;
    Ok(())
}
