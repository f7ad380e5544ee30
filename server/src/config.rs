//! Configuration: the TOML file as written, with defaults, validated once at start-up.
//!
//! Every bound the server enforces is a field here with its unit in the name. Relative paths are
//! resolved against the directory the process was started in. A few values can be overridden by
//! environment variables, each named by a constant below.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod backup;
pub mod rules;

/// Overrides `server.listen`.
pub const ENV_LISTEN: &str = "PDP_LISTEN";
/// Overrides `server.ops_listen`.
pub const ENV_OPS_LISTEN: &str = "PDP_OPS_LISTEN";
/// Overrides `store.path`.
pub const ENV_STORE_PATH: &str = "PDP_STORE_PATH";

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What toml said.
        source: toml::de::Error,
    },
    /// An environment override does not parse.
    #[error("environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A value is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field path, e.g. `server.max_connections`.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The ecosystem listener and the ops listener.
    pub server: ServerConfig,
    /// Certificates and keys for the ecosystem listener.
    pub tls: TlsConfig,
    /// The durable store and the find queue bound.
    pub store: StoreConfig,
    /// The key that seals find data at rest.
    pub crypto: CryptoConfig,
    /// The matching worker pool.
    pub workers: WorkersConfig,
    /// The CAS the provider calls.
    pub cas: CasConfig,
    /// Match rules.
    pub matching: MatchingConfig,
    /// The view endpoint: signing, UMA, time budget, values timing.
    pub view: ViewConfig,
    /// Audit retention.
    pub audit: AuditConfig,
    /// Requests refused before their handler, limited per client identity.
    pub limits: LimitsConfig,
    /// Service levels: when the connection went live.
    pub sla: SlaConfig,
    /// Which client identities may call which endpoint.
    pub access: AccessConfig,
    /// PDP reporting: the daily submissions.
    pub reporting: ReportingConfig,
    /// The operator console: its own TLS listener, sessions, role limits.
    pub console: ConsoleConfig,
    /// Backups the server takes of its embedded store.
    pub backup: backup::BackupConfig,
}

/// PDP reporting: when the previous day is submitted, how a submission is retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportingConfig {
    /// The server submits the previous day (UTC) once a day from this time (`HH:MM`, UTC).
    pub at: String,
    /// Off: the server submits nothing by itself (`report submit` still does).
    pub enabled: bool,
    /// Days before yesterday also submitted (as `late`) when they were missed; never days
    /// before the connection went live.
    pub catch_up_days: u32,
    /// A submission claimed by an instance that then stopped answering (a crash) is sent again,
    /// identical, after this long. Renewed before each call, so it must outlast one call's
    /// retries: more than `retry_budget_s` + `cas.connect_timeout_ms` + `cas.call_timeout_ms`.
    pub lease_s: u64,
    /// How long one call is retried on `429` and `5xx` before it is left for a later run.
    pub retry_budget_s: u64,
    /// First backoff bound (full jitter, doubling).
    pub backoff_base_ms: u64,
    /// Largest backoff bound.
    pub backoff_cap_ms: u64,
}

impl Default for ReportingConfig {
    fn default() -> Self {
        Self {
            at: "02:00".into(),
            enabled: true,
            catch_up_days: 7,
            lease_s: 900,
            retry_budget_s: 600,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 60_000,
        }
    }
}

impl ReportingConfig {
    /// `at` as a time of day.
    pub fn at_time(&self) -> Option<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(&self.at, "%H:%M").ok()
    }

    /// The longest one part of a submission can be held by its retries (ms): the retry budget,
    /// then a call begun just before it ends and awaited to its time-out. The claim's lease is
    /// renewed before each part, so `lease_s` must outlast this.
    pub fn part_worst_case_ms(&self, cas: &CasConfig) -> u64 {
        self.retry_budget_s
            .saturating_mul(1000)
            .saturating_add(cas.connect_timeout_ms)
            .saturating_add(cas.call_timeout_ms)
    }
}

