//! The simulators' TLS: each one serves the dev PKI's server certificate (`certs init`) and
//! trusts the dev CA for its clients.

use std::path::Path;

use pdp_provider::config::TlsConfig;
use pdp_provider::tls::pki::files;

/// The TLS config of a simulator: the dev server certificate, the dev CA for clients.
pub fn sim_tls(certs: &Path) -> TlsConfig {
    TlsConfig {
        cert: certs.join(files::SERVER),
        key: certs.join(files::SERVER_KEY),
        client_ca: certs.join(files::CA),
    }
}
