//! Mutual TLS: the ecosystem listener's config, the outbound identity, and the dev PKI.
//!
//! - [`server`]: TLS 1.2 and 1.3 only, client certificate required and verified against the
//!   configured ecosystem CA bundle, ALPN `h2` and `http/1.1`.
//! - [`client`]: the outbound identity (reqwest over rustls).
//! - [`pki`]: `certs init`, the development PKI written with rcgen.
//!
//! A certificate a listener serves goes through [`load_served`] first, at start and on every
//! reload: expired, not yet valid, or not matching its key, it is refused with the file named.

pub mod client;
pub mod pki;
pub mod server;

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the configuration. (Not a `source`: the message already holds it, and
    /// a chain printed in full would say it twice.)
    #[error("tls config: {0}")]
    Rustls(rustls::Error),
    /// The private key is not the key of the certificate it is served with.
    #[error("{key}: not the private key of the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A certificate to be served is expired or not yet valid.
    #[error(transparent)]
    NotValidNow(Box<NotValidNow>),
    /// The client verifier could not be built (e.g. an empty CA bundle).
    #[error("client verifier: {0}")]
    Verifier(String),
    /// Writing the dev PKI failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// rcgen failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A certificate refused for its dates: the file, whose it is, and when it is valid.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path}: certificate {subject} is {state}: valid from {not_before} to {not_after}, now {now}"
)]
pub struct NotValidNow {
    /// The certificate file.
    pub path: PathBuf,
    /// The certificate's subject.
    pub subject: String,
    /// `expired` or `not yet valid`.
    pub state: &'static str,
    /// Its `notBefore` (RFC 3339, UTC).
    pub not_before: String,
    /// Its `notAfter` (RFC 3339, UTC).
    pub not_after: String,
    /// The time it was checked at (RFC 3339, UTC).
    pub now: String,
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        Self::Rustls(e)
    }
}

/// The crypto provider every TLS config in the process uses (ring).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no certificates".into(),
        });
    }
    Ok(certs)
}

/// Reads the first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A certificate chain and key to serve, checked: every certificate of the chain valid now
/// (neither expired nor before its `notBefore`) and the key the first certificate's. Both
/// refusals name the files; they are made at start and on every reload, so a certificate
/// that would fail every client's handshake is never put in service.
pub fn load_served(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = load_certs(cert)?;
    let now = chrono::Utc::now().timestamp();
    for c in &certs {
        check_valid_at(cert, c, now)?;
    }
    let private = load_key(key)?;
    let signing = provider()
        .key_provider
        .load_private_key(private.clone_key())
        .map_err(|e| TlsError::Pem {
            path: key.to_owned(),
            reason: e.to_string(),
        })?;
    match rustls::sign::CertifiedKey::new(certs.clone(), signing).keys_match() {
        Ok(()) => Ok((certs, private)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }),
        Err(e) => Err(TlsError::Pem {
            path: cert.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Refuses `cert` (from the file `path`) unless `now` (seconds since the epoch) lies within its
/// validity.
fn check_valid_at(path: &Path, cert: &CertificateDer<'_>, now: i64) -> Result<(), TlsError> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        reason: format!("unparseable certificate: {e}"),
    })?;
    let (from, until) = (
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    );
    let state = if now > until {
        "expired"
    } else if now < from {
        "not yet valid"
    } else {
        return Ok(());
    };
    let rfc3339 = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0).map_or_else(
            || t.to_string(),
            |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    };
    Err(TlsError::NotValidNow(Box::new(NotValidNow {
        path: path.to_owned(),
        subject: c.subject().to_string(),
        state,
        not_before: rfc3339(from),
        not_after: rfc3339(until),
        now: rfc3339(now),
    })))
}

/// The subject of a DER certificate as an RFC 4514-like string, for audit records.
pub fn subject_of(cert: &CertificateDer<'_>) -> String {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "unparseable".into())
}

/// Who a client certificate names: what access lists are matched against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject as printed (`CN=..., O=...`), also the audit trail's party.
    pub subject: String,
    /// The subject's common name.
    pub common_name: Option<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
}

impl ClientIdentity {
    /// Reads a certificate; an unparseable one names nobody.
    pub fn of(cert: &CertificateDer<'_>) -> Self {
        let Ok((_, c)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
            return Self {
                subject: "unparseable".into(),
                ..Self::default()
            };
        };
        let common_name = c
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let dns_names = c
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            subject: c.subject().to_string(),
            common_name,
            dns_names,
        }
    }

    /// Whether `allowed` admits this identity: `"*"`, its common name, one of its DNS names, or
    /// its whole subject, exactly.
    pub fn admitted_by(&self, allowed: &[String]) -> bool {
        allowed.iter().any(|a| {
            a == "*"
                || *a == self.subject
                || self.common_name.as_deref() == Some(a.as_str())
                || self.dns_names.iter().any(|d| d == a)
        })
    }
}

/// Seconds until a certificate expires (negative once expired).
pub fn seconds_to_expiry(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let not_after = c.validity().not_after.timestamp();
    Some(not_after - chrono::Utc::now().timestamp())
}

#[cfg(test)]
mod tests;
