//! Who may call: SigV4 verification (`sigv4`), the accepted keys
//! (`keyring`), what each may do (`policy`), and Lambda REQUEST
//! authorizers (`authorizer`).

pub mod authorizer;
pub mod keyring;
pub mod policy;
pub mod sigv4;

use keyring::{Caller, Keyring};
use std::sync::Arc;
use std::time::SystemTime;

/// Why a request was refused; each carries API Gateway's status, message
/// and `x-amzn-ErrorType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    #[error("User: {user_arn} is not authorized to perform: {action} on resource: {resource}")]
    Denied {
        user_arn: String,
        action: String,
        resource: String,
    },
}

impl AuthError {
    pub fn mismatch() -> AuthError {
        AuthError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. \
             Consult the service documentation for details."
                .into(),
        )
    }

    /// Every refusal is a 403, as API Gateway's.
    pub fn status(&self) -> u16 {
        403
    }

    /// The `x-amzn-ErrorType` the AWS SDKs read.
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            // The management API's modelled error, so SDKs type it.
            AuthError::Denied { .. } => "ForbiddenException",
        }
    }
}

/// Verifies signatures and checks policies for one API.
#[derive(Debug)]
pub struct Authenticator {
    pub region: String,
    /// The service signatures are scoped to: `execute-api`, or `lambda`
    /// for the local Lambda Invoke API.
    pub service: &'static str,
    pub keyring: Arc<Keyring>,
    /// Unsigned management calls are accepted (`--insecure-dev`); signed
    /// ones are still verified.
    pub insecure_dev: bool,
}

impl Authenticator {
    pub fn new(region: impl Into<String>, keyring: Arc<Keyring>) -> Authenticator {
        Authenticator {
            region: region.into(),
            service: sigv4::SERVICE,
            keyring,
            insecure_dev: false,
        }
    }

    /// The same keys, for requests to another service.
    pub fn for_service(mut self, service: &'static str) -> Authenticator {
        self.service = service;
        self
    }

    /// Verifies the request's signature and that its key may do `action`
    /// on `resource`; returns the caller.
    pub fn authorize(
        &self,
        request: &sigv4::Request,
        action: &str,
        resource: &str,
        now: SystemTime,
    ) -> Result<Caller, AuthError> {
        self.check_head(request, now)?
            .finish(request, action, resource)
    }

    /// Everything in the signature that does not depend on the body: its
    /// form, scope and time, the key and its session token. A request that
    /// fails here is refused before its body is read.
    pub fn check_head(
        &self,
        request: &sigv4::Request,
        now: SystemTime,
    ) -> Result<HeadChecked, AuthError> {
        let claim = sigv4::parse(request)?;
        sigv4::check_scope_and_time_for(&claim, self.service, &self.region, now)?;
        let key = self
            .keyring
            .get(&claim.access_key_id)
            .ok_or(AuthError::UnrecognizedClient)?;
        if !same_token(key.session_token.as_deref(), claim.session_token.as_deref()) {
            return Err(AuthError::UnrecognizedClient);
        }
        Ok(HeadChecked { claim, key })
    }

    /// As `check_head` for a management call; with `--insecure-dev` an
    /// unsigned request passes (as `None`).
    pub fn check_management_head(
        &self,
        request: &sigv4::Request,
    ) -> Result<Option<HeadChecked>, AuthError> {
        match self.check_head(request, SystemTime::now()) {
            Err(AuthError::Missing) if self.insecure_dev => Ok(None),
            other => other.map(Some),
        }
    }

    /// As `authorize`, but with `--insecure-dev` an unsigned request
    /// passes (as `None`).
    pub fn authorize_management(
        &self,
        request: &sigv4::Request,
        resource: &str,
    ) -> Result<Option<Caller>, AuthError> {
        self.check_management_head(request)?
            .map(|head| head.finish(request, policy::MANAGE_CONNECTIONS, resource))
            .transpose()
    }
}

/// Checks an HTTP request's signature against several APIs' keys (a
/// local service all of them call) and, when `action` is given as
/// `(action, resource)`, that the key may do it.
pub fn authorize_any(
    signers: &[Authenticator],
    parts: &http::request::Parts,
    body: &[u8],
    action: Option<(&str, &str)>,
) -> Result<Caller, AuthError> {
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let request = sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &headers,
        body,
    };
    let now = SystemTime::now();
    let mut refusal = AuthError::UnrecognizedClient;
    for signer in signers {
        match signer.check_head(&request, now) {
            Ok(head) => {
                return match action {
                    Some((action, resource)) => head.finish(&request, action, resource),
                    None => head.verify(&request),
                };
            }
            // Another API's keys may know it.
            Err(AuthError::UnrecognizedClient) => {}
            Err(other) => refusal = other,
        }
    }
    Err(refusal)
}

/// Whether the request names this machine by a loopback address or
/// `localhost` (with any port): a name another site rebound to 127.0.0.1
/// is neither, so a page cannot use a loopback service through it.
pub fn loopback_host(headers: &http::HeaderMap) -> bool {
    let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A request whose signature passed every check but the one over the
/// whole request (body included).
pub struct HeadChecked {
    claim: sigv4::Claim,
    key: Arc<keyring::Key>,
}

impl HeadChecked {
    /// Recomputes the signature over the whole request, then checks that
    /// the key may do `action` on `resource`; returns the caller.
    pub fn finish(
        self,
        request: &sigv4::Request,
        action: &str,
        resource: &str,
    ) -> Result<Caller, AuthError> {
        self.verify_signature(request)?;
        let key = &self.key;
        if !key.policy.allows(action, resource) {
            return Err(AuthError::Denied {
                user_arn: key.caller.user_arn.clone(),
                action: action.to_string(),
                resource: resource.to_string(),
            });
        }
        Ok(key.caller.clone())
    }

    /// Recomputes the signature over the whole request; the caller, what
    /// ever its key may do (a service that does not enforce policies).
    pub fn verify(self, request: &sigv4::Request) -> Result<Caller, AuthError> {
        self.verify_signature(request)?;
        Ok(self.key.caller.clone())
    }

    fn verify_signature(&self, request: &sigv4::Request) -> Result<(), AuthError> {
        sigv4::verify_signature(
            request,
            &self.claim,
            &sigv4::Secret {
                secret_access_key: &self.key.secret_access_key,
                session_token: self.key.session_token.as_deref(),
            },
        )
    }
}

/// A session key needs its own token; a long-term key takes none.
fn same_token(expected: Option<&str>, sent: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    match (expected, sent) {
        (None, None) => true,
        (Some(expected), Some(sent)) => expected.as_bytes().ct_eq(sent.as_bytes()).into(),
        _ => false,
    }
}