/// Which client identities may call each ecosystem endpoint (from the ecosystem's onboarding).
///
/// An entry matches a client certificate's subject common name, one of its DNS subject
/// alternative names, or its whole subject as printed (`CN=..., O=...`), exactly. `"*"` admits
/// every certificate the ecosystem CA issued. Others get `403`, logged and counted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// `POST /find-requests`: the pension finder service.
    pub find: Vec<String>,
    /// `GET <view path>/{assetGuid}`: dashboards.
    pub view: Vec<String>,
    /// `POST /pat-refresh`: the consent and authorisation service.
    pub pat_refresh: Vec<String>,
}

impl AccessConfig {
    /// An empty list is an endpoint nobody may call, served anyway: a mistake, refused.
    fn validate(&self) -> Result<(), ConfigError> {
        for (field, list) in [
            ("access.find", &self.find),
            ("access.view", &self.view),
            ("access.pat_refresh", &self.pat_refresh),
        ] {
            if list.is_empty() || list.iter().any(|a| a.trim().is_empty()) {
                return Err(invalid(
                    field,
                    "must name at least one client identity (\"*\" admits any certified \
                     client), and no empty one",
                ));
            }
        }
        Ok(())
    }
}

impl Default for AccessConfig {
    /// The development PKI's identities (`certs init`); production sets PDP's.
    fn default() -> Self {
        Self {
            find: vec!["pension-finder-service".into()],
            view: vec!["dashboard".into()],
            pat_refresh: vec!["consent-authorisation-service".into()],
        }
    }
}

/// Listeners, limits and time-outs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Ecosystem (mTLS) listener address.
    pub listen: SocketAddr,
    /// Ops listener (plain HTTP): health, metrics, JWK set. Keep it on loopback or a private
    /// network.
    pub ops_listen: SocketAddr,
    /// Connections held open at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time allowed for the TLS handshake.
    pub tls_handshake_timeout_ms: u64,
    /// Time allowed for a request's headers to arrive (HTTP/1.1).
    pub header_read_timeout_ms: u64,
    /// A connection with no bytes moving for this long is closed.
    pub idle_timeout_ms: u64,
    /// Time allowed for one request, body included, before the server answers on its own.
    pub request_timeout_ms: u64,
    /// Largest request body accepted (wire contract §3.1: 64 KiB).
    pub max_body_bytes: usize,
    /// Largest header block accepted.
    pub max_header_bytes: usize,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace_ms: u64,
    /// Connections held open at once on the ops listener (its header, idle and accept limits
    /// are the ecosystem listener's).
    pub ops_max_connections: usize,
    /// How often key and certificate files are checked for changes (they are also reloaded on
    /// `SIGHUP`).
    pub reload_poll_ms: u64,
}

/// Certificates for the ecosystem listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// The ecosystem CA bundle that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
}

/// Which durable backend holds the journal.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite in WAL mode with `synchronous = FULL` (the default): one instance.
    Sqlite,
    /// PostgreSQL (`store.url`): several instances on one database.
    Postgres,
}

/// The durable store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The backend.
    pub backend: Backend,
    /// SQLite database file.
    pub path: PathBuf,
    /// PostgreSQL connection URL (`postgres://user:password@host:port/db`; a host that is a
    /// directory is a Unix socket). `PDP_DATABASE_URL` wins when set.
    pub url: Option<String>,
    /// PostgreSQL: pooled connections (the group-commit writer holds one more).
    pub pool_size: usize,
    /// PostgreSQL: longest any statement may run, in milliseconds.
    pub statement_timeout_ms: u64,
    /// PostgreSQL: the CA bundle (PEM) the database server's certificate must chain to. Set,
    /// every connection is TLS 1.2 or 1.3, the server's certificate and name verified
    /// (`sslmode` in the URL is taken as `require`).
    pub tls_ca: Option<PathBuf>,
    /// PostgreSQL: a client certificate (PEM) to present, for `cert` authentication; with
    /// `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PostgreSQL: the client certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// PostgreSQL: allows a connection without TLS to a host on the network (neither a Unix
    /// socket nor loopback). Off, such a URL without `tls_ca` is refused at start.
    pub plaintext_network: bool,
    /// Unprocessed find requests held at most; beyond it new finds get `503` with `Retry-After`.
    pub queue_max_pending: u64,
    /// Appends and audit records committed in one transaction at most.
    pub journal_max_batch: usize,
    /// Appends waiting for the journal writer at most; beyond it new finds get `503`.
    pub journal_channel_capacity: usize,
    /// `Retry-After` sent with a `503` when shedding.
    pub retry_after_s: u64,
    /// Read connections beside the one writer (views, the pipeline's reads, operators).
    pub read_connections: u32,
}

