//! The CAS calls' bodies (wire contract §4; MaPS' stub's field names). Unknown response fields
//! are ignored; requests carry exactly the fields the contract names.

use serde::{Deserialize, Serialize};

/// 4.1's answer; `token_type` and the rest are ignored.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
}

/// 4.2: register a PeI.
#[derive(Serialize)]
pub(crate) struct RegisterRequest<'a> {
    pub(crate) name: &'a str,
    pub(crate) description: &'a str,
    pub(crate) match_status: &'static str,
    pub(crate) resource_scopes: [&'static str; 3],
    pub(crate) inbound_request_id: &'a str,
}

/// 4.3: a possible match resolved as yes.
#[derive(Serialize)]
pub(crate) struct UpdateRequest<'a> {
    pub(crate) match_status: &'static str,
    pub(crate) inbound_request_id: &'a str,
}

/// 4.2 and 4.3's answer.
#[derive(Deserialize)]
pub(crate) struct ResourceResponse {
    pub(crate) resource_id: String,
}

/// 4.5: a permission ticket for `value` and `owner`.
#[derive(Serialize)]
pub(crate) struct PermRequest<'a> {
    pub(crate) resource_id: &'a str,
    pub(crate) resource_scopes: [&'static str; 2],
}

/// 4.5's answer.
#[derive(Deserialize)]
pub(crate) struct PermResponse {
    pub(crate) ticket: String,
}

/// The CAS's introspection answer (wire contract §4.6; the stub's shape). Unknown fields are
/// ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Introspection {
    /// Whether the RPT is live.
    pub active: bool,
    /// `pension_dashboard_rpt` for an RPT.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// What the RPT grants.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// One permission of an RPT.
#[derive(Debug, Clone, Deserialize)]
pub struct Permission {
    /// The CAS resource id.
    pub resource_id: String,
    /// Scopes granted.
    #[serde(default)]
    pub resource_scopes: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: Option<i64>,
}
