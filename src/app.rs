//! Wires the parts into a running endpoint, and takes it down in order.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cas::client::CasClient;
use crate::config::Config;
use crate::http::ops::Ops;
use crate::http::view::ViewService;
use crate::http::{App, ConnLimits, Limits};
use crate::matching::index::Matcher;
use crate::store::journal::{Journal, JournalLimits, JournalWriter};
use crate::store::queue::Queue;
use crate::store::sealed::{DataKey, SealError};
use crate::store::sqlite::SqliteStore;
use crate::store::StoreError;
use crate::tls::TlsError;
use crate::view_data::token::{Signer, TokenSettings};
use crate::view_data::working_days::Calendar;
use crate::workers::Pool;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data key.
    #[error(transparent)]
    Key(#[from] SealError),
    /// The view signing key.
    #[error(transparent)]
    Sign(#[from] crate::view_data::token::SignError),
    /// A listener could not bind.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A running endpoint.
pub struct Running {
    /// The ecosystem (mTLS) address actually bound.
    pub addr: SocketAddr,
    /// The ops address actually bound.
    pub ops_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    workers: TaskTracker,
    journal: Journal,
    writer: Option<JournalWriter>,
    ops: Arc<Ops>,
    grace: Duration,
}

/// Starts the endpoint: opens the store, starts the journal, binds both listeners.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let prometheus = crate::metrics::install();
    let key = DataKey::load(&config.crypto)?;
    let tls = crate::tls::server::server_config(&config.tls)?;
    let store = SqliteStore::open_journal(&config.store.path)?;
    let (journal, writer) = Journal::start(
        Box::new(store),
        JournalLimits {
            max_batch: config.store.journal_max_batch,
            channel_capacity: config.store.journal_channel_capacity,
            max_pending: config.store.queue_max_pending,
        },
    )?;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let listener = bind(config.server.listen).await?;
    let ops_listener = bind(config.server.ops_listen).await?;
    let addr = listener.local_addr().expect("bound");
    let ops_addr = ops_listener.local_addr().expect("bound");

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let workers = TaskTracker::new();
    let wake = Arc::new(Notify::new());
    if config.workers.concurrency > 0 {
        let queue = Arc::new(Queue::open(&config.store.path)?);
        let requeued = queue.requeue_working()?;
        let started = std::time::Instant::now();
        let index = queue.with_conn(|c| crate::matching::index::load(c, &key))?;
        tracing::info!(
            members = index.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            requeued,
            "member index built"
        );
        let pool = Arc::new(Pool {
            queue,
            matcher: Arc::new(Matcher::new(index, &config.matching)),
            cas: CasClient::new(&config.cas, journal.clone())?,
            key: key.clone(),
            journal: journal.clone(),
            config: config.workers.clone(),
            wake: wake.clone(),
        });
        pool.spawn(shutdown.clone(), &workers);
    }
    let view = Some(Arc::new(view_service(&config, &key, journal.clone())?));
    let jwks = view.as_ref().map(|v| v.signer.jwks().clone());
    let app = Arc::new(App {
        journal: journal.clone(),
        key: key.clone(),
        limits: Limits {
            max_body_bytes: config.server.max_body_bytes,
            queue_max_pending: config.store.queue_max_pending,
            retry_after_s: config.store.retry_after_s,
            request_timeout: Duration::from_millis(config.server.request_timeout_ms),
        },
        wake_workers: wake,
        view,
    });
    let ops = Arc::new(Ops {
        prometheus,
        jwks,
        ready: AtomicBool::new(false),
    });
    tokio::spawn(crate::http::serve(
        listener,
        TlsAcceptor::from(tls),
        app,
        ConnLimits::from_config(&config),
        shutdown.clone(),
        tracker.clone(),
    ));
    tokio::spawn(crate::http::ops::serve(
        ops_listener,
        ops.clone(),
        shutdown.clone(),
    ));
    ops.ready.store(true, Ordering::Relaxed);
    let upkeep = crate::upkeep::Upkeep {
        store: Arc::new(Queue::open(&config.store.path)?),
        certificates: vec![
            ("server", config.tls.cert.clone()),
            ("client_ca", config.tls.client_ca.clone()),
            ("cas_client", config.cas.client_cert.clone()),
            ("cas_ca", config.cas.ca.clone()),
        ],
        retention_days: config.audit.retention_days,
        heartbeat_every: Duration::from_secs(60),
        possible_review: Some((
            CasClient::new(&config.cas, journal.clone())?,
            key.clone(),
            config.matching.possible_review_days,
        )),
    };
    tokio::spawn(upkeep.run(shutdown.clone()));
    tracing::info!(%addr, %ops_addr, "pdp-provider endpoint listening");
    Ok(Running {
        addr,
        ops_addr,
        shutdown,
        tracker,
        workers,
        journal,
        writer: Some(writer),
        ops,
        grace: Duration::from_millis(config.server.shutdown_grace_ms),
    })
}

/// Builds the view endpoint's service: its own store connection, the signer, the calendar.
fn view_service(
    config: &Config,
    key: &DataKey,
    journal: Journal,
) -> Result<ViewService, StartError> {
    let cas = CasClient::new(&config.cas, journal)?;
    let v = &config.view;
    let token_endpoint = cas.token_endpoint();
    let signer = Signer::load(
        &v.signing_key,
        TokenSettings {
            issuer: v.issuer.clone(),
            audience: v.audience.clone().unwrap_or_else(|| token_endpoint.clone()),
            ttl_s: v.token_ttl_s,
            algorithm: v.algorithm.clone(),
        },
    )?;
    let calendar = match Calendar::load(&v.calendar) {
        Ok(c) => c,
        Err(e) => {
            let year = chrono::Datelike::year(&chrono::Utc::now());
            tracing::warn!(error = %e, "bank holiday file not loaded; using holidays by rule");
            Calendar::by_rule(year - 1, year + 5)
        }
    };
    let store = Arc::new(Queue::open(&config.store.path)?);
    crate::metrics::deregistrations_pending(store.flagged()?.len());
    Ok(ViewService {
        store,
        key: key.clone(),
        cas,
        signer,
        calendar,
        nations: v.nations.iter().map(|n| (n.holdername, n.nation)).collect(),
        default_nation: v.nation,
        as_uri: v.as_uri.clone().unwrap_or(token_endpoint),
        budget: Duration::from_millis(v.budget_ms),
        perm_timeout: Duration::from_millis(v.perm_timeout_ms),
        introspect_timeout: Duration::from_millis(v.introspect_timeout_ms),
        retry_after_s: v.retry_after_s,
    })
}

// === impl Running ===

impl Running {
    /// The view signing key's public JWK set (for onboarding and the CAS simulator).
    pub fn jwks(&self) -> Option<&serde_json::Value> {
        self.ops.jwks.as_ref()
    }

    /// The token that stops the endpoint when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for the shutdown token, then drains: stop accepting, finish in-flight requests,
    /// let workers finish their current item (each bounded by the grace period), flush and
    /// close the journal.
    pub async fn run_until_shutdown(mut self) {
        self.shutdown.cancelled().await;
        self.ops.ready.store(false, Ordering::Relaxed);
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; closing remaining connections");
        }
        // Workers finish their current item; one still running past the grace period stays
        // claimed in the store and is resumed at the next start.
        self.workers.close();
        if tokio::time::timeout(self.grace, self.workers.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; unfinished finds resume at next start");
        }
        self.journal.close().await;
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || writer.close()).await;
        }
        tracing::info!("pdp-provider stopped");
    }

    /// Cancels and drains.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.run_until_shutdown().await;
    }
}