/// Where the AES-256 key that seals find data comes from.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoConfig {
    /// A file holding the key as 64 hex digits.
    pub data_key_file: Option<PathBuf>,
    /// Or the name of an environment variable holding the key as 64 hex digits (wins over the
    /// file).
    pub data_key_env: Option<String>,
    /// Retired keys (64 hex digits each) that still open what they sealed, until `keys rotate`
    /// has re-sealed everything with the active key.
    pub old_data_key_files: Vec<PathBuf>,
}

/// The find pipeline: the CAS work of matching finds (matching itself happens at the ACK).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Matching finds worked at once, each its own task (their CAS calls overlap); 0 leaves
    /// matching finds queued (ACK only). `concurrency` is accepted as its older name.
    #[serde(alias = "concurrency")]
    pub max_in_flight: usize,
    /// Finds claimed from the store in one go at most.
    pub claim_batch: usize,
    /// Time from the ACK within which registration must finish (CoCo2.1.2: 60 s).
    pub completion_budget_ms: u64,
    /// A claimed find is held under a lease of this length, renewed every third of it while
    /// it is worked; a find whose lease runs out (its instance died) is claimed again, by this
    /// instance or another.
    pub lease_ms: u64,
    /// First retry delay for CAS calls.
    pub backoff_base_ms: u64,
    /// Largest retry delay for CAS calls.
    pub backoff_cap_ms: u64,
    /// How often the pipeline looks for work it was not woken for (finds left by a crash).
    pub poll_interval_ms: u64,
}

/// The CAS the provider calls (wire contract §4), over mTLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CasConfig {
    /// Base URL; `/token`, `/rreguri`, `/perm`, `/introspect`, `/jwk_uri` are under it.
    pub base_url: String,
    /// The provider's client certificate (PEM).
    pub client_cert: PathBuf,
    /// Its key (PEM, PKCS#8).
    pub client_key: PathBuf,
    /// The CA bundle the CAS's server certificate chains to.
    pub ca: PathBuf,
    /// Time-out of one CAS call.
    pub call_timeout_ms: u64,
    /// Time-out of connecting to the CAS.
    pub connect_timeout_ms: u64,
}

/// Match rules: the default set, and per-holdername overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchingConfig {
    /// Rules for holdernames without their own.
    pub default: rules::RuleSet,
    /// Per-holdername rule sets.
    pub schemes: Vec<SchemeRules>,
    /// Days a possible match waits for review before it is de-registered as `match-timeout`.
    pub possible_review_days: u32,
    /// How often a running endpoint looks for member data changes (imports, removals,
    /// suspended schemes) to apply to its match index.
    pub refresh_ms: u64,
}

