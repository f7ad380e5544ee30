//! The shared backend: PostgreSQL, for several instances of the endpoint on one database.
//!
//! - Durability: every connection runs with `synchronous_commit = on`, so a commit returns only
//!   once its WAL is flushed. Find appends and audit records ride the group commits of one writer
//!   task ([`writer`]): one transaction per batch of concurrent finds, the ACKs after it returns.
//! - Several instances: a find is claimed with `FOR UPDATE SKIP LOCKED` under a lease, so one
//!   instance works it at a time and another resumes it once the lease has run out; a repeated
//!   X-Request-ID conflicts on the primary key whichever instance receives it; migrations run
//!   under an advisory lock, so instances starting together apply each once; daily jobs take
//!   their day's row in `daily_runs`.
//! - Every other unit of work runs on a pooled connection: a lone statement by itself, several
//!   in one transaction (PostgreSQL groups the WAL flushes of concurrent commits itself).

mod tx;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::db::Database;
use super::group_commit::{Front, GroupCommit};
use super::schema::{self, Dialect};
use super::sql::{Access, Erased, Work};
use super::{Result, StoreError, StoreLimits};
use tx::PgTx;

/// The shared backend.
pub(super) struct Postgres {
    pool: Pool,
    front: Front<std::convert::Infallible>,
}

impl Postgres {
    /// Connects, applies the migrations, and starts the writer task.
    pub(super) async fn connect(options: &PostgresOptions, limits: StoreLimits) -> Result<Self> {
        let pool = pool(options).await?;
        let (front, rx, running) = Front::new(limits.channel_capacity);
        tokio::spawn(writer::run(
            pool.clone(),
            rx,
            limits.max_batch.max(1),
            running,
        ));
        Ok(Self { pool, front })
    }
}

#[async_trait]
impl Database for Postgres {
    fn shared(&self) -> bool {
        true
    }

    fn group_commit(&self) -> &dyn GroupCommit {
        &self.front
    }

    async fn run(&self, access: Access, work: Work) -> Result<Erased> {
        let mut c = self.pool.get().await.map_err(pool_error)?;
        match access {
            // PostgreSQL commits a lone statement by itself: no BEGIN and COMMIT round trips.
            Access::Read | Access::Single => work(&mut PgTx(&c)).await,
            Access::Snapshot => {
                let tx = snapshot(&mut c).await?;
                let out = work(&mut PgTx(&tx)).await?;
                tx.commit().await?;
                Ok(out)
            }
            Access::Write | Access::Trial => {
                let tx = c.transaction().await?;
                let out = work(&mut PgTx(&tx)).await?;
                if access == Access::Trial {
                    tx.rollback().await?;
                } else {
                    tx.commit().await?;
                }
                Ok(out)
            }
        }
    }

    async fn checkpoint(&self) -> Result<()> {
        // PostgreSQL checkpoints on its own.
        Ok(())
    }
}

/// A read-only transaction on one snapshot: a report's every query sees the same data.
async fn snapshot(c: &mut Object) -> Result<deadpool_postgres::Transaction<'_>> {
    Ok(c.build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// How to reach the database, and how to use it.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/dbname` or key-value form; a host beginning with `/`
    /// is a Unix socket directory.
    pub url: String,
    /// Pooled connections (the writer task holds one more).
    pub pool_size: usize,
    /// Longest any statement may run.
    pub statement_timeout: Duration,
    /// TLS to the database, when configured.
    pub tls: Option<PostgresTls>,
    /// Whether a connection without TLS to a host on the network is allowed.
    pub plaintext_network: bool,
}

/// TLS to the database: the CA its certificate chains to, and this side's certificate and key
/// for servers that ask for one.
#[derive(Debug, Clone)]
pub struct PostgresTls {
    /// The CA bundle (PEM).
    pub ca: PathBuf,
    /// A client certificate and its key (PEM).
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl PostgresOptions {
    /// The options a configuration gives: `store.url`, or `PDP_DATABASE_URL` when set.
    pub fn from_config(c: &crate::config::StoreConfig) -> Result<Self, StoreError> {
        let url = std::env::var("PDP_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| c.url.clone())
            .ok_or_else(|| StoreError::Connect {
                url: String::new(),
                cause: "store.backend = \"postgres\" needs store.url (or PDP_DATABASE_URL)".into(),
            })?;
        let identity = match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => {
                return Err(StoreError::Connect {
                    url: redacted(&url),
                    cause: "store.tls_cert and store.tls_key go together".into(),
                })
            }
        };
        let tls = match (&c.tls_ca, identity) {
            (Some(ca), identity) => Some(PostgresTls {
                ca: ca.clone(),
                identity,
            }),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(StoreError::Connect {
                    url: redacted(&url),
                    cause: "store.tls_cert needs store.tls_ca".into(),
                })
            }
        };
        Ok(Self {
            url,
            pool_size: c.pool_size,
            statement_timeout: Duration::from_millis(c.statement_timeout_ms),
            tls,
            plaintext_network: c.plaintext_network,
        })
    }

