//! A simulated pension finder service: sends find requests over mTLS, as the PFS does.

use std::path::Path;
use std::time::Duration;

use pdp_provider::tls::client::{mtls_client, ClientError, Identity};

/// The PFS side of a connection to one provider endpoint.
#[derive(Clone)]
pub struct Pfs {
    client: reqwest::Client,
    url: String,
}

/// What a find request got back.
#[derive(Debug, Clone)]
pub struct FindAnswer {
    /// The X-Request-ID sent.
    pub request_id: String,
    /// The status (0: no answer).
    pub status: u16,
}

// === impl Pfs ===

impl Pfs {
    /// A PFS presenting `cert`/`key`, trusting `ca`, calling `base_url` (e.g.
    /// `https://127.0.0.1:8443`).
    pub fn new(base_url: &str, ca: &Path, cert: &Path, key: &Path) -> Result<Self, ClientError> {
        let identity = Identity { ca, cert, key };
        let client = mtls_client(identity, |b| b.timeout(Duration::from_secs(10)))?;
        Ok(Self {
            client,
            url: format!("{}/find-requests", base_url.trim_end_matches('/')),
        })
    }

    /// Sends one find request with a new X-Request-ID.
    pub async fn find(&self, body: &serde_json::Value) -> FindAnswer {
        let request_id = uuid::Uuid::new_v4().hyphenated().to_string();
        self.find_with_id(&request_id, body).await
    }

    /// Sends one find request with the given X-Request-ID.
    pub async fn find_with_id(&self, request_id: &str, body: &serde_json::Value) -> FindAnswer {
        let status = self
            .client
            .post(&self.url)
            .header("X-Request-ID", request_id)
            .json(body)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        FindAnswer {
            request_id: request_id.to_owned(),
            status,
        }
    }
}