/// The view endpoint (wire contract §3.2).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewConfig {
    /// The view data token signing key (PKCS#8 PEM: RSA, or P-256 for ES256).
    pub signing_key: PathBuf,
    /// `RS256` (default), `PS256` or `ES256`.
    pub algorithm: String,
    /// `iss` of view data tokens.
    pub issuer: String,
    /// `aud` of view data tokens; default the CAS token endpoint.
    pub audience: Option<String>,
    /// `as_uri` in the UMA challenge; default the CAS token endpoint.
    pub as_uri: Option<String>,
    /// View data token lifetime.
    pub token_ttl_s: i64,
    /// The whole view, receipt to answer, at most (CAS calls included).
    pub budget_ms: u64,
    /// Time-out of the permission ticket call.
    pub perm_timeout_ms: u64,
    /// Time-out of the introspection call.
    pub introspect_timeout_ms: u64,
    /// `Retry-After` on a `503` when the CAS is slow or down.
    pub retry_after_s: u64,
    /// UK bank holidays (gov.uk JSON format); rule-based holidays when the file is absent.
    pub calendar: PathBuf,
    /// The nation whose bank holidays count, for holdernames not listed in `nations`.
    pub nation: Nation,
    /// Per-holdername nations.
    pub nations: Vec<HoldernameNation>,
    /// The path of the view data URL registered with PDP, before `/{assetGuid}` (wire contract
    /// §3.2).
    pub path: String,
    /// Signing keys published in the JWK set beside `signing_key` without signing: a new key
    /// before the switch, an old one until the tokens it signed have expired.
    pub published_keys: Vec<PathBuf>,
}

/// A holdername's nation for working days.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldernameNation {
    /// The holdername.
    pub holdername: uuid::Uuid,
    /// Its nation.
    pub nation: Nation,
}

/// A UK nation with its own bank holidays (the divisions of the gov.uk file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nation {
    /// England and Wales (`england-and-wales`); the default.
    #[default]
    EnglandAndWales,
    /// Scotland (`scotland`).
    Scotland,
    /// Northern Ireland (`northern-ireland`).
    NorthernIreland,
}

/// One holdername's rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeRules {
    /// The holdername.
    pub holdername: uuid::Uuid,
    /// Its rules.
    pub rules: rules::RuleSet,
}

/// Audit trail retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days audit records are kept (CoCo2.1.6: 6 years).
    pub retention_days: u32,
}

/// Requests refused before their handler (no route, `403`, `405`, a malformed request line or
/// header: `crate::http::limit`), limited per client identity. Past the rate they are answered
/// `429` with `Retry-After` and counted in one audit record per identity, endpoint and refusal
/// per summary window instead of a record each.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Refused requests a second one identity may make, sustained, before `429`.
    pub refused_per_s: u32,
    /// Refused requests one identity may make at once (the bucket's size).
    pub refused_burst: u32,
    /// How often the counts of limited requests are written to the audit trail and logged.
    pub summary_window_s: u64,
    /// Client identities tracked at once; past it, new identities share one bucket.
    pub max_identities: usize,
}

/// Service levels (CoCo2.1.5).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlaConfig {
    /// The day the connection went live (`YYYY-MM-DD`, from 00:00 UTC): availability counts
    /// from it. Unset: from the first heartbeat the store holds.
    pub go_live: Option<GoLive>,
}

/// The console's settings (`[console]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Off by default: the console listens only when enabled.
    pub enabled: bool,
    /// Its own listener (HTTPS), never the ecosystem's.
    pub listen: SocketAddr,
    /// Its certificate chain (PEM); the ecosystem listener's `tls.cert` when unset.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); `tls.key` when unset.
    pub key: Option<PathBuf>,
    /// Connections at once.
    pub max_connections: usize,
    /// A session ends after this long without a request.
    pub session_idle_timeout_s: u64,
    /// A session ends this long after sign-in, used or not.
    pub session_max_age_s: u64,
    /// Scheme admins at most (PDP's default 4; it approves more case by case).
    pub scheme_admin_limit: usize,
    /// Largest form body accepted.
    pub max_form_bytes: usize,
    /// Where the load tool's runs are kept (`result.json` files below it), for the test
    /// managers' page.
    pub load_results_dir: PathBuf,
}

/// A go-live day: `go_live = "2026-11-03"` or the TOML date `go_live = 2026-11-03`; a date and
/// time is refused, since availability is counted from a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoLive(pub chrono::NaiveDate);

// === impl GoLive ===

