//! Certificate and key expiry ([`Action::Certificates`](crate::console::roles::Action)): each
//! configured certificate (the listener's, the client CA bundle, the CAS client certificate and
//! its CA, the console's own) with the date it expires and the days left, and the view signing
//! key with the date its replacement is due (its cryptoperiod from when its file was written).
//! The overview counts those within 30 days.

use crate::console::page::Page;
use crate::console::respond::Resp;
use crate::console::ConsoleError;

/// Days ahead the overview warns of.
pub(crate) const WARN_DAYS: i64 = 30;

/// One certificate or key and when it expires.
pub(crate) struct Expiry {
    /// What it is.
    pub(crate) name: &'static str,
    /// Its file.
    pub(crate) path: String,
    /// Seconds from now until it expires (negative once past); `None` when unreadable.
    pub(crate) seconds_left: Option<i64>,
}

// === impl Expiry ===

impl Expiry {
    /// The day it expires, `YYYY-MM-DD` (UTC), or "unreadable".
    pub(crate) fn date(&self) -> String {
        self.seconds_left
            .and_then(|s| chrono::Utc::now().checked_add_signed(chrono::Duration::seconds(s)))
            .map_or_else(|| "unreadable".into(), |d| d.format("%Y-%m-%d").to_string())
    }

    /// Whole days left, or "unreadable".
    pub(crate) fn days(&self) -> String {
        self.seconds_left
            .map_or_else(|| "unreadable".into(), |s| (s / 86_400).to_string())
    }

    /// Whether it expires within [`WARN_DAYS`] (or cannot be read).
    pub(crate) fn due(&self) -> bool {
        self.seconds_left.is_none_or(|s| s < WARN_DAYS * 86_400)
    }
}

/// What an operator calls a certificate the configuration names.
fn title(name: &'static str) -> &'static str {
    match name {
        "server" => "ecosystem listener certificate",
        "client_ca" => "client CA bundle (PDP's)",
        "cas_client" => "CAS client certificate",
        "cas_ca" => "CAS CA bundle",
        "console" => "console certificate",
        other => other,
    }
}

/// Every configured certificate and the view signing key, with their expiry.
pub(crate) async fn expiries(config: &crate::config::Config) -> Vec<Expiry> {
    let config = config.clone();
    crate::store::blocking(move || Ok(read_expiries(&config)))
        .await
        .unwrap_or_default()
}

fn read_expiries(config: &crate::config::Config) -> Vec<Expiry> {
    let mut out: Vec<Expiry> = crate::upkeep::certificate_files(config)
        .into_iter()
        .map(|(name, path)| Expiry {
            name: title(name),
            seconds_left: crate::upkeep::chain_expiry(&path).ok().flatten(),
            path: path.display().to_string(),
        })
        .collect();
    let key = &config.view.signing_key;
    out.push(Expiry {
        name: "view signing key (replacement due)",
        seconds_left: crate::view_data::token::key_expiry(key, std::time::SystemTime::now()).ok(),
        path: key.display().to_string(),
    });
    out
}

/// The certificates and keys.
pub(crate) async fn page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let rows = expiries(&p.console.config)
        .await
        .into_iter()
        .map(|e| vec![e.name.to_owned(), e.path.clone(), e.date(), e.days()])
        .collect();
    p.table(
        "/certificates",
        "Certificates and keys",
        "When each certificate expires, and when the view signing key is due for replacement; renew and reload without a restart (SIGHUP).",
        &["Certificate or key", "File", "Expires (UTC)", "Days left"],
        rows,
        "No certificate configured.",
        None,
    )
}
