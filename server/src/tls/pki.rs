//! A development PKI, generated in code with rcgen (the certificates of `certs init`, which
//! [`crate::keys::init_dev`] completes with the data key and the view signing key).
//!
//! It writes an ecosystem CA; a server certificate for `localhost` and `127.0.0.1` (used by the
//! endpoint and the CAS simulator); client certificates for the PFS, a dashboard and the
//! provider's own outbound identity; and a second, unrelated "rogue" CA with a client
//! certificate, for refusal tests. Private keys are `*.key` and never committed. Production
//! certificates come from PDP's connection portal instead (see README).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::TlsError;

/// Paths of everything `certs init` writes, relative to its directory.
pub mod files {
    /// Ecosystem CA certificate.
    pub const CA: &str = "ca.pem";
    /// Server certificate (localhost, 127.0.0.1).
    pub const SERVER: &str = "server.pem";
    /// Server key.
    pub const SERVER_KEY: &str = "server.key";
    /// PFS client certificate.
    pub const PFS: &str = "pfs.pem";
    /// PFS client key.
    pub const PFS_KEY: &str = "pfs.key";
    /// Dashboard client certificate.
    pub const DASHBOARD: &str = "dashboard.pem";
    /// Dashboard client key.
    pub const DASHBOARD_KEY: &str = "dashboard.key";
    /// The provider's outbound (CAS client) certificate.
    pub const PROVIDER: &str = "provider-client.pem";
    /// The provider's outbound key.
    pub const PROVIDER_KEY: &str = "provider-client.key";
    /// The CAS's own client certificate (for PAT refresh calls to us).
    pub const CAS_CLIENT: &str = "cas-client.pem";
    /// The CAS client key.
    pub const CAS_CLIENT_KEY: &str = "cas-client.key";
    /// An unrelated CA.
    pub const ROGUE_CA: &str = "rogue-ca.pem";
    /// A client certificate from the unrelated CA.
    pub const ROGUE_CLIENT: &str = "rogue-client.pem";
    /// Its key.
    pub const ROGUE_CLIENT_KEY: &str = "rogue-client.key";
    /// A PFS client certificate from the ecosystem CA whose validity ended in 2021 (for
    /// refusal tests: `selftest` S17).
    pub const EXPIRED_CLIENT: &str = "expired-client.pem";
    /// Its key.
    pub const EXPIRED_CLIENT_KEY: &str = "expired-client.key";
    /// The AES-256-GCM data key, 64 hex digits ([`crate::keys::init_dev`]).
    pub const DATA_KEY: &str = "data.key";
    /// The view data token signing key, RSA 2048, PKCS#8 ([`crate::keys::init_dev`]).
    pub const VIEW_SIGNING_KEY: &str = "view-signing.key";
}

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Result<Ca, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "pdp-provider development");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Ca { cert, key })
}

fn leaf(
    issuer: &Ca,
    common_name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String), TlsError> {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "pdp-provider development");
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A client certificate from `issuer` valid from 2020-01-01 to 2021-01-01 only.
fn expired_leaf(issuer: &Ca, common_name: &str) -> Result<(String, String), TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `contents` to file `name` of `dir`; a `*.key` file readable by its owner only.
pub(crate) fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, TlsError> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|source| TlsError::Write {
        path: path.clone(),
        source,
    })?;
    #[cfg(unix)]
    if name.ends_with(".key") {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(path)
}

/// Writes the development PKI into `dir`, replacing what is there.
pub fn init(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let eco = ca("PDP development ecosystem CA")?;
    write(dir, files::CA, &eco.cert.pem())?;
    let server_sans = ["localhost", "127.0.0.1"];
    let (c, k) = leaf(
        &eco,
        "localhost",
        &server_sans,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    write(dir, files::SERVER, &c)?;
    write(dir, files::SERVER_KEY, &k)?;
    for (cn, cert, key) in [
        ("pension-finder-service", files::PFS, files::PFS_KEY),
        ("dashboard", files::DASHBOARD, files::DASHBOARD_KEY),
        ("pdp-provider", files::PROVIDER, files::PROVIDER_KEY),
        (
            "consent-authorisation-service",
            files::CAS_CLIENT,
            files::CAS_CLIENT_KEY,
        ),
    ] {
        let (c, k) = leaf(&eco, cn, &[], ExtendedKeyUsagePurpose::ClientAuth)?;
        write(dir, cert, &c)?;
        write(dir, key, &k)?;
    }
    let (c, k) = expired_leaf(&eco, "pension-finder-service")?;
    write(dir, files::EXPIRED_CLIENT, &c)?;
    write(dir, files::EXPIRED_CLIENT_KEY, &k)?;
    let rogue = ca("Unrelated CA")?;
    write(dir, files::ROGUE_CA, &rogue.cert.pem())?;
    let (c, k) = leaf(
        &rogue,
        "pension-finder-service",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    write(dir, files::ROGUE_CLIENT, &c)?;
    write(dir, files::ROGUE_CLIENT_KEY, &k)?;
    Ok(())
}
