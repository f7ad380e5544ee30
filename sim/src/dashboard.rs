//! A dashboard that calls provider view endpoints exactly as MaPS' does.
//!
//! The first call carries no `Authorization` header at all (MaPS' newest client,
//! `BaseHttpClientExecutor`; older ones sent an empty Bearer) and a fresh X-Request-ID. The URL
//! is `<view data URL registered with PDP>/<assetGuid>?scope=owner`;
//! on `401` it takes `ticket=` and `as_uri=` out of `WWW-Authenticate` by plain string splitting
//! (`header.Split("ticket=")[1].Split(",")[0].Replace("\"", "")`), swaps the ticket for an RPT at
//! the CAS token endpoint with the `uma-ticket` grant, and retries once with the RPT. A `200`
//! body's `view_data_token` is verified against the JWK set at the CAS `jwk_uri` (by `kid`, RS256,
//! PS256 or ES256, `exp` checked, `iss` and `aud` not), and its `view_data` string claim parsed.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use pdp_provider::tls::client::{mtls_client, ClientError, Identity};

/// Why a view could not be completed (beyond a non-200 status, which is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// No answer, or no whole answer, from the provider or the CAS.
    #[error("{leg}: no answer")]
    Transport {
        /// Which call.
        leg: Leg,
        /// What the client said (without the URL, which names the asset GUID).
        #[source]
        source: reqwest::Error,
    },
    /// The `401` had no usable `WWW-Authenticate`.
    #[error("401 without ticket= and as_uri=")]
    NoChallenge,
    /// The CAS refused the ticket with this status (`200`: answered without an
    /// `access_token`).
    #[error("CAS token endpoint answered {0}")]
    TokenRefused(u16),
    /// The CAS `jwk_uri` gave no JWK set: its status (`200`: something else than a JWK set).
    #[error("CAS jwk_uri answered {0} without a JWK set")]
    NoJwkSet(u16),
    /// The view data token did not verify, or its `view_data` is not the payload.
    #[error("view data token: {0}")]
    BadToken(TokenFault),
}

/// The calls of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The provider's view endpoint (either call).
    Provider,
    /// The CAS token endpoint (ticket for RPT).
    Token,
    /// The CAS `jwk_uri`.
    JwkSet,
}

// === impl Leg ===

impl std::fmt::Display for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Leg::Provider => "view endpoint",
            Leg::Token => "CAS token endpoint",
            Leg::JwkSet => "CAS jwk_uri",
        })
    }
}

/// What is wrong with a `200`'s view data token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFault {
    /// The body has no `view_data_token` string (or is not JSON).
    #[error("no view_data_token")]
    NoToken,
    /// Not a JWS (header, payload or encoding).
    #[error("malformed")]
    Malformed,
    /// The header has no `kid`.
    #[error("no kid")]
    NoKid,
    /// No key of the CAS's JWK set has the token's `kid`.
    #[error("kid not published at jwk_uri")]
    KidNotPublished,
    /// The published key with that `kid` is not a usable RSA key.
    #[error("the published key is unusable")]
    UnusableJwk,
    /// The signature does not verify with the published key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("not yet valid")]
    NotYetValid,
    /// Not RS256, PS256 or ES256, or not the key's.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// Any other validation failure.
    #[error("invalid")]
    Invalid,
    /// The `view_data` claim is not a string.
    #[error("view_data is not a string")]
    ViewDataNotString,
    /// The `view_data` claim is not JSON.
    #[error("view_data is not JSON")]
    ViewDataNotJson,
}

// === impl TokenFault ===

impl TokenFault {
    /// What a failed `decode` of jsonwebtoken's means.
    fn of(e: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenFault::BadSignature,
            K::ExpiredSignature => TokenFault::Expired,
            K::ImmatureSignature => TokenFault::NotYetValid,
            K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
                TokenFault::AlgorithmNotAllowed
            }
            K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => TokenFault::Malformed,
            K::InvalidRsaKey(_) | K::InvalidEcdsaKey | K::InvalidKeyFormat => {
                TokenFault::UnusableJwk
            }
            _ => TokenFault::Invalid,
        }
    }
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
    /// How many `WWW-Authenticate` headers the challenge came in (wire contract §3.2: one).
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

/// How long MaPS' dashboard allows a call (about 5 s for view data, wire contract §3.2).
pub const MAPS_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed call of `leg` (the URL dropped: it names the asset GUID).
fn transport(leg: Leg) -> impl Fn(reqwest::Error) -> DashboardError {
    move |e| DashboardError::Transport {
        leg,
        source: e.without_url(),
    }
}

