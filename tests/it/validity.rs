//! Certificates the endpoint serves are checked before they are put in service: an expired or
//! not-yet-valid one, or a key that is not its certificate's, is refused at start (naming the
//! file and the dates) and on a reload by file change or `SIGHUP` (the old one keeps serving).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use pdp_provider::tls::pki::files;
use rcgen::{date_time_ymd, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use crate::harness::{Env, Server};

/// A CA of its own that issues server certificates with chosen validity dates.
struct DatedPki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl DatedPki {
    fn new(env: &Env) -> Self {
        let dir = env.dir.path().join("dated");
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Dated test CA");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Self { dir, ca, ca_key }
    }

    /// The CA's certificate file, for clients to trust.
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for localhost valid from `from` to `until` (year, month, day):
    /// its certificate and key files, named after `name`.
    fn issue(&self, name: &str, from: (i32, u8, u8), until: (i32, u8, u8)) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(until.0, until.1, until.2);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn valid(&self, name: &str) -> (PathBuf, PathBuf) {
        self.issue(name, (2020, 1, 1), (2099, 12, 31))
    }

    fn expired(&self, name: &str) -> (PathBuf, PathBuf) {
        self.issue(name, (2022, 1, 1), (2024, 1, 31))
    }

    fn not_yet_valid(&self, name: &str) -> (PathBuf, PathBuf) {
        self.issue(name, (2099, 1, 1), (2100, 1, 1))
    }
}

/// Replaces `to` with `from`'s bytes in one step, as a deployment tool would.
fn replace(from: &Path, to: &Path) {
    let aside = to.with_extension("new");
    std::fs::copy(from, &aside).unwrap();
    std::fs::rename(&aside, to).unwrap();
}

/// The DER of the certificate the listener at `addr` presents, trusting `trust`, presenting
/// the PFS's certificate when `pfs` names the environment.
async fn presented_at(addr: std::net::SocketAddr, trust: &Path, pfs: Option<&Env>) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in pdp_provider::tls::load_certs(trust).unwrap() {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(pdp_provider::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match pfs {
        Some(env) => cfg
            .with_client_auth_cert(
                pdp_provider::tls::load_certs(&env.cert(files::PFS)).unwrap(),
                pdp_provider::tls::load_key(&env.cert(files::PFS_KEY)).unwrap(),
            )
            .unwrap(),
        None => cfg.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der(path: &Path) -> Vec<u8> {
    pdp_provider::tls::load_certs(path).unwrap()[0].to_vec()
}

/// A config file for the real binary serving `cert` and `key`, with `server` lines added to
/// its `[server]` section and `more` sections after the rest.
pub(crate) fn config_file(env: &Env, cert: &Path, key: &Path, server: &str, more: &str) -> PathBuf {
    let c = env.config();
    let path = env
        .dir
        .path()
        .join(format!("validity-{}.toml", uuid::Uuid::new_v4()));
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nops_listen = \"127.0.0.1:0\"\n{server}\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {:?}\n\
         [store]\npath = {:?}\n[crypto]\ndata_key_file = {:?}\n\
         [view]\nsigning_key = {:?}\ncalendar = {:?}\n\
         [cas]\nbase_url = \"https://127.0.0.1:9\"\nclient_cert = {:?}\nclient_key = {:?}\n\
         ca = {:?}\n[workers]\nmax_in_flight = 0\n{more}",
        c.tls.client_ca,
        c.store.path,
        c.crypto.data_key_file.unwrap(),
        c.view.signing_key,
        c.view.calendar,
        c.cas.client_cert,
        c.cas.client_key,
        c.cas.ca
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// Runs `serve` on `config`, which must fail to start: its exit code and what it printed.
pub(crate) fn refused_start(config: &Path) -> (i32, String) {
    let out = crate::harness::serve(config).wait_with_output().unwrap();
    let code = out.status.code().expect("exited, not killed");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_expired_or_not_yet_valid_server_certificate_is_refused_at_start_naming_file_and_dates() {
    let env = Env::new();
    let pki = DatedPki::new(&env);
    for ((cert, key), state, dates) in [
        (
            pki.expired("expired"),
            "expired",
            ["2022-01-01T00:00:00Z", "2024-01-31T00:00:00Z"],
        ),
        (
            pki.not_yet_valid("early"),
            "not yet valid",
            ["2099-01-01T00:00:00Z", "2100-01-01T00:00:00Z"],
        ),
    ] {
        let (code, stderr) = refused_start(&config_file(&env, &cert, &key, "", ""));
        assert_ne!(code, 0, "{stderr}");
        assert!(stderr.contains(&cert.display().to_string()), "{stderr}");
        assert!(stderr.contains(state), "{stderr}");
        for d in dates {
            assert!(stderr.contains(d), "{d}: {stderr}");
        }
        assert!(!stderr.contains("endpoint listening"), "{stderr}");
    }
}

#[test]
fn an_expired_console_certificate_is_refused_at_start() {
    let env = Env::new();
    let pki = DatedPki::new(&env);
    let (cert, key) = pki.expired("console");
    let console = format!(
        "[console]\nenabled = true\nlisten = \"127.0.0.1:0\"\ncert = {cert:?}\nkey = {key:?}\n"
    );
    let config = config_file(
        &env,
        &env.cert(files::SERVER),
        &env.cert(files::SERVER_KEY),
        "",
        &console,
    );
    let (code, stderr) = refused_start(&config);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains(&cert.display().to_string()), "{stderr}");
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(stderr.contains("2024-01-31T00:00:00Z"), "{stderr}");
}

#[test]
fn a_key_that_is_not_the_certificates_is_reported_once_naming_both_files() {
    let env = Env::new();
    let (cert, key) = (env.cert(files::SERVER), env.cert(files::PFS_KEY));
    let (code, stderr) = refused_start(&config_file(&env, &cert, &key, "", ""));
    assert_ne!(code, 0, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("not the private key"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&cert.display().to_string()), "{line}");
    assert!(line.contains(&key.display().to_string()), "{line}");
    assert_eq!(stderr.matches("not the private key").count(), 1, "{stderr}");
    // rustls's own words for it are not printed after ours.
    assert!(!stderr.to_lowercase().contains("inconsistent"), "{stderr}");
}

#[tokio::test]
async fn an_expired_or_not_yet_valid_certificate_is_refused_on_reload_and_the_old_one_serves() {
    let env = Env::new();
    let pki = DatedPki::new(&env);
    let (good_cert, good_key) = pki.valid("good");
    // Certificate and key in one file, so that one rename replaces both at once.
    let live = env.dir.path().join("live.pem");
    let both = |(cert, key): (PathBuf, PathBuf)| {
        let joined = cert.with_extension("both");
        let pem = [std::fs::read(&cert).unwrap(), std::fs::read(key).unwrap()].concat();
        std::fs::write(&joined, pem).unwrap();
        (cert, joined)
    };
    replace(&both((good_cert.clone(), good_key)).1, &live);
    let mut config = env.config();
    config.tls.cert = live.clone();
    config.tls.key = live.clone();
    config.console.enabled = true;
    config.console.listen = "127.0.0.1:0".parse().unwrap();
    config.server.reload_poll_ms = 50;
    let server = Server::start(config).await;
    let console = server.console_addr.unwrap();
    assert_eq!(
        presented_at(server.addr, &pki.ca(), Some(&env)).await,
        der(&good_cert)
    );

    for (n, pair) in [pki.expired("expired"), pki.not_yet_valid("early")]
        .into_iter()
        .enumerate()
    {
        replace(&both(pair).1, &live);
        // Each refusal is counted for the listener and for the console sharing its files.
        let refused =
            |part: &str| format!("pdp_reloads_total{{part=\"{part}\",outcome=\"refused\"}}");
        let mut counted = false;
        for _ in 0..200 {
            let m = server.metrics().await;
            let count = |part: &str| {
                m.lines()
                    .find(|l| l.starts_with(&refused(part)))
                    .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            if count("listener") > n as f64 && count("console") > n as f64 {
                counted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(counted, "the refusal was not counted");
        assert_eq!(
            presented_at(server.addr, &pki.ca(), Some(&env)).await,
            der(&good_cert),
            "the listener put a certificate out of its dates in service"
        );
        assert_eq!(
            presented_at(console, &pki.ca(), None).await,
            der(&good_cert),
            "the console put a certificate out of its dates in service"
        );
    }
    server.stop().await;
}

#[test]
fn sighup_refuses_an_expired_certificate_naming_file_and_dates_and_keeps_the_old_one() {
    let env = Env::new();
    let pki = DatedPki::new(&env);
    let (good_cert, good_key) = pki.valid("good");
    let live = env.dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let (live_cert, live_key) = (live.join("server.pem"), live.join("server.key"));
    replace(&good_cert, &live_cert);
    replace(&good_key, &live_key);
    // No polling to speak of: only SIGHUP reloads.
    let config = config_file(&env, &live_cert, &live_key, "reload_poll_ms = 86400000", "");
    let mut child = crate::harness::serve(&config);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str| -> String {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line with {what:?}"));
            if line.contains(what) {
                return line;
            }
        }
    };
    let listening = wait_for("endpoint listening");
    let addr: std::net::SocketAddr = listening
        .split("addr=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(|s| s.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':'))
        .unwrap()
        .parse()
        .unwrap();

    let (old_cert, old_key) = pki.expired("expired");
    replace(&old_key, &live_key);
    replace(&old_cert, &live_cert);
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // (A reload that saw the new key beside the old certificate is refused too: skipped.)
    let refused = wait_for("2024-01-31T00:00:00Z");
    assert!(refused.contains("refused"), "{refused}");
    assert!(refused.contains("listener"), "{refused}");
    assert!(
        refused.contains(&live_cert.display().to_string()),
        "{refused}"
    );
    assert!(refused.contains("expired"), "{refused}");
    assert!(refused.contains("2024-01-31T00:00:00Z"), "{refused}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let presented = rt.block_on(presented_at(addr, &pki.ca(), Some(&env)));
    assert_eq!(
        presented,
        der(&good_cert),
        "the expired certificate is served"
    );
    child.kill().unwrap();
    let _ = child.wait();
}
