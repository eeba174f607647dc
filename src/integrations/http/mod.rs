//! HTTP integration: the event JSON is POSTed to a URL and the reply is read
//! as a Lambda proxy response.

use super::{Context, Integration, IntegrationError, Response, parse_proxy_response};
use crate::events::Event;
use async_trait::async_trait;
use bytes::Bytes;
use pool::CallError;

/// Replies larger than this are refused (API Gateway's integration
/// response limit is 10 MB).
const MAX_REPLY_BYTES: usize = 10 * 1024 * 1024;

mod fair;
pub mod pool;

pub use pool::{HttpPool, POOL_IDLE_TIMEOUT};

pub struct HttpIntegration {
    url: reqwest::Url,
    endpoint: pool::Endpoint,
    pool: HttpPool,
}

impl HttpIntegration {
    /// Every HTTP route of an API shares its `pool`. Only `http` URLs
    /// (checked when the config is).
    pub fn new(url: reqwest::Url, pool: &HttpPool) -> Result<HttpIntegration, String> {
        Ok(HttpIntegration {
            endpoint: pool::Endpoint::new(&url)?,
            url,
            pool: pool.clone(),
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
            .call(
                &event.request_context.connection_id,
                Bytes::from(event.to_json()),
            )
            .await?;
        parse_proxy_response(&body)
            .map_err(|e| IntegrationError::Failed(format!("{} {e}", self.url)))
    }

    async fn invoke_json(
        &self,
        payload: Bytes,
        request_id: &str,
    ) -> Result<Bytes, IntegrationError> {
        // An authorizer's call, for a connection not yet made: its own turn.
        self.call(request_id, payload).await
    }

    fn describe(&self) -> String {
        format!("http POST {}", self.url)
    }

    fn kind(&self) -> &'static str {
        "http"
    }
}

impl HttpIntegration {
    /// POSTs `payload` for `caller`, taking turns with other callers.
    async fn call(&self, caller: &str, payload: Bytes) -> Result<Bytes, IntegrationError> {
        let failed = |what: String| IntegrationError::Failed(format!("{} {what}", self.url));
        let reply = self
            .pool
            .post(&self.endpoint, caller, payload, MAX_REPLY_BYTES)
            .await
            .map_err(|error| {
                failed(match error {
                    CallError::Unreachable(e) => format!("unreachable: {e}"),
                    CallError::Broken(e) => format!("reply broken off: {e}"),
                    CallError::TooLarge => "reply larger than 10 MB".into(),
                    CallError::ShutDown => "is shut down".into(),
                })
            })?;
        if !reply.status.is_success() {
            return Err(failed(format!("answered HTTP {}", reply.status)));
        }
        Ok(reply.body)
    }
}
