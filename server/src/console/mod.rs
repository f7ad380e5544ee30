//! The operator console: a small web console for the people who run the connection, with the
//! connection portal's roles, on its own TLS listener (never the ecosystem port).
//!
//! A request meets, in order:
//!
//! - `routes`: the route table, written once (method, path, the action the user's roles must
//!   allow, navigation entry, handler), which dispatch and the navigation both read; sign-in
//!   and the stylesheet before any session; then one prologue for every signed-in request (a
//!   `POST`'s CSRF token, the route's roles);
//! - `sign_in`: signing in and out, and the session a request belongs to;
//! - `page`: the signed-in request a handler gets (who asks, the form), rendering in the
//!   console's frame, auditing;
//! - `pages`: one file per page area: possible matches to review (resolved through
//!   [`crate::peis::resolve_possible`], the code `peis resolve` runs), flagged PeIs and
//!   de-registration, planned downtime, the load tool's runs, calculations, failed finds, the
//!   month's SLA, certificate expiry, PDP submissions, the organisation's contacts and
//!   registration data, users and roles, the audit export (streamed), the schemes, and the
//!   overview of what needs doing;
//! - `templates` and `respond`: the templates compiled into the binary (minijinja; there is no
//!   front-end build step), and the answers with their security headers.
//!
//! Beside them, [`roles`] holds the portal's roles, their limits and combinations (refusals
//! name the rule), and what each role may do here; [`session`] holds argon2 passwords, sessions
//! in `__Host-` cookies, CSRF tokens and the lock-out; `mfa` the TOTP second factor every user
//! signs in with and their recovery codes; [`recovery`] the server-side commands that let a
//! locked-out organisation back in.
//!
//! Every action, and every reveal of personal data, is an audit record (direction `operator`,
//! party `console:<username>`), committed before the answer. Every answer carries strict
//! security headers (a CSP with no script at all, `frame-ancestors 'none'`, HSTS, `no-store`).

mod mfa;
mod page;
mod pages;
pub mod recovery;
mod respond;
pub mod roles;
mod routes;
pub mod session;
mod sign_in;
mod templates;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cas::client::CasClient;
use crate::config::Config;
use crate::http::{conn, ConnLimits};
use crate::store::console::{ConsoleUser, Role, UserSaved};
use crate::store::{Store, StoreError};

