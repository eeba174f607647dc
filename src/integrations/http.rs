//! HTTP integration: the event JSON is POSTed to a URL and the reply is read
//! as a Lambda proxy response.

use super::{Context, Integration, IntegrationError, Response, parse_proxy_response};
use crate::events::Event;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Replies larger than this are refused (API Gateway's integration
/// response limit is 10 MB).
const MAX_REPLY_BYTES: usize = 10 * 1024 * 1024;

pub struct HttpIntegration {
    url: reqwest::Url,
    client: reqwest::Client,
    /// Shared by every HTTP route of the API: one permit per connection
    /// that may be open at once.
    connections: Arc<Semaphore>,
}

impl HttpIntegration {
    /// Every HTTP route of an API shares its `pool`.
    pub fn new(url: reqwest::Url, pool: &HttpPool) -> HttpIntegration {
        HttpIntegration {
            url,
            client: pool.client.clone(),
            connections: Arc::clone(&pool.connections),
        }
    }
}

/// How long an unused pooled connection stays open; the pool sweeps every
/// this long, so one is closed within twice this.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The connections one API's HTTP integrations share: kept alive for
/// reuse, and at most `max_connections` open at once.
#[derive(Clone)]
pub struct HttpPool {
    client: reqwest::Client,
    connections: Arc<Semaphore>,
}

impl HttpPool {
    pub fn new(max_connections: usize) -> Result<HttpPool, String> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(max_connections)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpPool {
            client,
            connections: Arc::new(Semaphore::new(max_connections)),
        })
    }
}

#[async_trait]
impl Integration for HttpIntegration {
    async fn invoke(
        &self,
        event: &Event,
        _context: &Context,
    ) -> Result<Response, IntegrationError> {
        let body = self
            .invoke_json(Bytes::from(event.to_json()), event.request_id())
            .await?;
        parse_proxy_response(&body)
            .map_err(|e| IntegrationError::Failed(format!("{} {e}", self.url)))
    }

    async fn invoke_json(
        &self,
        payload: Bytes,
        _request_id: &str,
    ) -> Result<Bytes, IntegrationError> {
        let failed = |what: String| IntegrationError::Failed(format!("{} {what}", self.url));
        // A call waits for a free connection (the gateway's timeout still
        // applies) rather than opening one more.
        let _connection = self
            .connections
            .acquire()
            .await
            .map_err(|_| failed("is shut down".into()))?;
        let mut reply = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .body(payload)
            .send()
            .await
            .map_err(|e| failed(format!("unreachable: {e}")))?;
        let status = reply.status();
        let mut body = Vec::new();
        while let Some(chunk) = reply
            .chunk()
            .await
            .map_err(|e| failed(format!("reply broken off: {e}")))?
        {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(failed("reply larger than 10 MB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(failed(format!("answered HTTP {status}")));
        }
        Ok(Bytes::from(body))
    }

    fn describe(&self) -> String {
        format!("http POST {}", self.url)
    }

    fn kind(&self) -> &'static str {
        "http"
    }
}