impl GoLive {
    /// Its start, 00:00 UTC, in µs since the epoch.
    pub fn start_micros(self) -> i64 {
        crate::day_start(self.0)
    }

    fn parse(s: &str) -> Option<Self> {
        (s.len() == 10)
            .then(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .flatten()
            .map(Self)
    }
}

impl<'de> Deserialize<'de> for GoLive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = GoLive;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a date, YYYY-MM-DD")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<GoLive, E> {
                GoLive::parse(s).ok_or_else(|| E::custom("expected a date, YYYY-MM-DD"))
            }

            // A TOML date arrives as toml's own datetime type.
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<GoLive, A::Error> {
                let dt = toml::value::Datetime::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                match (dt.date, dt.time, dt.offset) {
                    (Some(_), None, None) => self.visit_str(&dt.to_string()),
                    _ => Err(serde::de::Error::custom(
                        "expected a date, YYYY-MM-DD, without a time",
                    )),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

// === impl Nation ===

impl Nation {
    /// All three nations, in the gov.uk file's order.
    pub const ALL: [Nation; 3] = [
        Nation::EnglandAndWales,
        Nation::Scotland,
        Nation::NorthernIreland,
    ];

    /// The gov.uk division name: `england-and-wales`, `scotland` or `northern-ireland`.
    pub fn as_str(self) -> &'static str {
        match self {
            Nation::EnglandAndWales => "england-and-wales",
            Nation::Scotland => "scotland",
            Nation::NorthernIreland => "northern-ireland",
        }
    }
}

impl std::fmt::Display for Nation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Defaults ===

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".parse().expect("literal address"),
            ops_listen: "127.0.0.1:9090".parse().expect("literal address"),
            max_connections: 10_000,
            tls_handshake_timeout_ms: 5_000,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            request_timeout_ms: 9_000,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_concurrent_streams: 256,
            shutdown_grace_ms: 10_000,
            ops_max_connections: 64,
            reload_poll_ms: 5_000,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: "certs/server.pem".into(),
            key: "certs/server.key".into(),
            client_ca: "certs/ca.pem".into(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            path: "data/pdp.sqlite".into(),
            url: None,
            pool_size: 16,
            statement_timeout_ms: 10_000,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            plaintext_network: false,
            queue_max_pending: 100_000,
            journal_max_batch: 512,
            journal_channel_capacity: 8_192,
            retry_after_s: 5,
            read_connections: 4,
        }
    }
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            claim_batch: 64,
            completion_budget_ms: 60_000,
            lease_ms: 15_000,
            backoff_base_ms: 200,
            backoff_cap_ms: 5_000,
            poll_interval_ms: 1_000,
        }
    }
}

impl CasConfig {
    /// The CAS token endpoint: the view's default audience and `as_uri`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.base_url.trim_end_matches('/'))
    }
}

impl Default for CasConfig {
    fn default() -> Self {
        Self {
            base_url: "https://127.0.0.1:8444".into(),
            client_cert: "certs/provider-client.pem".into(),
            client_key: "certs/provider-client.key".into(),
            ca: "certs/ca.pem".into(),
            call_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
        }
    }
}

impl ViewConfig {
    /// The nation whose bank holidays count for `holdername` (the default for none or an
    /// unlisted one).
    pub fn nation_of(&self, holdername: Option<uuid::Uuid>) -> Nation {
        holdername
            .and_then(|h| self.nations.iter().find(|n| n.holdername == h))
            .map_or(self.nation, |n| n.nation)
    }
}

impl Default for ViewConfig {
    fn default() -> Self {
        Self {
            signing_key: "certs/view-signing.key".into(),
            algorithm: "RS256".into(),
            issuer: "pdp-provider".into(),
            audience: None,
            as_uri: None,
            token_ttl_s: 600,
            budget_ms: 5_000,
            perm_timeout_ms: 2_000,
            introspect_timeout_ms: 2_000,
            retry_after_s: 2,
            calendar: "config/bank-holidays.json".into(),
            nation: Default::default(),
            nations: Vec::new(),
            path: "/view-data".into(),
            published_keys: Vec::new(),
        }
    }
}

