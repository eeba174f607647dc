//! A guard in front of a local service that checks nothing itself (the
//! DynamoDB emulator: dynalite answers every origin with
//! `Access-Control-Allow-Origin: *` and ignores signatures). A loopback
//! listener admits a request only when it is not a browser's (no `Origin`,
//! a loopback `Host`, so neither another site nor a rebound name gets in)
//! and is SigV4-signed, scoped to the service, with a key of this run (a
//! function's session, the run's generated key, `[[credentials]]`); it
//! forwards what it admits and drops CORS headers from the answers.

use crate::auth::Authenticator;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The largest request forwarded (DynamoDB's own limit is 16 MB).
const MAX_REQUEST: usize = 16 * 1024 * 1024 + 64 * 1024;

struct Shared {
    service: &'static str,
    backend: String,
    client: reqwest::Client,
    signers: RwLock<Vec<Authenticator>>,
}

pub struct Guard {
    /// Where callers reach the service: `http://127.0.0.1:<port>`.
    pub endpoint: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Guard {
    /// Listens on a free loopback port in front of `backend`, for
    /// requests signed for `service`.
    pub async fn start(service: &'static str, backend: SocketAddr) -> Result<Guard, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen for the {service} guard: {e}"))?;
        let endpoint = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let shared = Arc::new(Shared {
            service,
            backend: format!("http://{backend}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| e.to_string())?,
            signers: RwLock::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(super::serve_http(
            listener,
            Arc::clone(&shared),
            |shared, request| async move { admit(&shared, request).await },
            stop.clone(),
        ));
        Ok(Guard {
            endpoint,
            shared,
            stop,
        })
    }

    /// Admits requests signed with the keys `keyring` holds (an API's),
    /// scoped to `region`.
    pub fn trust(&self, keyring: Arc<crate::auth::keyring::Keyring>, region: &str) {
        self.shared
            .signers
            .write()
            .expect("lock poisoned")
            .push(Authenticator::new(region, keyring).for_service(self.shared.service));
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Checks a request and forwards it, or refuses it.
async fn admit(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.headers().contains_key(http::header::ORIGIN)
        || !super::regional::addressed_to_service(request.headers(), shared.service)
    {
        return refuse(
            "AccessDeniedException",
            "the local service does not answer browsers",
        );
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_REQUEST).collect().await else {
        return refuse("RequestTooLarge", "the request is too large");
    };
    let body = body.to_bytes();
    let verified = {
        let signers = shared.signers.read().expect("lock poisoned");
        crate::auth::authorize_any(&signers, &parts, &body, None)
    };
    if let Err(refused) = verified {
        return refuse(refused.error_type(), &refused.to_string());
    }
    match forward(shared, parts, body).await {
        Ok(response) => response,
        Err(why) => {
            tracing::warn!(service = shared.service, %why, "the local service did not answer");
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Full::new(Bytes::new()))
                .expect("valid response parts")
        }
    }
}

async fn forward(
    shared: &Shared,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, reqwest::Error> {
    let target = format!(
        "{}{}",
        shared.backend,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut headers = parts.headers;
    headers.remove(http::header::HOST);
    let answer = shared
        .client
        .request(parts.method, target)
        .headers(headers)
        .body(body)
        .send()
        .await?;
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        // No CORS: no page may read what the service answers.
        if !name.as_str().starts_with("access-control-") {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await?;
    Ok(response
        .body(Full::new(body))
        .expect("valid response parts"))
}

/// A refusal, as the AWS services give one: 403, a JSON body naming it.
fn refuse(kind: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(
            serde_json::json!({ "__type": format!("com.amazon.coral.service#{kind}"), "message": message })
                .to_string(),
        )))
        .expect("valid response parts")
}
