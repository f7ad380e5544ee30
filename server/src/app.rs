//! Wires the parts into a running endpoint, and takes it down in order.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cas::client::CasClient;
use crate::config::Config;
use crate::http::ops::Ops;
use crate::http::view::ViewService;
use crate::http::{App, ConnLimits, Limits};
use crate::matching::index::Matcher;
use crate::pipeline::Pipeline;
use crate::sealed::{DataKey, SealError};
use crate::store::{Store, StoreError, StoreLimits};
use crate::tls::TlsError;
use crate::view_data::token::Signer;
use crate::view_data::working_days::Calendar;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The CAS client's identity.
    #[error(transparent)]
    CasClient(#[from] crate::tls::client::ClientError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data key.
    #[error(transparent)]
    Key(#[from] SealError),
    /// The view signing key.
    #[error(transparent)]
    Sign(#[from] crate::view_data::token::SignError),
    /// Another endpoint already serves this store.
    #[error("store.path: {0} is in use by another running endpoint (one per SQLite store; run several on PostgreSQL)")]
    Locked(std::path::PathBuf),
    /// The store's lock file could not be opened.
    #[error("store.path: opening the lock file {path}: {source}")]
    LockFile {
        /// The lock file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The operator console.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// Stored member records do not open with the configured data keys: started, the endpoint
    /// would end their members' finds as no-matches.
    #[error("{failed} of {total} stored member records do not open with the configured data key ({key}), or do not parse; not started: their members' finds would end as no-matches. Configure the key that sealed them (a retired one goes in crypto.old_data_key_files), or import those members again under this key")]
    Unreadable {
        /// Records that did not open or parse.
        failed: u64,
        /// Stored member records.
        total: u64,
        /// The configured key as the operator named it (never its value).
        key: String,
    },
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
    /// The operator console's address, when `console.enabled`.
    pub console_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    pipeline: TaskTracker,
    store: Store,
    ops: Arc<Ops>,
    grace: Duration,
    /// Held while running: one endpoint per SQLite store, so no find is requeued from under a
    /// process still working it.
    _lock: Option<std::fs::File>,
}

/// Takes the store's lock file (`<store>.lock`) for the life of the endpoint.
fn lock_store(store: &std::path::Path) -> Result<std::fs::File, StartError> {
    let path = store.with_extension("lock");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::LockFile {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked(store.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::LockFile { path, source }),
    }
}

/// Starts the endpoint: opens the store, loads the member index, starts the pipeline, binds
/// both listeners. Finds are accepted only once the index is loaded: a find matched against a
/// half-built index would be a no-match and lose its data.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let prometheus = crate::metrics::install();
    crate::http::respond::set_store_retry_after(config.store.retry_after_s);
    let key = DataKey::load(&config.crypto)?;
    let key_name = key_name(&config.crypto, &key);
    // One endpoint per SQLite file; instances share a PostgreSQL store by design.
    let lock = match config.store.backend {
        crate::config::Backend::Sqlite => Some(lock_store(&config.store.path)?),
        crate::config::Backend::Postgres => None,
    };
    let tls = Arc::new(arc_swap::ArcSwap::new(crate::tls::server::server_config(
        &config.tls,
    )?));
    let (store, matcher, data_version) = open_indexed(&config, key, key_name).await?;
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
    let pipeline = TaskTracker::new();
    let wake = Arc::new(Notify::new());
    // One CAS client, shared: a reload of the provider's identity reaches every user of it.
    let cas = CasClient::new(&config.cas, store.clone())?;
    let (applied_version, store_up) =
        spawn_live(&config, &store, &matcher, data_version, &shutdown);
    Arc::new(Pipeline {
        store: store.clone(),
        matcher: matcher.clone(),
        cas: cas.clone(),
        config: config.workers.clone(),
        wake: wake.clone(),
    })
    .spawn(shutdown.clone(), &pipeline);
    let view = Some(Arc::new(
        view_service(&config, store.clone(), cas.clone()).await?,
    ));
    let signer = view.as_ref().map(|v| v.signer.clone());
    let app = Arc::new(App {
        store: store.clone(),
        matcher: matcher.clone(),
        limits: limits(&config),
        wake_pipeline: wake,
        view,
        access: config.access.clone(),
    });
    let ops = Arc::new(Ops {
        prometheus,
        signer: signer.clone(),
        ready: AtomicBool::new(false),
        store_up,
        matcher: Some(matcher),
        store: store.clone(),
        data_version: applied_version,
    });
    let console_tls = console_tls(&config)?;
    let material = crate::reload::Material {
        tls: tls.clone(),
        console: console_tls.clone(),
        cas: cas.clone(),
        signer,
    };
    spawn_reloader(&config, material, shutdown.clone());
    // The first ACKs after a start wait for nothing the writer could have read before.
    store.prepare_appends().await;
    tokio::spawn(crate::http::serve(
        listener,
        tls,
        app,
        ConnLimits::from_config(&config),
        shutdown.clone(),
        tracker.clone(),
    ));
    spawn_ops(&config, ops_listener, ops.clone(), &shutdown);
    let console_addr =
        start_console(&config, console_tls, &store, &cas, &shutdown, &tracker).await?;
    ops.ready.store(true, Ordering::Relaxed);
    spawn_reporting(&config, &store, &cas, &shutdown);
    crate::backup::spawn(&config, &shutdown);
    tokio::spawn(upkeep(&config, store.clone(), cas).run(shutdown.clone()));
    tracing::info!(%addr, %ops_addr, "pdp-provider endpoint listening");
    Ok(Running {
        addr,
        ops_addr,
        console_addr,
        shutdown,
        tracker,
        pipeline,
        store,
        ops,
        grace: Duration::from_millis(config.server.shutdown_grace_ms),
        _lock: lock,
    })
}

/// Opens the store, requeues what a stopped endpoint was working on, and builds the member
/// index (and the schemes not active) from it; returns the data version the index holds.
///
/// A stored member record that does not open (another data key sealed it) or does not parse
/// stops the start: an endpoint that served without it would end that member's finds as
/// no-matches, and delete their find data.
async fn open_indexed(
    config: &Config,
    key: DataKey,
    key_name: String,
) -> Result<(Store, Arc<Matcher>, i64), StartError> {
    let store =
        Store::from_config(&config.store, key, StoreLimits::from_config(&config.store)).await?;
    let requeued = store.requeue_working().await?;
    let started = std::time::Instant::now();
    // The version first: a change made while the index loads is applied again afterwards.
    let data_version = store.data_version().await?;
    let unopened = |failed: u64, total: u64| StartError::Unreadable {
        failed,
        total,
        key: key_name.clone(),
    };
    // Records the key does not open are found from their headers, before anything is written
    // with it (the first start makes the index key, sealed with the data key).
    let scanned = crate::matching::index::scan(&store).await?;
    if scanned.unreadable > 0 {
        let failed = scanned.unreadable;
        let total = store.member_count().await?;
        store.close().await;
        return Err(unopened(failed, total));
    }
    let index_key = match store.index_key().await {
        Ok(k) => k,
        // Sealed with a key not configured: no member's look-up keys can be checked.
        Err(StoreError::Seal(_)) => {
            let total = store.member_count().await?;
            store.close().await;
            return Err(unopened(total, total));
        }
        Err(e) => return Err(e.into()),
    };
    let loaded = scanned.finish(&store, &index_key).await?;
    if loaded.unreadable > 0 {
        let failed = loaded.unreadable;
        store.close().await;
        return Err(unopened(failed, failed + loaded.index.len() as u64));
    }
    let index = loaded.index;
    tracing::info!(
        members = index.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        requeued,
        "member index built"
    );
    let matcher = Arc::new(
        Matcher::new(index, index_key, store.clone(), &config.matching).naming_key(key_name),
    );
    crate::matching::live::load_schemes(&store, &matcher).await?;
    crate::metrics::member_index(matcher.index.len(), data_version);
    Ok((store, matcher, data_version))
}

/// Keeps the match index current from `data_version` on; the data version it has applied and
/// whether the store answers, both for the ops listener.
fn spawn_live(
    config: &Config,
    store: &Store,
    matcher: &Arc<Matcher>,
    data_version: i64,
    shutdown: &CancellationToken,
) -> (Arc<std::sync::atomic::AtomicI64>, Arc<AtomicBool>) {
    let applied_version = Arc::new(std::sync::atomic::AtomicI64::new(data_version));
    let store_up = Arc::new(AtomicBool::new(true));
    tokio::spawn(crate::matching::live::run(
        store.clone(),
        matcher.clone(),
        data_version,
        applied_version.clone(),
        store_up.clone(),
        Duration::from_millis(config.matching.refresh_ms),
        shutdown.clone(),
    ));
    (applied_version, store_up)
}

/// The configured data key as an operator knows it: the setting and file or variable that holds
/// it, and its key ID (the first 4 bytes of its SHA-256, as sealed records carry it); never
/// its value.
fn key_name(crypto: &crate::config::CryptoConfig, key: &DataKey) -> String {
    let id = hex::encode(key.active_id());
    let from_env = crypto
        .data_key_env
        .as_ref()
        .filter(|v| std::env::var_os(v).is_some());
    let mut name = match (from_env, &crypto.data_key_file) {
        (Some(var), _) => format!("crypto.data_key_env = {var}, key ID {id}"),
        (None, Some(file)) => format!("crypto.data_key_file = {}, key ID {id}", file.display()),
        (None, None) => format!("key ID {id}"),
    };
    if !crypto.old_data_key_files.is_empty() {
        let old: Vec<String> = crypto
            .old_data_key_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        name.push_str(&format!("; crypto.old_data_key_files = {}", old.join(", ")));
    }
    name
}

/// Watches keys and certificates, and swaps in what changed (`SIGHUP`, or a file change).
fn spawn_reloader(config: &Config, material: crate::reload::Material, shutdown: CancellationToken) {
    let poll = Duration::from_millis(config.server.reload_poll_ms);
    tokio::spawn(crate::reload::Reloader::new(config.clone(), material).run(poll, shutdown));
}

/// The ecosystem listener's per-request limits.
fn limits(config: &Config) -> Limits {
    Limits {
        max_body_bytes: config.server.max_body_bytes,
        retry_after_s: config.store.retry_after_s,
        request_timeout: Duration::from_millis(config.server.request_timeout_ms),
        body_timeout: Duration::from_millis(config.server.header_read_timeout_ms),
        max_header_bytes: config.server.max_header_bytes,
        refusals: Arc::new(crate::http::limit::Refusals::new(&config.limits)),
    }
}

/// The ops listener (health, metrics, the JWK set, the data version).
fn spawn_ops(config: &Config, listener: TcpListener, ops: Arc<Ops>, shutdown: &CancellationToken) {
    tokio::spawn(crate::http::ops::serve(
        listener,
        ops,
        ConnLimits {
            max_connections: config.server.ops_max_connections,
            ..ConnLimits::from_config(config)
        },
        shutdown.clone(),
    ));
}

/// The operator console's TLS config, when `console.enabled`: shared with the reloader.
fn console_tls(config: &Config) -> Result<Option<SharedTls>, StartError> {
    if !config.console.enabled {
        return Ok(None);
    }
    let tls = crate::console::tls_config(config)?;
    Ok(Some(Arc::new(arc_swap::ArcSwap::new(tls))))
}

/// The operator console's listener, when enabled (`tls` is then `Some`): its address.
async fn start_console(
    config: &Config,
    tls: Option<SharedTls>,
    store: &Store,
    cas: &CasClient,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Option<SocketAddr>, StartError> {
    let Some(tls) = tls else {
        return Ok(None);
    };
    let addr = crate::console::start(
        config,
        tls,
        store.clone(),
        cas.clone(),
        shutdown.clone(),
        tracker.clone(),
    )
    .await?;
    Ok(Some(addr))
}

/// A TLS config that a reload swaps under its listener.
type SharedTls = Arc<arc_swap::ArcSwap<rustls::ServerConfig>>;

/// The daily PDP reporting run, when `reporting.enabled`.
fn spawn_reporting(config: &Config, store: &Store, cas: &CasClient, shutdown: &CancellationToken) {
    if config.reporting.enabled {
        tokio::spawn(crate::report::schedule::run(
            crate::report::submit::Reporter {
                store: store.clone(),
                cas: Some(cas.clone()),
                config: config.reporting.clone(),
                go_live: config.sla.go_live,
            },
            shutdown.clone(),
        ));
    }
}

/// The background upkeep: heartbeats, certificate expiry, audit purge, possible-match expiry.
fn upkeep(config: &Config, store: Store, cas: CasClient) -> crate::upkeep::Upkeep {
    crate::upkeep::Upkeep {
        store,
        certificates: crate::upkeep::certificate_files(config),
        signing_key: Some(config.view.signing_key.clone()),
        retention_days: config.audit.retention_days,
        heartbeat_every: Duration::from_secs(60),
        go_live: config.sla.go_live,
        possible_review: Some((cas, config.matching.possible_review_days)),
    }
}

/// Builds the view endpoint's service: the store, the signer, the calendar.
async fn view_service(
    config: &Config,
    store: Store,
    cas: CasClient,
) -> Result<ViewService, StartError> {
    let v = &config.view;
    let signer = Arc::new(arc_swap::ArcSwap::from_pointee(Signer::from_config(
        config,
    )?));
    let calendar = match Calendar::load(&v.calendar) {
        Ok(c) => c,
        Err(e) => {
            let year = chrono::Datelike::year(&chrono::Utc::now());
            tracing::warn!(error = %e, "bank holiday file not loaded; using holidays by rule");
            Calendar::by_rule(year - 1, year + 5)
        }
    };
    crate::metrics::deregistrations_pending(store.flagged().await?.len());
    Ok(ViewService {
        store,
        cas,
        signer,
        calendar,
        nations: v.nations.iter().map(|n| (n.holdername, n.nation)).collect(),
        default_nation: v.nation,
        as_uri: v
            .as_uri
            .clone()
            .unwrap_or_else(|| config.cas.token_endpoint()),
        budget: Duration::from_millis(v.budget_ms),
        perm_timeout: Duration::from_millis(v.perm_timeout_ms),
        introspect_timeout: Duration::from_millis(v.introspect_timeout_ms),
        retry_after_s: v.retry_after_s,
        path_prefix: format!("{}/", v.path.trim_end_matches('/')),
    })
}

// === impl Running ===

impl Running {
    /// The view signing keys' public JWK set (for onboarding and the CAS simulator).
    pub fn jwks(&self) -> Option<serde_json::Value> {
        self.ops.signer.as_ref().map(|s| s.load().jwks().clone())
    }

    /// The token that stops the endpoint when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for the shutdown token, then drains: stop accepting, finish in-flight requests,
    /// let the pipeline finish its finds in flight (each bounded by the grace period), flush and
    /// close the store.
    pub async fn run_until_shutdown(self) {
        self.shutdown.cancelled().await;
        self.ops.ready.store(false, Ordering::Relaxed);
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; closing remaining connections");
        }
        // Finds in flight finish; one still running past the grace period stays claimed in the
        // store and is resumed at the next start.
        self.pipeline.close();
        if tokio::time::timeout(self.grace, self.pipeline.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; unfinished finds resume at next start");
        }
        self.store.close().await;
        tracing::info!("pdp-provider stopped");
    }

    /// Cancels and drains.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.run_until_shutdown().await;
    }
}
