//! In-process Rust handlers: plain async functions that take the event as
//! `aws_lambda_events` types it, like a Rust Lambda does.

use super::{Context, Integration, IntegrationError, Response};
use crate::events::Event;
use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct FnIntegration<F> {
    handler: F,
}

/// Wraps an async function as a route handler:
/// `handler_fn(|event, ctx| async move { Ok(Response::ok()) })`.
/// An `Err` or a panic is a handler failure ("Internal server error").
pub fn handler_fn<F, Fut>(handler: F) -> Arc<dyn Integration>
where
    F: Fn(ApiGatewayWebsocketProxyRequest, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
{
    Arc::new(FnIntegration { handler })
}

#[async_trait]
impl<F, Fut> Integration for FnIntegration<F>
where
    F: Fn(ApiGatewayWebsocketProxyRequest, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
{
    async fn invoke(&self, event: &Event, context: &Context) -> Result<Response, IntegrationError> {
        let future = (self.handler)(event.to_lambda_request(), context.clone());
        match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(IntegrationError::Failed(format!(
                "handler returned an error: {e}"
            ))),
            Err(_) => Err(IntegrationError::Failed("handler panicked".into())),
        }
    }

    fn describe(&self) -> String {
        "in-process Rust function".into()
    }

    fn kind(&self) -> &'static str {
        "rust"
    }
}
