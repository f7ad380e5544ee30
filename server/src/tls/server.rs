//! The ecosystem listener's TLS config (CoCo1.1.1, 1.1.2).

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::{load_certs, load_served, provider, TlsError};
use crate::config::TlsConfig;

/// Builds the server config: TLS 1.3 and 1.2 only (rustls has no older versions), a client
/// certificate required and chained to `client_ca`, ALPN `h2` then `http/1.1`. The certificate
/// must be valid now and match its key ([`super::load_served`]).
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in load_certs(&tls.client_ca)? {
        roots.add(ca).map_err(|e| TlsError::Pem {
            path: tls.client_ca.clone(),
            reason: e.to_string(),
        })?;
    }
    let (chain, key) = load_served(&tls.cert, &tls.key)?;
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
