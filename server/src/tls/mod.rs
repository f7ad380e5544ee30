//! Mutual TLS: the ecosystem listener's config, the outbound identity, and the dev PKI.
//!
//! - [`server`]: TLS 1.2 and 1.3 only, client certificate required and verified against the
//!   configured ecosystem CA bundle, ALPN `h2` and `http/1.1`.
//! - [`client`]: the outbound identity (reqwest over rustls).
//! - [`pki`]: `certs init`, the development PKI written with rcgen.

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
    /// rustls refused the configuration.
    #[error("tls config: {0}")]
    Rustls(#[from] rustls::Error),
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
