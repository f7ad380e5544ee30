//! Outbound identity: an mTLS reqwest client builder presenting a certificate and trusting only
//! the configured CA bundle, TLS 1.2 or 1.3.

use std::path::Path;

use super::TlsError;

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// A reqwest builder with the identity in `cert`/`key` (PEM) that trusts only `ca`.
pub fn mtls_builder(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<reqwest::ClientBuilder, TlsError> {
    let mut identity = std::fs::read(cert).map_err(|e| pem_error(cert, e))?;
    identity.extend(std::fs::read(key).map_err(|e| pem_error(key, e))?);
    let identity = reqwest::Identity::from_pem(&identity).map_err(|e| pem_error(cert, e))?;
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .identity(identity);
    for c in super::load_certs(ca)? {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_der(c.as_ref()).map_err(|e| pem_error(ca, e))?,
        );
    }
    Ok(builder)
}
