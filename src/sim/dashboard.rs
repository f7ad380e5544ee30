//! A dashboard that calls provider view endpoints exactly as MaPS' does.
//!
//! The first call carries no `Authorization` header at all (MaPS' newest client,
//! `BaseHttpClientExecutor`; older ones sent an empty Bearer) and a fresh X-Request-ID. The URL
//! is `<view data URL registered with PDP>/<assetGuid>?scope=owner`;
//! on `401` it takes `ticket=` and `as_uri=` out of `WWW-Authenticate` by plain string splitting
//! (`header.Split("ticket=")[1].Split(",")[0].Replace("\"", "")`), swaps the ticket for an RPT at
//! the CAS token endpoint with the `uma-ticket` grant, and retries once with the RPT. A `200`
//! body's `view_data_token` is verified against the JWK set at the CAS `jwk_uri` (by `kid`, RS256
//! or PS256, `exp` checked, `iss` and `aud` not), and its `view_data` string claim parsed.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::tls::TlsError;

/// Why a view could not be completed (beyond a non-200 status, which is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// No answer from the provider or the CAS.
    #[error("transport: {0}")]
    Transport(String),
    /// The `401` had no usable `WWW-Authenticate`.
    #[error("401 without ticket= and as_uri=")]
    NoChallenge,
    /// The CAS refused the ticket.
    #[error("CAS token endpoint answered {0}")]
    TokenRefused(u16),
    /// The view data token did not verify.
    #[error("view data token: {0}")]
    BadToken(String),
}

/// What one view ended with.
#[derive(Debug, Clone)]
pub struct ViewOutcome {
    /// Status of the first call.
    pub first_status: u16,
    /// Status of the retry, if there was one.
    pub retry_status: Option<u16>,
    /// The challenge's ticket and `as_uri`.
    pub challenge: Option<(String, String)>,
    /// How many `WWW-Authenticate` headers the challenge came in (SPEC §3.2: exactly one).
    pub challenge_headers: usize,
    /// The verified `view_data`, parsed.
    pub view_data: Option<serde_json::Value>,
    /// The verified token's claims.
    pub claims: Option<serde_json::Value>,
    /// `Retry-After` of a 503.
    pub retry_after: Option<String>,
}

/// A dashboard with its mTLS identity.
#[derive(Clone)]
pub struct Dashboard {
    client: reqwest::Client,
    /// The view data URL registered with PDP (`<provider>/view-data` unless set).
    view_url: String,
    cas: String,
}

fn transport(e: reqwest::Error) -> DashboardError {
    DashboardError::Transport(if e.is_timeout() {
        "timeout".into()
    } else {
        "request failed".into()
    })
}

/// Takes `key=` out of a `WWW-Authenticate` value the way MaPS does.
pub fn split_param(header: &str, key: &str) -> Option<String> {
    let after = header.split(key).nth(1)?;
    Some(after.split(',').next()?.replace('"', ""))
}

// === impl Dashboard ===