/// Why a console operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reporting's store or its rules failed (planned downtime).
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A role rule refused the change.
    #[error(transparent)]
    Refused(#[from] roles::RoleRefusal),
    /// The rule the store's check named (the same as a [`roles::RoleRefusal`]'s text).
    #[error("{0}")]
    RefusedInStore(String),
    /// The username is taken.
    #[error("username {0:?} is taken")]
    UsernameTaken(String),
    /// A password could not be hashed, or is too short.
    #[error("password: {0}")]
    Password(&'static str),
    /// The second factor could not be set up or checked.
    #[error(transparent)]
    Mfa(#[from] mfa::MfaError),
    /// No console user has that username.
    #[error("no console user {0:?}")]
    NoSuchUser(String),
    /// Binding the listener.
    #[error("console.listen: binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The running console's shared state.
pub struct Console {
    pub(crate) store: Store,
    pub(crate) cas: CasClient,
    pub(crate) config: Config,
    pub(crate) sessions: session::Sessions,
    /// Sign-ins whose password was right, waiting for a code.
    pub(crate) pending: session::PendingSignIns,
    /// The key sign-in attempts are counted under per user (read from the store once).
    pub(crate) sign_in_key: tokio::sync::OnceCell<Vec<u8>>,
    pub(crate) templates: minijinja::Environment<'static>,
    /// Verified for an unknown username, so that a sign-in takes as long either way.
    pub(crate) dummy_hash: String,
}

impl Console {
    /// The console's state for `config`.
    pub fn new(config: Config, store: Store, cas: CasClient) -> Self {
        let c = &config.console;
        Self {
            sessions: session::Sessions::new(
                Duration::from_secs(c.session_idle_timeout_s),
                Duration::from_secs(c.session_max_age_s),
            ),
            pending: session::PendingSignIns::default(),
            sign_in_key: tokio::sync::OnceCell::new(),
            templates: templates::templates(),
            dummy_hash: session::hash_password(&session::token()).unwrap_or_default(),
            store,
            cas,
            config,
        }
    }
}

/// Adds or changes a user, checked against the role rules with every other user in the same
/// transaction. `password`: a new password (required for a new user).
pub async fn save_user(
    store: &Store,
    mut user: ConsoleUser,
    password: Option<String>,
    scheme_admin_limit: usize,
) -> Result<i64, ConsoleError> {
    if let Some(p) = password {
        if p.chars().count() < MIN_PASSWORD_CHARS {
            return Err(ConsoleError::Password("at least 12 characters"));
        }
        user.password_hash = crate::store::blocking(move || {
            session::hash_password(&p).map_err(|_| StoreError::Task("argon2".into()))
        })
        .await
        .map_err(|_| ConsoleError::Password("could not be hashed"))?;
    } else if user.id == 0 {
        return Err(ConsoleError::Password("a new user needs one"));
    } else {
        // Unchanged: the store keeps the hash it holds when the transaction runs.
        user.password_hash.clear();
    }
    user.roles.sort();
    user.roles.dedup();
    roles::check_person(&user)?;
    // Both sides of the change as the saving transaction sees them: a concurrent save of
    // another user (or of this one) is checked against, never raced.
    let check: crate::store::console::UserCheck = Box::new(move |before, after| {
        roles::check_all(before, after, scheme_admin_limit).map_err(|e| e.to_string())
    });
    match store.save_console_user(user.clone(), check).await? {
        UserSaved::Saved(id) => Ok(id),
        UserSaved::Refused(rule) => Err(ConsoleError::RefusedInStore(rule)),
        UserSaved::UsernameTaken => Err(ConsoleError::UsernameTaken(user.username)),
    }
}

/// Creates the first primary business contact (`console create-pbc`): refused once any PBC
/// exists (the PBC then creates the others in the console).
pub async fn create_first_pbc(
    store: &Store,
    username: &str,
    display_name: &str,
    email: &str,
    password: String,
) -> Result<i64, ConsoleError> {
    if store
        .console_users()
        .await?
        .iter()
        .any(|u| u.has(Role::Pbc))
    {
        return Err(ConsoleError::RefusedInStore(
            "rule FIRST_PBC: a primary business contact exists; they add users in the console \
             (locked out: `console unsuspend USER`, `console reset-password USER`)"
                .into(),
        ));
    }
    let user = ConsoleUser {
        id: 0,
        username: username.to_owned(),
        display_name: display_name.to_owned(),
        email: email.to_owned(),
        password_hash: String::new(),
        roles: vec![Role::Pbc],
        holdernames: Vec::new(),
        suspended: false,
        confirmed_at: None,
        updated_at: 0,
    };
    save_user(store, user, Some(password), usize::MAX).await
}

/// The console's certificate chain and key: its own, or the ecosystem listener's.
pub fn tls_files(config: &Config) -> (PathBuf, PathBuf) {
    let c = &config.console;
    (
        c.cert.clone().unwrap_or_else(|| config.tls.cert.clone()),
        c.key.clone().unwrap_or_else(|| config.tls.key.clone()),
    )
}

/// The console's TLS config: its certificate, no client certificate asked, HTTP/1.1. Built
/// again on a reload ([`crate::reload`]).
pub fn tls_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, ConsoleError> {
    let (cert, key) = tls_files(config);
    // Refused when expired, not yet valid, or not matching its key (naming the files).
    let (chain, key) = crate::tls::load_served(&cert, &key)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(crate::tls::TlsError::from)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(crate::tls::TlsError::from)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// Binds the console's listener and serves it (see [`serve`]) until `shutdown`; the address
/// bound. New handshakes take the TLS config `tls` holds then (a reload swaps it).
pub async fn start(
    config: &Config,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    store: Store,
    cas: CasClient,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) -> Result<SocketAddr, ConsoleError> {
    let addr = config.console.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let console = Arc::new(Console::new(config.clone(), store, cas));
    tokio::spawn(serve(listener, tls, console, shutdown, tracker));
    tracing::info!(%bound, "operator console listening");
    Ok(bound)
}

/// Serves the console on `listener` until `shutdown`, through the shared accept loop (the
/// connection cap, header and idle time-outs of [`crate::http::conn`]).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    console: Arc<Console>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let limits = ConnLimits {
        max_connections: console.config.console.max_connections,
        ..ConnLimits::from_config(&console.config)
    };
    let max = limits.max_connections;
    conn::accept_loop(listener, max, shutdown.clone(), tracker, move |tcp| {
        let (acceptor, console, limits, shutdown) = (
            TlsAcceptor::from(tls.load_full()),
            console.clone(),
            limits.clone(),
            shutdown.clone(),
        );
        let peer = sign_in::Peer(tcp.peer_addr().ok().map(|a| a.ip()));
        async move {
            let tls =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    _ => return,
                };
            let idle = conn::Idle::new();
            let busy = idle.clone();
            let service = service_fn(move |mut req: http::Request<_>| {
                req.extensions_mut().insert(peer);
                let console = console.clone();
                let guard = busy.begin();
                async move {
                    let resp = routes::route(&console, req).await;
                    // In progress until its answer is sent: an export streams.
                    Ok::<_, Infallible>(respond::holding(resp, guard))
                }
            });
            conn::drive(
                tls,
                service,
                idle,
                &limits,
                conn::Protocols::Http1,
                shutdown,
            )
            .await;
        }
    })
    .await;
}