    /// Refuses what would send the store's traffic in the clear across a network, and TLS
    /// asked of a Unix socket.
    fn check_transport(&self, config: &tokio_postgres::Config) -> Result<(), StoreError> {
        use tokio_postgres::config::Host;
        let refuse = |cause: &str| StoreError::Connect {
            url: redacted(&self.url),
            cause: cause.into(),
        };
        for host in config.get_hosts() {
            match (host, &self.tls) {
                (Host::Unix(_), Some(_)) => {
                    return Err(refuse(
                        "store.tls_ca is set but store.url names a Unix socket (TLS is for TCP)",
                    ))
                }
                (Host::Tcp(h), None) if !self.plaintext_network && !is_loopback(h) => {
                    return Err(refuse(
                        "a database on the network needs store.tls_ca (TLS to the database), or \
                         store.plaintext_network = true on a network you trust",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn config(&self) -> Result<tokio_postgres::Config, StoreError> {
        let mut config: tokio_postgres::Config =
            self.url
                .parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Connect {
                    url: redacted(&self.url),
                    cause: e.to_string(),
                })?;
        self.check_transport(&config)?;
        if self.tls.is_some() {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        config
            .application_name("pdp-provider")
            .connect_timeout(Duration::from_secs(10))
            .options(format!(
                "-c synchronous_commit=on -c statement_timeout={}",
                self.statement_timeout.as_millis()
            ));
        Ok(config)
    }
}

/// Whether a host name or address is this machine's loopback.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL without its password, for messages and logs.
pub(super) fn redacted(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            format!(
                "postgres://{}@{}:{}/{}",
                c.get_user().unwrap_or_default(),
                hosts.join(","),
                c.get_ports().first().copied().unwrap_or(5432),
                c.get_dbname().unwrap_or_default()
            )
        }
        Err(_) => "(unparsable store.url)".into(),
    }
}

/// A pool of connections to the database, the schema migrated.
async fn pool(options: &PostgresOptions) -> Result<Pool, StoreError> {
    let config = options.config()?;
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match &options.tls {
        None => Manager::from_config(config, NoTls, manager_config),
        Some(tls) => {
            let identity = tls
                .identity
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path()));
            let client = crate::tls::client::rustls_client(&tls.ca, identity).map_err(|e| {
                StoreError::Connect {
                    url: redacted(&options.url),
                    cause: format!("store.tls_ca / store.tls_cert: {e}"),
                }
            })?;
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(client);
            Manager::from_config(config, connector, manager_config)
        }
    };
    let pool = Pool::builder(manager)
        // The writer task keeps one connection for good: `pool_size` more serve the rest.
        .max_size(options.pool_size.max(1) + 1)
        .wait_timeout(Some(Duration::from_secs(30)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("postgres pool: {e}")))?;
    let mut client = pool.get().await.map_err(|e| StoreError::Connect {
        url: redacted(&options.url),
        cause: e.to_string(),
    })?;
    migrate(&mut client).await?;
    Ok(pool)
}

/// Applies the migrations this binary knows and the database lacks ([`schema`]), once across
/// instances starting together (an advisory lock).
async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    const LOCK: i64 = 0x7064_7000_0001; // "pdp", migrations
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let result = run_migrations(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await?;
    result
}

/// [`migrate`]'s work, under its lock.
async fn run_migrations(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let history: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    // Reading the history needs no migrations.
    let applied = if history {
        refinery::Runner::new(&[])
            .get_applied_migrations_async(&mut ***client)
            .await
            .map_err(|e| schema::error(&e, "store.url"))?
    } else {
        Vec::new()
    };
    schema::runner(Dialect::Postgres, &applied)
        .run_async(&mut ***client)
        .await
        .map(|_| ())
        .map_err(|e| schema::error(&e, "store.url"))
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("postgres pool: {e}"))
}
