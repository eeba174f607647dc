//! The Lambda Invoke API, locally: `sst.aws.Function`s that a route's
//! function links are run by wsgate and invoked through this endpoint
//! (`AWS_ENDPOINT_URL_LAMBDA`), so `@aws-sdk/client-lambda` and boto3's
//! `invoke` reach them unmodified. As on AWS, a call is signed (SigV4,
//! scoped to `lambda`) with a key an API issued, and its policy allows
//! `lambda:InvokeFunction` on the function (SST's link grants it); a
//! request a browser sends (it has an `Origin`) is refused, so a web page
//! cannot run functions through it.

use crate::auth::{AuthError, Authenticator};
use crate::integrations::{Integration, IntegrationError};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Lambda's synchronous request payload limit.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// The action an invocation needs.
pub const INVOKE_FUNCTION: &str = "lambda:InvokeFunction";

/// The functions by name, and the keys that may sign (each API's).
#[derive(Default)]
struct Served {
    functions: HashMap<String, Arc<dyn Integration>>,
    signers: Vec<Authenticator>,
}

type Functions = Arc<RwLock<Served>>;

pub struct LambdaApi {
    pub endpoint: String,
    functions: Functions,
    stop: CancellationToken,
}

impl LambdaApi {
    /// Listens now (functions need the endpoint when they are built);
    /// serves the functions added later.
    pub async fn start() -> Result<LambdaApi, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen for the local Lambda API: {e}"))?;
        let endpoint = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let functions: Functions = Arc::default();
        let stop = CancellationToken::new();
        tokio::spawn(super::serve_http(
            listener,
            Arc::clone(&functions),
            |functions, request| async move { invoke(&functions, request).await },
            stop.clone(),
        ));
        Ok(LambdaApi {
            endpoint,
            functions,
            stop,
        })
    }

    /// Serves `integration` as the function called `name` (and by its ARN).
    pub fn add(&self, name: &str, integration: Arc<dyn Integration>) {
        self.functions
            .write()
            .expect("lock poisoned")
            .functions
            .insert(name.to_string(), integration);
    }

    /// Accepts calls signed with the keys `keyring` holds (an API's, whose
    /// functions' session keys are in it), scoped to `region`.
    pub fn trust(&self, keyring: Arc<crate::auth::keyring::Keyring>, region: &str) {
        self.functions
            .write()
            .expect("lock poisoned")
            .signers
            .push(Authenticator::new(region, keyring).for_service("lambda"));
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// `POST /2015-03-31/functions/{name}/invocations`.
async fn invoke(functions: &Functions, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.headers().contains_key(http::header::ORIGIN)
        || !super::regional::addressed_to_service(request.headers(), "lambda")
    {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the local Lambda API does not answer browsers",
        );
    }
    let path = request.uri().path().to_string();
    let Some(name) = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .filter(|_| request.method() == Method::POST)
    else {
        return error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "not a Lambda Invoke request",
        );
    };
    let name = function_name(&percent_encoding::percent_decode_str(name).decode_utf8_lossy());
    let kind = request
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_string();
    let (parts, body) = request.into_parts();
    let payload = match Limited::new(body, MAX_PAYLOAD).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            );
        }
    };
    let (function, arn) = {
        let served = functions.read().expect("lock poisoned");
        let region = served
            .signers
            .first()
            .map_or("us-east-1", |s| s.region.as_str());
        let arn = format!(
            "arn:aws:lambda:{region}:{}:function:{name}",
            crate::auth::keyring::ACCOUNT_ID
        );
        let action = Some((INVOKE_FUNCTION, arn.as_str()));
        if let Err(refused) = crate::auth::authorize_any(&served.signers, &parts, &payload, action)
        {
            return auth_error(&refused);
        }
        let Some(function) = served.functions.get(&name).cloned() else {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Function not found: {arn}"),
            );
        };
        (function, arn)
    };
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    tracing::debug!(function = %arn, "invoked through the local Lambda API");
    let request_id = crate::ids::new_id();
    match kind.as_str() {
        "DryRun" => empty(StatusCode::NO_CONTENT),
        "Event" => {
            tokio::spawn(async move {
                if let Err(e) = function.invoke_json(payload, &request_id).await {
                    tracing::warn!(function = %name, error = %e, "asynchronous invocation failed");
                }
            });
            empty(StatusCode::ACCEPTED)
        }
        "RequestResponse" => match function.invoke_json(payload, &request_id).await {
            Ok(reply) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("x-amz-executed-version", "$LATEST")
                .header("x-amzn-requestid", &request_id)
                .body(Full::new(reply))
                .expect("valid response parts"),
            Err(failure) => {
                let (error_type, message) = match &failure {
                    IntegrationError::Handler {
                        error_type,
                        message,
                    } => (error_type.as_str(), message.clone()),
                    IntegrationError::Failed(message) => ("Error", message.clone()),
                };
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .header("x-amz-function-error", "Unhandled")
                    .header("x-amz-executed-version", "$LATEST")
                    .body(Full::new(Bytes::from(
                        json!({ "errorType": error_type, "errorMessage": message }).to_string(),
                    )))
                    .expect("valid response parts")
            }
        },
        other => error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("Invalid InvocationType: {other}"),
        ),
    }
}

/// The function a FunctionName names: a name, or an ARN (full or
/// partial); a qualifier (`:$LATEST`, an alias) is ignored.
fn function_name(given: &str) -> String {
    let parts: Vec<&str> = given.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(at) if at + 1 < parts.len() => parts[at + 1].to_string(),
        _ => parts[0].to_string(),
    }
}

/// A refusal as Lambda gives it: 403, its error type.
fn auth_error(refused: &AuthError) -> Response<Full<Bytes>> {
    let kind = match refused {
        AuthError::Denied { .. } => "AccessDeniedException",
        other => other.error_type(),
    };
    error(StatusCode::FORBIDDEN, kind, &refused.to_string())
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("valid response parts")
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(
            json!({ "Type": "User", "message": message }).to_string(),
        )))
        .expect("valid response parts")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_arns_and_qualifiers() {
        for given in [
            "app-dev-Worker",
            "app-dev-Worker:$LATEST",
            "arn:aws:lambda:us-east-1:000000000000:function:app-dev-Worker",
            "arn:aws:lambda:us-east-1:000000000000:function:app-dev-Worker:prod",
            "000000000000:function:app-dev-Worker",
        ] {
            assert_eq!(super::function_name(given), "app-dev-Worker", "{given}");
        }
    }
}
