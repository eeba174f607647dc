//! Local AWS services an app's components need, run as child processes
//! (process trees, like function instances): `dynamodb` for
//! `sst.aws.Dynamo` tables; `runtime_sdk`, the AWS SDK Lambda's runtimes
//! provide, as a cached install; `regional`, the services' AWS host names
//! for handlers.

pub mod dynamodb;
pub mod guard;
pub mod hybrid;
pub mod lambda;
pub mod regional;
pub mod runtime_sdk;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Serves HTTP/1.1 on `listener` with `handle` until `stop`: the accept
/// loop the local services (the Lambda API, the guard) share.
pub(crate) async fn serve_http<S, F, Fut>(
    listener: tokio::net::TcpListener,
    state: Arc<S>,
    handle: F,
    stop: CancellationToken,
) where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let state = Arc::clone(&state);
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(handle(state, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}