impl Default for MatchingConfig {
    fn default() -> Self {
        Self {
            default: rules::RuleSet::default_rules(),
            schemes: Vec::new(),
            possible_review_days: 30,
            refresh_ms: 1_000,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 6 * 366,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            refused_per_s: 1,
            refused_burst: 20,
            summary_window_s: 60,
            max_identities: 1024,
        }
    }
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:9443".parse().expect("static address"),
            cert: None,
            key: None,
            max_connections: 64,
            session_idle_timeout_s: 15 * 60,
            session_max_age_s: 8 * 3600,
            scheme_admin_limit: 4,
            max_form_bytes: 16 * 1024,
            load_results_dir: "load-tests/results".into(),
        }
    }
}

// === impl Config ===

impl Config {
    /// Reads, overrides from the environment, and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        config.with_env()?.validate()
    }

    /// Applies the `PDP_*` environment overrides.
    pub fn with_env(mut self) -> Result<Self, ConfigError> {
        if let Ok(v) = std::env::var(ENV_LISTEN) {
            self.server.listen = v.parse().map_err(|e| ConfigError::Env {
                name: ENV_LISTEN,
                reason: format!("{e}"),
            })?;
        }
        if let Ok(v) = std::env::var(ENV_OPS_LISTEN) {
            self.server.ops_listen = v.parse().map_err(|e| ConfigError::Env {
                name: ENV_OPS_LISTEN,
                reason: format!("{e}"),
            })?;
        }
        if let Ok(v) = std::env::var(ENV_STORE_PATH) {
            self.store.path = v.into();
        }
        Ok(self)
    }

    /// Checks ranges that serde cannot.
    pub fn validate(self) -> Result<Self, ConfigError> {
        self.validate_server()?;
        self.validate_store_and_workers()?;
        self.validate_rest()?;
        self.limits.validate()?;
        self.access.validate()?;
        self.backup.validate(self.store.backend)?;
        Ok(self)
    }

    /// The listeners' limits and time-outs.
    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if s.max_body_bytes == 0 || s.max_body_bytes > 16 * 1024 * 1024 {
            return Err(invalid("server.max_body_bytes", "must be 1 byte to 16 MiB"));
        }
        if s.max_header_bytes < 8192 {
            return Err(invalid("server.max_header_bytes", "must be at least 8192"));
        }
        for (field, v) in [
            (
                "server.tls_handshake_timeout_ms",
                s.tls_handshake_timeout_ms,
            ),
            ("server.header_read_timeout_ms", s.header_read_timeout_ms),
            ("server.idle_timeout_ms", s.idle_timeout_ms),
            ("server.request_timeout_ms", s.request_timeout_ms),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be more than 0"));
            }
        }
        Ok(())
    }

    /// The store, the pipeline's workers and the matching refresh.
    fn validate_store_and_workers(&self) -> Result<(), ConfigError> {
        if self.store.journal_max_batch == 0 {
            return Err(invalid("store.journal_max_batch", "must be at least 1"));
        }
        if self.store.journal_channel_capacity == 0 {
            return Err(invalid(
                "store.journal_channel_capacity",
                "must be at least 1",
            ));
        }
        let path = &self.view.path;
        if !path.starts_with('/')
            || (path.ends_with('/') && path != "/")
            || path.contains(['?', '#', '{', '}'])
        {
            return Err(invalid(
                "view.path",
                "must start with / and not end with / (but for the root, /), e.g. /view-data",
            ));
        }
        if self.reporting.at_time().is_none() {
            return Err(invalid(
                "reporting.at",
                "must be a time of day, HH:MM (UTC)",
            ));
        }
        if self.reporting.backoff_base_ms == 0
            || self.reporting.backoff_cap_ms < self.reporting.backoff_base_ms
        {
            return Err(invalid(
                "reporting.backoff_base_ms",
                "must be more than 0 and at most reporting.backoff_cap_ms",
            ));
        }
        if self
            .cas
            .connect_timeout_ms
            .saturating_add(self.cas.call_timeout_ms)
            > 60_000
        {
            return Err(invalid(
                "cas.call_timeout_ms",
                "with cas.connect_timeout_ms, must be at most 60,000 (a call outlasting the \
                 60 s a PeI has to be registered in serves nothing)",
            ));
        }
        let part_ms = self.reporting.part_worst_case_ms(&self.cas);
        if self.reporting.lease_s.saturating_mul(1000) <= part_ms {
            return Err(invalid(
                "reporting.lease_s",
                &format!(
                    "must outlast one part's retries: more than reporting.retry_budget_s + \
                     cas.connect_timeout_ms + cas.call_timeout_ms ({part_ms} ms)"
                ),
            ));
        }
        if self.matching.refresh_ms == 0 {
            return Err(invalid("matching.refresh_ms", "must be more than 0"));
        }
        if self.server.reload_poll_ms == 0 {
            return Err(invalid("server.reload_poll_ms", "must be more than 0"));
        }
        self.console.validate()?;
        if self.server.ops_max_connections == 0 {
            return Err(invalid("server.ops_max_connections", "must be at least 1"));
        }
        if self.store.read_connections == 0 {
            return Err(invalid("store.read_connections", "must be at least 1"));
        }
        if self.workers.claim_batch == 0 {
            return Err(invalid("workers.claim_batch", "must be at least 1"));
        }
        if self.store.queue_max_pending == 0 {
            return Err(invalid("store.queue_max_pending", "must be at least 1"));
        }
        if self.workers.completion_budget_ms == 0 || self.workers.lease_ms == 0 {
            return Err(invalid(
                "workers",
                "completion_budget_ms and lease_ms must be more than 0",
            ));
        }
        if self.workers.lease_ms < 300 {
            return Err(invalid(
                "workers.lease_ms",
                "must be at least 300 (it is renewed every third of it)",
            ));
        }
        Ok(())
    }

    /// The CAS, the rule sets, the view, the audit trail, the SLA and the data key.
    fn validate_rest(&self) -> Result<(), ConfigError> {
        if !self.cas.base_url.starts_with("https://") {
            return Err(invalid("cas.base_url", "must be an https:// URL (mTLS)"));
        }
        for set in std::iter::once(&self.matching.default)
            .chain(self.matching.schemes.iter().map(|s| &s.rules))
        {
            if set.version.trim().is_empty() || set.rules.is_empty() {
                return Err(invalid(
                    "matching",
                    "every rule set needs a version and at least one rule",
                ));
            }
        }
        if !matches!(self.view.algorithm.as_str(), "RS256" | "PS256" | "ES256") {
            return Err(invalid("view.algorithm", "RS256, PS256 or ES256"));
        }
        if self.view.budget_ms == 0 || self.view.budget_ms >= 10_000 {
            return Err(invalid(
                "view.budget_ms",
                "1 to 9999: a view must answer well inside 10 s (CoCo2.1.3)",
            ));
        }
        if self.audit.retention_days < 6 * 365 {
            return Err(invalid(
                "audit.retention_days",
                "CoCo2.1.6 requires at least 6 years (2190 days)",
            ));
        }
        if let Some(GoLive(day)) = self.sla.go_live {
            if chrono::Datelike::year(&day) < 2000 {
                return Err(invalid(
                    "sla.go_live",
                    "a connection day, 2000 or later (availability counts from it)",
                ));
            }
        }
        if self.crypto.data_key_file.is_none() && self.crypto.data_key_env.is_none() {
            return Err(invalid(
                "crypto",
                "set data_key_file or data_key_env: find data is sealed at rest",
            ));
        }
        Ok(())
    }
}

