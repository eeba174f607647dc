//! HTTP integration: the event JSON is POSTed to a URL and the reply is read
//! as a Lambda proxy response.

use super::{Context, Integration, IntegrationError, Response, parse_proxy_response};
use crate::events::Event;
use async_trait::async_trait;
use bytes::Bytes;

/// Replies larger than this are refused (API Gateway's integration
/// response limit is 10 MB).
const MAX_REPLY_BYTES: usize = 10 * 1024 * 1024;

pub struct HttpIntegration {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl HttpIntegration {
    /// `client` is shared by every HTTP route so connections are pooled.
    pub fn new(url: reqwest::Url, client: reqwest::Client) -> HttpIntegration {
        HttpIntegration { url, client }
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
}