/// Sends `req` on `leg` and reads a `200`'s body as `T`; another status is `refused(status)`, a
/// body that does not read `refused(200)`.
async fn json_200<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    leg: Leg,
    refused: fn(u16) -> DashboardError,
) -> Result<T, DashboardError> {
    let resp = req.send().await.map_err(transport(leg))?;
    if resp.status() != 200 {
        return Err(refused(resp.status().as_u16()));
    }
    let body = resp.bytes().await.map_err(transport(leg))?;
    serde_json::from_slice(&body).map_err(|_| refused(200))
}

/// Takes `key=` out of a `WWW-Authenticate` value the way MaPS does.
pub fn split_param(header: &str, key: &str) -> Option<String> {
    let after = header.split(key).nth(1)?;
    Some(after.split(',').next()?.replace('"', ""))
}

// === impl Dashboard ===

impl Dashboard {
    /// A dashboard calling `provider` (base URL) with the CAS at `cas` (base URL), giving each
    /// call [`MAPS_TIMEOUT`] as MaPS does: a view slower than that has failed.
    pub fn new(
        provider: &str,
        cas: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<Self, ClientError> {
        Self::with_timeout(provider, cas, Identity { ca, cert, key }, MAPS_TIMEOUT)
    }

    /// A dashboard more patient than MaPS: each call may take `timeout` (for tests of what the
    /// provider does with a view slower than MaPS waits for).
    pub fn with_timeout(
        provider: &str,
        cas: &str,
        identity: Identity<'_>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let client = mtls_client(identity, |b| b.timeout(timeout))?;
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
        req.send().await.map_err(transport(Leg::Provider))
    }

    /// Calls views at `view_url` (the view data URL registered with PDP) instead.
    pub fn with_view_url(mut self, view_url: &str) -> Self {
        self.view_url = view_url.trim_end_matches('/').to_owned();
        self
    }

    /// Swaps a ticket for an RPT at the CAS.
    pub async fn rpt(&self, ticket: &str) -> Result<String, DashboardError> {
        let rqp = crate::cas::mint(serde_json::json!({"iss": "dashboard", "sub": "user"}));
        let req = self
            .client
            .post(format!("{}/token", self.cas))
            .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
                ("ticket", ticket),
                ("claim_token", &rqp),
                ("claim_token_format", "pension_dashboard_rqp"),
                ("scope", "owner value"),
            ]);
        let v: serde_json::Value = json_200(req, Leg::Token, DashboardError::TokenRefused).await?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or(DashboardError::TokenRefused(200))
    }

    /// Verifies a view data token against the CAS's JWK set; returns its claims.
    pub async fn verify(&self, token: &str) -> Result<serde_json::Value, DashboardError> {
        let bad = DashboardError::BadToken;
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad(TokenFault::Malformed))?;
        let kid = header.kid.ok_or(bad(TokenFault::NoKid))?;
        let jwks: jsonwebtoken::jwk::JwkSet = json_200(
            self.client.get(format!("{}/jwk_uri", self.cas)),
            Leg::JwkSet,
            DashboardError::NoJwkSet,
        )
        .await?;
        let jwk = jwks.find(&kid).ok_or(bad(TokenFault::KidNotPublished))?;
        let mut v = Validation::new(header.alg);
        // What the contract allows (RS256, PS256, ES256), of the key's family (jsonwebtoken checks every
        // listed algorithm against the key).
        v.algorithms = match header.alg {
            Algorithm::ES256 => vec![Algorithm::ES256],
            _ => vec![Algorithm::RS256, Algorithm::PS256],
        };
        v.validate_aud = false;
        v.validate_nbf = true;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| bad(TokenFault::UnusableJwk))?;
        Ok(jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| bad(TokenFault::of(&e)))?
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
        let body = second.bytes().await.map_err(transport(Leg::Provider))?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| DashboardError::BadToken(TokenFault::NoToken))?;
        let token = body["view_data_token"]
            .as_str()
            .ok_or(DashboardError::BadToken(TokenFault::NoToken))?;
        let claims = self.verify(token).await?;
        let view_data = claims["view_data"]
            .as_str()
            .ok_or(DashboardError::BadToken(TokenFault::ViewDataNotString))?;
        out.view_data = Some(
            serde_json::from_str(view_data)
                .map_err(|_| DashboardError::BadToken(TokenFault::ViewDataNotJson))?,
        );
        out.claims = Some(claims);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