// === impl LimitsConfig ===

impl LimitsConfig {
    /// Checks ranges that serde cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=100_000).contains(&self.refused_per_s) {
            return Err(invalid("limits.refused_per_s", "must be 1 to 100000"));
        }
        if !(1..=1_000_000).contains(&self.refused_burst) {
            return Err(invalid("limits.refused_burst", "must be 1 to 1000000"));
        }
        if !(1..=3600).contains(&self.summary_window_s) {
            return Err(invalid("limits.summary_window_s", "must be 1 to 3600"));
        }
        if !(1..=1_000_000).contains(&self.max_identities) {
            return Err(invalid("limits.max_identities", "must be 1 to 1000000"));
        }
        Ok(())
    }
}

// === impl ConsoleConfig ===

impl ConsoleConfig {
    /// Checks ranges that serde cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(invalid("console.max_connections", "must be at least 1"));
        }
        if self.session_idle_timeout_s == 0 || self.session_max_age_s < self.session_idle_timeout_s
        {
            return Err(invalid(
                "console.session_idle_timeout_s",
                "must be more than 0 and at most console.session_max_age_s",
            ));
        }
        if self.scheme_admin_limit == 0 {
            return Err(invalid("console.scheme_admin_limit", "must be at least 1"));
        }
        if self.max_form_bytes < 1024 {
            return Err(invalid("console.max_form_bytes", "must be at least 1024"));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(invalid(
                "console.cert",
                "set both console.cert and console.key, or neither",
            ));
        }
        Ok(())
    }
}

