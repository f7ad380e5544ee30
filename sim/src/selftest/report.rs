//! The evidence report: the same content as JSON and as self-contained HTML (printable to PDF
//! from a browser), a summary table first, then each case's requests, answers and call-log
//! lines.

use serde::Serialize;

use super::runner::Outcome;

/// The stub this selftest follows.
pub const STUB: &str = "in-house stub: pdp-provider's simulator, following pdp-test-harness \
                        v1.1.5 (moneyadviceservice/pdp-test-harness, commit ba609b5)";

/// How the stub's magic values reach the endpoint.
pub const NOTE: &str = "Finds carry UATs with a sub that stand for the stub's magic UATs (claim \
                        pdp_stub_uat, swapped by the simulator exactly as the constant it \
                        names): the stub's own UATs carry no sub. PATs and RPTs are the stub's \
                        constants, byte for byte. Tokens and personal data are redacted; a \
                        stub's token is shown by its constant's name.";

/// The endpoint's served certificate.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    /// Its subject.
    pub subject: String,
    /// When it expires (RFC 3339), or why it could not be read.
    pub not_after: String,
}

/// Which standards the cases follow.
#[derive(Debug, Clone, Serialize)]
pub struct Standards {
    /// Technical standards.
    pub technical: &'static str,
    /// Reporting standards.
    pub reporting: &'static str,
}

/// The binary that ran.
#[derive(Debug, Clone, Serialize)]
pub struct Binary {
    /// Its version.
    pub version: &'static str,
    /// Its commit (`PDP_PROVIDER_COMMIT` at build time).
    pub commit: &'static str,
}

/// Counts.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Cases run.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which stub.
    pub stub: &'static str,
    /// How its magic values reach the endpoint, and what is redacted.
    pub note: &'static str,
    /// Which standards.
    pub standards: Standards,
    /// The endpoint tested.
    pub endpoint: String,
    /// Its certificate.
    pub certificate: Certificate,
    /// The binary.
    pub binary: Binary,
    /// When (RFC 3339, UTC).
    pub date: String,
    /// Counts.
    pub summary: Summary,
    /// Each case.
    pub cases: Vec<Outcome>,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The template.
    #[error("rendering the report: {0}")]
    Render(#[from] minijinja::Error),
    /// JSON.
    #[error("writing the report's JSON: {0}")]
    Json(#[from] serde_json::Error),
}

// === impl Report ===

impl Report {
    /// A report of `cases` run against `endpoint`.
    pub fn new(endpoint: String, certificate: Certificate, cases: Vec<Outcome>) -> Self {
        let passed = cases.iter().filter(|c| c.verdict.passed()).count();
        Self {
            stub: STUB,
            note: NOTE,
            standards: Standards {
                technical: "1.1 (the stub's; integration testing targets 2.0)",
                reporting: "2.2 (reporting API v2.1)",
            },
            endpoint,
            certificate,
            binary: Binary {
                version: env!("CARGO_PKG_VERSION"),
                commit: option_env!("PDP_PROVIDER_COMMIT").unwrap_or("not recorded at build"),
            },
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            summary: Summary {
                total: cases.len(),
                passed,
                failed: cases.len() - passed,
            },
            cases,
        }
    }

    /// The report as JSON.
    pub fn json(&self) -> Result<String, ReportError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The report as one HTML page (the template escapes every value).
    pub fn html(&self) -> Result<String, ReportError> {
        let mut env = minijinja::Environment::new();
        env.add_template("report.html", include_str!("report.html"))?;
        Ok(env.get_template("report.html")?.render(self)?)
    }
}
