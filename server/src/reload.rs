//! Keys and certificates replaced without a restart (CoCo2.1.5: the connection stays up while
//! the primary technical contact renews them).
//!
//! On `SIGHUP`, and whenever one of the files changes (checked every `server.reload_poll_ms`),
//! the endpoint reads again:
//!
//! - the ecosystem listener's certificate, key and client CA bundle: handshakes after the reload
//!   use the new material; open connections keep theirs and are not cut;
//! - the operator console's certificate and key (its own, or the listener's), likewise;
//! - the CAS client's certificate, key and CA: calls after the reload use them;
//! - the view signing keys (the active one and those published beside it): tokens after the
//!   reload are signed with the active key, and `/jwks.json` publishes the new set.
//!
//! Each part is built in full before it replaces the old one. A part whose new files do not load
//! (a half-written file, a key that does not match its certificate, a listener or console
//! certificate expired or not yet valid: [`crate::tls::load_served`]) is refused with a log line
//! naming the part, the file and, for dates, the certificate's validity; the old material keeps
//! serving, and it is tried again at the next change or `SIGHUP`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::cas::client::CasClient;
use crate::config::Config;
use crate::view_data::token::Signer;

/// What can be reloaded, shared with the parts that use it.
#[derive(Clone)]
pub struct Material {
    /// The ecosystem listener's TLS config.
    pub tls: Arc<ArcSwap<rustls::ServerConfig>>,
    /// The operator console's TLS config, when the console is enabled.
    pub console: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    /// The CAS client (its clones share the reloaded identity).
    pub cas: CasClient,
    /// The view data signer, when views are served.
    pub signer: Option<Arc<ArcSwap<Signer>>>,
}

/// Which part of the material a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Listener,
    Console,
    CasClient,
    Signer,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Listener => "listener",
            Part::Console => "console",
            Part::CasClient => "cas_client",
            Part::Signer => "view_signing_keys",
        }
    }
}

/// Watches the files and reloads what changed.
pub struct Reloader {
    config: Config,
    material: Material,
    /// Each (file, part it belongs to) and the file's last seen modification time and length.
    /// One file may serve two parts: the console falls back to the listener's certificate.
    seen: BTreeMap<(PathBuf, Part), Option<(SystemTime, u64)>>,
}

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

// === impl Reloader ===

impl Reloader {
    /// A reloader for `material`, as `config` names its files.
    pub fn new(config: Config, material: Material) -> Self {
        let mut files = vec![
            (config.tls.cert.clone(), Part::Listener),
            (config.tls.key.clone(), Part::Listener),
            (config.tls.client_ca.clone(), Part::Listener),
            (config.cas.client_cert.clone(), Part::CasClient),
            (config.cas.client_key.clone(), Part::CasClient),
            (config.cas.ca.clone(), Part::CasClient),
        ];
        if material.console.is_some() {
            let (cert, key) = crate::console::tls_files(&config);
            files.extend([(cert, Part::Console), (key, Part::Console)]);
        }
        if material.signer.is_some() {
            files.push((config.view.signing_key.clone(), Part::Signer));
            files.extend(
                config
                    .view
                    .published_keys
                    .iter()
                    .map(|p| (p.clone(), Part::Signer)),
            );
        }
        let seen = files
            .into_iter()
            .map(|(p, part)| {
                let s = stamp(&p);
                ((p, part), s)
            })
            .collect();
        Self {
            config,
            material,
            seen,
        }
    }

    /// Runs until `shutdown`: reloads on `SIGHUP`, and on a change seen every `every`.
    pub async fn run(mut self, every: Duration, shutdown: CancellationToken) {
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every);
        loop {
            let all = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => true,
                _ = shutdown.cancelled() => break,
            };
            let parts = self.changed(all);
            for part in parts {
                self.reload(part);
            }
        }
    }

    /// The parts whose files changed since last seen (every part when `all`).
    fn changed(&mut self, all: bool) -> Vec<Part> {
        let mut parts = Vec::new();
        for ((path, part), last) in self.seen.iter_mut() {
            let now = stamp(path);
            if (all || now != *last) && !parts.contains(part) {
                parts.push(*part);
            }
            *last = now;
        }
        parts.sort();
        parts
    }

    /// Rebuilds one part; on failure logs it and keeps the old material.
    fn reload(&self, part: Part) {
        let c = &self.config;
        let result = match part {
            Part::Listener => crate::tls::server::server_config(&c.tls)
                .map(|cfg| self.material.tls.store(cfg))
                .map_err(|e| e.to_string()),
            Part::Console => match &self.material.console {
                None => Ok(()),
                Some(console) => crate::console::tls_config(c)
                    .map(|cfg| console.store(cfg))
                    .map_err(|e| e.to_string()),
            },
            Part::CasClient => self.material.cas.reload(&c.cas).map_err(|e| e.to_string()),
            Part::Signer => match &self.material.signer {
                None => Ok(()),
                Some(signer) => Signer::from_config(c)
                    .map(|s| signer.store(Arc::new(s)))
                    .map_err(|e| e.to_string()),
            },
        };
        match result {
            Ok(()) => {
                crate::metrics::reload(part.as_str(), true);
                tracing::info!(part = part.as_str(), "reloaded keys and certificates");
                crate::upkeep::certificate_expiry(&crate::upkeep::certificate_files(c));
            }
            Err(error) => {
                crate::metrics::reload(part.as_str(), false);
                tracing::error!(part = part.as_str(), %error, "new keys or certificates refused; the old ones keep serving");
            }
        }
    }
}