impl Dashboard {
    /// A dashboard calling `provider` (base URL) with the CAS at `cas` (base URL).
    pub fn new(
        provider: &str,
        cas: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<Self, TlsError> {
        let client = crate::tls::client::mtls_builder(ca, cert, key)?
            .timeout(Duration::from_secs(12))
            .build()
            .map_err(|e| TlsError::Pem {
                path: cert.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            client,
            view_url: format!("{}/view-data", provider.trim_end_matches('/')),
            cas: cas.trim_end_matches('/').to_owned(),
        })
    }

    async fn get(
        &self,
        asset_guid: &str,
        bearer: &str,
    ) -> Result<reqwest::Response, DashboardError> {
        let mut req = self
            .client
            .get(format!("{}/{asset_guid}?scope=owner", self.view_url))
            .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
            .header("Accept", "application/json");
        if !bearer.is_empty() {
            req = req.header("Authorization", format!("Bearer {bearer}"));
        }
        req.send().await.map_err(transport)
    }

    /// Calls views at `view_url` (the view data URL registered with PDP) instead.
    pub fn with_view_url(mut self, view_url: &str) -> Self {
        self.view_url = view_url.trim_end_matches('/').to_owned();
        self
    }

    /// Swaps a ticket for an RPT at the CAS.
    pub async fn rpt(&self, ticket: &str) -> Result<String, DashboardError> {
        let rqp = crate::sim::cas::mint(serde_json::json!({"iss": "dashboard", "sub": "user"}));
        let resp = self
            .client
            .post(format!("{}/token", self.cas))
            .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
                ("ticket", ticket),
                ("claim_token", &rqp),
                ("claim_token_format", "pension_dashboard_rqp"),
                ("scope", "owner value"),
            ])
            .send()
            .await
            .map_err(transport)?;
        if resp.status() != 200 {
            return Err(DashboardError::TokenRefused(resp.status().as_u16()));
        }
        let v: serde_json::Value = resp.json().await.map_err(transport)?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or(DashboardError::TokenRefused(200))
    }

    /// Verifies a view data token against the CAS's JWK set; returns its claims.
    pub async fn verify(&self, token: &str) -> Result<serde_json::Value, DashboardError> {
        let bad = |e: &dyn std::fmt::Display| DashboardError::BadToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(&e))?;
        let kid = header.kid.ok_or_else(|| bad(&"no kid"))?;
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .client
            .get(format!("{}/jwk_uri", self.cas))
            .send()
            .await
            .map_err(transport)?
            .json()
            .await
            .map_err(transport)?;
        let jwk = jwks
            .find(&kid)
            .ok_or_else(|| bad(&"kid not published at jwk_uri"))?;
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![Algorithm::RS256, Algorithm::PS256];
        v.validate_aud = false;
        v.validate_nbf = true;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(&e))?;
        Ok(jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| bad(&e))?
            .claims)
    }

    /// One view, as MaPS performs it.
    pub async fn view(&self, asset_guid: &str) -> Result<ViewOutcome, DashboardError> {
        let first = self.get(asset_guid, "").await?;
        let mut out = ViewOutcome {
            first_status: first.status().as_u16(),
            retry_status: None,
            challenge: None,
            challenge_headers: 0,
            view_data: None,
            claims: None,
            retry_after: None,
        };
        let retry_after = |r: &reqwest::Response| {
            r.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if out.first_status != 401 {
            out.retry_after = retry_after(&first);
            return Ok(out);
        }
        let headers: Vec<&str> = first
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str().to_ascii_lowercase().contains("www-authenticate"))
            .filter_map(|(_, v)| v.to_str().ok())
            .collect();
        out.challenge_headers = headers.len();
        let header = headers.join(" ");
        let (Some(ticket), Some(as_uri)) = (
            split_param(&header, "ticket="),
            split_param(&header, "as_uri="),
        ) else {
            return Err(DashboardError::NoChallenge);
        };
        out.challenge = Some((ticket.clone(), as_uri));
        let rpt = self.rpt(&ticket).await?;
        let second = self.get(asset_guid, &rpt).await?;
        out.retry_status = Some(second.status().as_u16());
        if second.status() != 200 {
            out.retry_after = retry_after(&second);
            return Ok(out);
        }
        let body: serde_json::Value = second.json().await.map_err(transport)?;
        let token = body["view_data_token"]
            .as_str()
            .ok_or_else(|| DashboardError::BadToken("no view_data_token".into()))?;
        let claims = self.verify(token).await?;
        let view_data = claims["view_data"]
            .as_str()
            .ok_or_else(|| DashboardError::BadToken("view_data is not a string".into()))?;
        out.view_data = Some(
            serde_json::from_str(view_data).map_err(|e| DashboardError::BadToken(e.to_string()))?,
        );
        out.claims = Some(claims);
        Ok(out)
    }
}