/// A config value out of its range.
pub(crate) fn invalid(field: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let c = Config::default();
        assert_eq!(c.server.max_body_bytes, 65_536);
        assert!(c.audit.retention_days >= 6 * 365);
        assert_eq!(c.store.backend, Backend::Sqlite);
        // Defaults alone lack a data key, and validation says so.
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "crypto",
                ..
            })
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<Config>("[server]\nlisten_addr = \"127.0.0.1:1\"\n");
        assert!(err.is_err());
    }

    #[test]
    fn a_lease_too_short_to_renew_is_refused() {
        let mut c = Config::default();
        c.crypto.data_key_env = Some("X".into());
        assert!(c.clone().validate().is_ok());
        c.workers.lease_ms = 299;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "workers.lease_ms",
                ..
            })
        ));
    }

    #[test]
    fn cas_time_outs_over_a_minute_are_refused() {
        let mut c = Config::default();
        c.crypto.data_key_env = Some("X".into());
        c.cas.connect_timeout_ms = 10_000;
        c.cas.call_timeout_ms = 50_000;
        assert!(c.clone().validate().is_ok());
        c.cas.call_timeout_ms = 50_001;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "cas.call_timeout_ms",
                ..
            })
        ));
    }

    #[test]
    fn go_live_is_a_day_quoted_or_a_toml_date_and_nothing_else() {
        let parse = |t: &str| toml::from_str::<Config>(t).map(|c| c.sla.go_live);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse("[sla]\ngo_live = \"2026-11-03\"\n").unwrap(),
            Some(GoLive(day))
        );
        assert_eq!(
            parse("[sla]\ngo_live = 2026-11-03\n").unwrap(),
            Some(GoLive(day))
        );
        for bad in [
            "[sla]\ngo_live = \"2026-02-30\"\n",
            "[sla]\ngo_live = \"3 Nov 2026\"\n",
            "[sla]\ngo_live = \"2026-11-3\"\n",
            "[sla]\ngo_live = 2026-11-03T10:00:00\n",
            "[sla]\ngo_live = 20261103\n",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("go_live"), "{bad}: {err}");
        }
        assert_eq!(
            GoLive(day).start_micros(),
            1_793_664_000_000_000,
            "00:00 UTC"
        );
        let mut c = Config::default();
        c.crypto.data_key_env = Some("X".into());
        c.sla.go_live = Some(GoLive(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()));
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "sla.go_live",
                ..
            })
        ));
    }

    #[test]
    fn short_retention_is_refused() {
        let mut c = Config::default();
        c.crypto.data_key_env = Some("X".into());
        c.audit.retention_days = 30;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "audit.retention_days",
                ..
            })
        ));
    }
}
