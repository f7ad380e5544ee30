//! Outbound identity: the one place an mTLS reqwest client is built, presenting a certificate
//! and trusting only the configured CA bundle, TLS 1.2 or 1.3. The CAS client, the simulated PFS
//! and dashboard, and the load tool all build theirs here.

use std::path::Path;

use super::TlsError;

/// Why an mTLS client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The identity or the CA bundle could not be read.
    #[error(transparent)]
    Material(#[from] TlsError),
    /// reqwest refused the client's configuration (its TLS backend, its time-outs).
    #[error("building the mTLS client ({cert}): {source}")]
    Build {
        /// The identity's certificate file, to say which client it was.
        cert: std::path::PathBuf,
        /// reqwest's error.
        source: reqwest::Error,
    },
}

/// The PEM files of an outbound identity: the CA bundle it trusts, its certificate and key.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The CA bundle the peer's certificate must chain to.
    pub ca: &'a Path,
    /// This side's certificate chain.
    pub cert: &'a Path,
    /// This side's private key.
    pub key: &'a Path,
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// A rustls client configuration trusting only the CA bundle at `ca`, TLS 1.2 or 1.3,
/// presenting `identity` (certificate chain, key) when given: for outbound connections that are
/// not HTTP (the PostgreSQL store's).
pub fn rustls_client(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in super::load_certs(ca)? {
        roots.add(c).map_err(|e| pem_error(ca, e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(super::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots);
    Ok(match identity {
        Some((cert, key)) => {
            builder.with_client_auth_cert(super::load_certs(cert)?, super::load_key(key)?)?
        }
        None => builder.with_no_client_auth(),
    })
}

/// A client presenting `identity` and trusting only its CA; `configure` adds what the caller
/// needs (time-outs, HTTP/1.1 only, pool settings) before it is built.
pub fn mtls_client(
    identity: Identity<'_>,
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, ClientError> {
    let Identity { ca, cert, key } = identity;
    let mut pem = std::fs::read(cert).map_err(|e| pem_error(cert, e))?;
    pem.extend(std::fs::read(key).map_err(|e| pem_error(key, e))?);
    let id = reqwest::Identity::from_pem(&pem).map_err(|e| pem_error(cert, e))?;
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .identity(id);
    for c in super::load_certs(ca)? {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_der(c.as_ref()).map_err(|e| pem_error(ca, e))?,
        );
    }
    configure(builder)
        .build()
        .map_err(|source| ClientError::Build {
            cert: cert.to_owned(),
            source,
        })
}
