//! Test harness: a dev PKI in a temp dir, servers on port 0, and mTLS clients.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pdp_provider::config::Config;
use pdp_provider::sealed::DataKey;
use pdp_provider::store::{FindState, Store, StoreLimits, StoredFind};
use pdp_provider::tls::pki::files;

/// A dev PKI and data directory for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// A PostgreSQL database of its own, when the environment's store is one.
    pub postgres: Option<String>,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        pdp_provider::keys::init_dev(&dir.path().join("certs")).unwrap();
        Env {
            dir,
            postgres: None,
        }
    }

    /// An environment whose store is a new database on the PostgreSQL server named by
    /// `PDP_TEST_DATABASE_URL` (key-value form; scripts/test starts a throw-away one).
    pub async fn postgres() -> Self {
        let base = std::env::var("PDP_TEST_DATABASE_URL").expect(
            "the PostgreSQL tests need PDP_TEST_DATABASE_URL: run scripts/test, which starts a \
             throw-away PostgreSQL server",
        );
        let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let name = format!("it_{}", uuid::Uuid::new_v4().simple());
        let mut tries = 0;
        while let Err(e) = admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            tries += 1;
            assert!(tries < 50, "creating a test database: {e}");
            tokio::time::sleep(Duration::from_millis(20 * tries)).await;
        }
        Env {
            postgres: Some(format!("{base} dbname={name}")),
            ..Env::new()
        }
    }

    /// The store this environment's servers use, on its backend.
    pub async fn open_store(&self) -> Store {
        let limits = StoreLimits::default();
        match &self.postgres {
            None => Store::open(&self.store_path(), self.key(), limits).unwrap(),
            Some(url) => {
                let options = pdp_provider::store::PostgresOptions {
                    url: url.clone(),
                    pool_size: 4,
                    statement_timeout: Duration::from_secs(30),
                    tls: None,
                    plaintext_network: false,
                };
                Store::connect_postgres(&options, self.key(), limits)
                    .await
                    .unwrap()
            }
        }
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.path().join("certs").join(name)
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("data").join("pdp.sqlite")
    }

    /// A config for this environment: port 0 everywhere, no CAS work (matching finds stay queued).
    pub fn config(&self) -> Config {
        let mut c = Config::default();
        c.server.listen = "127.0.0.1:0".parse().unwrap();
        c.server.ops_listen = "127.0.0.1:0".parse().unwrap();
        c.tls.cert = self.cert(files::SERVER);
        c.tls.key = self.cert(files::SERVER_KEY);
        c.tls.client_ca = self.cert(files::CA);
        c.store.path = self.store_path();
        if let Some(url) = &self.postgres {
            c.store.backend = pdp_provider::config::Backend::Postgres;
            c.store.url = Some(url.clone());
        }
        c.crypto.data_key_file = Some(self.cert(files::DATA_KEY));
        c.workers.max_in_flight = 0;
        c.cas.client_cert = self.cert(files::PROVIDER);
        c.cas.client_key = self.cert(files::PROVIDER_KEY);
        c.cas.ca = self.cert(files::CA);
        c.view.signing_key = self.cert(files::VIEW_SIGNING_KEY);
        c.view.calendar = concat!(env!("CARGO_MANIFEST_DIR"), "/config/bank-holidays.json").into();
        c
    }

    pub fn key(&self) -> DataKey {
        DataKey::from_hex(&std::fs::read_to_string(self.cert(files::DATA_KEY)).unwrap()).unwrap()
    }

    /// A handle on the store the server uses (a second writer on the same file, as operator
    /// commands are).
    pub fn store(&self) -> Store {
        Store::open(&self.store_path(), self.key(), StoreLimits::default()).unwrap()
    }

    /// A plain SQLite connection to the store's file, to check what is on disk.
    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.store_path()).unwrap()
    }

    /// An mTLS client presenting `cert`/`key`, trusting the dev CA.
    pub fn client(&self, cert: &str, key: &str) -> reqwest::Client {
        let identity = pdp_provider::tls::client::Identity {
            ca: &self.cert(files::CA),
            cert: &self.cert(cert),
            key: &self.cert(key),
        };
        pdp_provider::tls::client::mtls_client(identity, |b| b.timeout(Duration::from_secs(20)))
            .unwrap()
    }

    /// The PFS's client.
    pub fn pfs(&self) -> reqwest::Client {
        self.client(files::PFS, files::PFS_KEY)
    }

    /// A rustls client config trusting the dev CA, with an optional client identity.
    pub fn rustls_client(
        &self,
        identity: Option<(&str, &str)>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in pdp_provider::tls::load_certs(&self.cert(files::CA)).unwrap() {
            roots.add(c).unwrap();
        }
        let b = rustls::ClientConfig::builder_with_provider(pdp_provider::tls::provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match identity {
            Some((cert, key)) => b
                .with_client_auth_cert(
                    pdp_provider::tls::load_certs(&self.cert(cert)).unwrap(),
                    pdp_provider::tls::load_key(&self.cert(key)).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

/// A server started in-process.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub ops_addr: std::net::SocketAddr,
    /// The operator console, when enabled.
    pub console_addr: Option<std::net::SocketAddr>,
    running: Option<pdp_provider::app::Running>,
}

impl Server {
    pub async fn start(config: Config) -> Self {
        let running = pdp_provider::app::start(config).await.unwrap();
        Server {
            addr: running.addr,
            ops_addr: running.ops_addr,
            console_addr: running.console_addr,
            running: Some(running),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.addr.port(), path)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.ops_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub const UAT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI3ZjNlOTJjNC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEifQ.c2lnbmF0dXJl";

/// A valid find request body.
pub fn find_body() -> serde_json::Value {
    serde_json::json!({
        "uat": UAT,
        "findData": {
            "names": [{"givenName": "JANE", "familyName": "O'DONNELL", "verified": true}],
            "dateOfBirth": {"value": "1970-04-21", "verified": true},
            "nino": {"value": "QQ123456C", "verified": false},
            "addresses": [{"addressLine1": "1 HIGH STREET", "postcode": "LS1 1AA", "verified": true}]
        }
    })
}

/// Posts a find request with the given X-Request-ID.
pub async fn post_find(
    client: &reqwest::Client,
    server_url: &str,
    request_id: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    client
        .post(server_url)
        .header("X-Request-ID", request_id)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Polls `f` until it returns `Some`, for at most 10 s: wait on conditions, never on sleeps.
pub async fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const SEED: u64 = 7;

/// The CAS simulator's TLS config for this environment.
pub fn sim_tls(env: &Env) -> pdp_provider::config::TlsConfig {
    pdp_sim::tls::sim_tls(&env.dir.path().join("certs"))
}

/// Starts a CAS simulator on port 0.
pub async fn cas_sim(env: &Env) -> pdp_sim::cas::CasSim {
    pdp_sim::cas::CasSim::start(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        &sim_tls(env),
    )
    .await
    .unwrap()
}

impl Env {
    /// Generates `n` members (seed [`SEED`]) into the store; returns them.
    pub async fn with_members(&self, n: u64) -> Vec<pdp_provider::members::record::MemberRecord> {
        let schemes = pdp_provider::members::generate::schemes(SEED);
        let members: Vec<_> = (0..n)
            .map(|i| pdp_provider::members::generate::member(SEED, i, &schemes))
            .collect();
        let records: Vec<_> = members
            .iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .collect();
        let store = self.open_store().await;
        self.import_into(&store, &records).await;
        store.close().await;
        members
    }

    /// Imports `records` into `store` from a JSON-lines file, as `members import` does.
    async fn import_into(&self, store: &Store, records: &[serde_json::Value]) {
        let path = self
            .dir
            .path()
            .join(format!("import-{}.jsonl", uuid::Uuid::new_v4()));
        let mut out = Vec::new();
        for r in records {
            out.extend(serde_json::to_vec(r).unwrap());
            out.push(b'\n');
        }
        std::fs::write(&path, out).unwrap();
        let report =
            pdp_provider::members::import::import_from_async(&path, store, Default::default())
                .await
                .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }

    /// A config with the pipeline on, pointed at `cas`.
    pub fn config_with_cas(&self, cas: &pdp_sim::cas::CasSim) -> Config {
        let mut c = self.config();
        c.workers.max_in_flight = 16;
        c.workers.backoff_base_ms = 50;
        c.workers.backoff_cap_ms = 500;
        c.workers.poll_interval_ms = 100;
        c.cas.base_url = cas.base_url();
        c
    }

    /// Waits until find `id` reaches an end; returns its row.
    pub async fn ended(&self, id: &str) -> StoredFind {
        let store = self.open_store().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(70);
        loop {
            let f = store.find_request(id).await.unwrap();
            if let Some(f) = f.filter(|f| matches!(f.state, FindState::Done | FindState::Failed)) {
                return f;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "find {id} did not end in 70 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub async fn eventually_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first generated member with a NINO and at least `pensions` pensions.
pub fn member_with(
    members: &[pdp_provider::members::record::MemberRecord],
    pensions: usize,
) -> &pdp_provider::members::record::MemberRecord {
    members
        .iter()
        .find(|m| m.nino.is_some() && m.pensions.len() >= pensions)
        .expect("a generated member fits")
}

/// Publishes the server's signing key at the simulator's `jwk_uri`, as PDP does at onboarding.
pub async fn publish_jwks(server: &Server, cas: &pdp_sim::cas::CasSim) {
    let jwks: serde_json::Value = reqwest::get(format!("http://{}/jwks.json", server.ops_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    cas.state.publish_jwks(&jwks);
}

/// A store on a side database, for library calls made outside a server.
pub fn side_store(env: &Env) -> Store {
    Store::open(
        &env.dir.path().join("side.sqlite"),
        env.key(),
        StoreLimits::default(),
    )
    .unwrap()
}

/// A find body for `member`, sent as `kind` (yes, possible or no), with a fresh `sub`.
pub fn find_for(
    member: &pdp_provider::members::record::MemberRecord,
    kind: pdp_provider::members::generate::FindKind,
) -> serde_json::Value {
    pdp_provider::members::generate::find_for(member, kind, &uuid::Uuid::new_v4().to_string())
}

/// A TLS client connection.
pub type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to `server` with `config`.
pub async fn connect(
    server: &Server,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<Tls, std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// A TLS 1.3 connection as the PFS (HTTP/1.1).
pub async fn connect_as_pfs(env: &Env, server: &Server) -> Tls {
    let config = env.rustls_client(
        Some((files::PFS, files::PFS_KEY)),
        &[&rustls::version::TLS13],
    );
    connect(server, config).await.unwrap()
}

impl Env {
    /// A `serve` config of this environment's: its certificates, its store (its PostgreSQL
    /// database when it has one), the data key in `data_key_file`, its view keys, the CAS at
    /// `cas_base_url`, then `extra` (further sections), both listeners on port 0.
    pub fn serve_toml(
        &self,
        data_key_file: &std::path::Path,
        cas_base_url: &str,
        extra: &str,
    ) -> String {
        let c = self.config();
        let store = match &self.postgres {
            None => format!("path = {:?}", c.store.path),
            Some(url) => format!("backend = \"postgres\"\nurl = {url:?}"),
        };
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nops_listen = \"127.0.0.1:0\"\n\
             [tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n\
             [store]\n{store}\n[crypto]\ndata_key_file = {data_key_file:?}\n\
             [view]\nsigning_key = {:?}\ncalendar = {:?}\n\
             [cas]\nbase_url = {cas_base_url:?}\nclient_cert = {:?}\nclient_key = {:?}\n\
             ca = {:?}\n{extra}",
            c.tls.cert,
            c.tls.key,
            c.tls.client_ca,
            c.view.signing_key,
            c.view.calendar,
            c.cas.client_cert,
            c.cas.client_key,
            c.cas.ca
        )
    }

    /// Writes `toml` to a new file of this environment's and starts `pdp-provider serve` on it
    /// ([`serve`]).
    pub fn spawn_serve(&self, toml: &str) -> std::process::Child {
        let path = self
            .dir
            .path()
            .join(format!("serve-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, toml).unwrap();
        serve(&path)
    }

    /// Imports `members` into this environment's SQLite store sealed with `key`, as
    /// `members import` does on an instance that also holds this environment's key (for
    /// opening what is stored, such as the index key).
    pub async fn import_sealed_with(&self, key: DataKey, members: &[serde_json::Value]) {
        let key = key.opening(self.key());
        let store = Store::open(&self.store_path(), key, StoreLimits::default()).unwrap();
        self.import_into(&store, members).await;
        store.close().await;
    }
}

/// Starts `pdp-provider serve --config config`, logging at info (its listening line carries the
/// bound addresses) to its piped stderr.
pub fn serve(config: &std::path::Path) -> std::process::Child {
    use std::process::{Command, Stdio};
    Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}
