//! AWS Signature Version 4 verification, for header-signed requests (what
//! the AWS SDKs send) and presigned URLs (what browsers can use).
//!
//! This module only parses what the caller sent and checks scope and time;
//! the canonical request and the signature are recomputed by `aws-sigv4`,
//! AWS's own signer, over exactly the headers the caller signed, and the
//! signatures are compared in constant time.

use super::AuthError;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const SERVICE: &str = "execute-api";
/// How far a signature's time may be from the gateway's clock (AWS: 5 min).
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// The longest a presigned URL may stay valid (AWS: 7 days).
pub const MAX_EXPIRES_SECS: u64 = 7 * 24 * 60 * 60;

const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Query parameters a presigned URL adds; `aws-sigv4` adds them back itself.
const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// A request as received, for verification.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Headers,
    Query,
}

/// The signature a caller claims, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub location: Location,
    pub access_key_id: String,
    /// The credential scope: date (YYYYMMDD), region, service, terminator.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
    /// Lowercase, as the caller listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date` as sent (YYYYMMDDTHHMMSSZ) and as a time.
    pub amz_date: String,
    pub time: SystemTime,
    /// Presigned URLs only: seconds the URL stays valid.
    pub expires: Option<u64>,
    pub session_token: Option<String>,
}

/// Finds and parses the signature of a request; `Missing` when it carries
/// none at all.
pub fn parse(request: &Request) -> Result<Claim, AuthError> {
    if let Some(authorization) = request.header("authorization") {
        return parse_header(request, authorization);
    }
    let params: Vec<(String, String)> = request
        .query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if params.iter().any(|(k, _)| k.starts_with("X-Amz-")) {
        return parse_query(&params);
    }
    Err(AuthError::Missing)
}

fn parse_header(request: &Request, authorization: &str) -> Result<Claim, AuthError> {
    let Some(fields) = authorization
        .strip_prefix(ALGORITHM)
        .filter(|rest| rest.starts_with(' '))
    else {
        return Err(AuthError::Incomplete(format!(
            "Authorization header must use the {ALGORITHM} scheme."
        )));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=').ok_or_else(|| {
            AuthError::Incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{field}'."
            ))
        })?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    fn require<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, AuthError> {
        value.ok_or_else(|| {
            AuthError::Incomplete(format!("Authorization header requires '{name}' parameter."))
        })
    }
    let credential = require(credential, "Credential")?;
    let signed_headers = require(signed_headers, "SignedHeaders")?;
    let signature = require(signature, "Signature")?;
    let amz_date = request.header("x-amz-date").ok_or_else(|| {
        AuthError::Incomplete(
            "Authorization header requires existence of a 'X-Amz-Date' header.".into(),
        )
    })?;
    claim(
        Location::Headers,
        credential,
        signed_headers,
        signature,
        amz_date,
        None,
        request.header("x-amz-security-token"),
    )
}

fn parse_query(params: &[(String, String)]) -> Result<Claim, AuthError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let require = |name: &str| {
        get(name).ok_or_else(|| {
            AuthError::Incomplete(format!(
                "AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."
            ))
        })
    };
    if require("X-Amz-Algorithm")? != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\"."
        )));
    }
    let expires = require("X-Amz-Expires")?;
    let expires = expires
        .parse::<u64>()
        .ok()
        .filter(|&secs| secs <= MAX_EXPIRES_SECS)
        .ok_or_else(|| {
            AuthError::Incomplete(format!(
                "X-Amz-Expires must be a whole number of seconds from 0 to {MAX_EXPIRES_SECS}, not '{expires}'."
            ))
        })?;
    claim(
        Location::Query,
        require("X-Amz-Credential")?,
        require("X-Amz-SignedHeaders")?,
        require("X-Amz-Signature")?,
        require("X-Amz-Date")?,
        Some(expires),
        get("X-Amz-Security-Token"),
    )
}

fn claim(
    location: Location,
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: &str,
    expires: Option<u64>,
    session_token: Option<&str>,
) -> Result<Claim, AuthError> {
    let mut parts = credential.split('/');
    let (
        Some(access_key_id),
        Some(scope_date),
        Some(region),
        Some(service),
        Some(terminator),
        None,
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have the form <access key>/<date>/<region>/<service>/aws4_request, not '{credential}'."
        )));
    };
    if access_key_id.is_empty() {
        return Err(AuthError::Incomplete(
            "Credential names no access key.".into(),
        ));
    }
    let time = parse_amz_date(amz_date)
        .map_err(|_| {
            AuthError::Incomplete(format!(
                "X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z', not '{amz_date}'."
            ))
        })?
        .and_utc();
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_string).collect();
    if signed_headers.iter().any(|h| {
        h.is_empty()
            || h.bytes().any(|b| b.is_ascii_uppercase())
            || http::HeaderName::from_bytes(h.as_bytes()).is_err()
    }) {
        return Err(AuthError::Incomplete(
            "SignedHeaders must be lowercase header names separated by ';'.".into(),
        ));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    Ok(Claim {
        location,
        access_key_id: access_key_id.to_string(),
        scope_date: scope_date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers,
        signature: signature.to_string(),
        amz_date: amz_date.to_string(),
        time: time.into(),
        expires,
        session_token: session_token.map(str::to_string),
    })
}

/// Checks the credential scope and the time window, before any key is
/// looked up.
pub fn check_scope_and_time(claim: &Claim, region: &str, now: SystemTime) -> Result<(), AuthError> {
    check_scope_and_time_for(claim, SERVICE, region, now)
}

/// As `check_scope_and_time`, for a request to `service` (the local Lambda
/// Invoke API's are scoped to `lambda`).
pub fn check_scope_and_time_for(
    claim: &Claim,
    service: &str,
    region: &str,
    now: SystemTime,
) -> Result<(), AuthError> {
    if claim.terminator != "aws4_request" {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            claim.terminator
        )));
    }
    if claim.service != service {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if claim.region != region {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            claim.region
        )));
    }
    if !claim.amz_date.starts_with(&claim.scope_date) || claim.scope_date.len() != 8 {
        return Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            claim.scope_date,
            &claim.amz_date[..8.min(claim.amz_date.len())],
            claim.amz_date
        )));
    }
    let earliest = now - MAX_SKEW;
    let latest = now + MAX_SKEW;
    if claim.time > latest {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            claim.amz_date,
            amz(latest),
            amz(now)
        )));
    }
    match claim.expires {
        None if claim.time < earliest => Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            claim.amz_date,
            amz(earliest),
            amz(now)
        ))),
        Some(secs) if claim.time + Duration::from_secs(secs) < now => {
            Err(AuthError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} + {secs} sec.)",
                claim.amz_date,
                amz(now - Duration::from_secs(secs)),
                claim.amz_date
            )))
        }
        _ => Ok(()),
    }
}

/// `NaiveDateTime::parse_from_str(text, AMZ_DATE_FORMAT)`, with the
/// format read once rather than on every signed request.
fn parse_amz_date(text: &str) -> chrono::ParseResult<NaiveDateTime> {
    static ITEMS: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| {
        StrftimeItems::new(AMZ_DATE_FORMAT)
            .parse_to_owned()
            .expect("a valid format")
    });
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, ITEMS.iter())?;
    parsed.to_naive_datetime_with_offset(0)
}

fn amz(time: SystemTime) -> String {
    DateTime::<Utc>::from(time)
        .format(AMZ_DATE_FORMAT)
        .to_string()
}

/// The secret half of a key, from the keyring.
pub struct Secret<'a> {
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// Recomputes the signature with `secret` and compares it with the claim.
pub fn verify_signature(
    request: &Request,
    claim: &Claim,
    secret: &Secret,
) -> Result<(), AuthError> {
    let bodies: &[SignableBody] = match claim.location {
        Location::Headers => &[SignableBody::Bytes(request.body)],
        // Presigners differ: botocore signs UNSIGNED-PAYLOAD, the others
        // the hash of the empty body. Either is accepted.
        Location::Query => &[
            SignableBody::Bytes(request.body),
            SignableBody::UnsignedPayload,
        ],
    };
    for body in bodies {
        if signature_matches(request, claim, secret, body.clone())? {
            return Ok(());
        }
    }
    Err(AuthError::mismatch())
}

fn signature_matches(
    request: &Request,
    claim: &Claim,
    secret: &Secret,
    body: SignableBody,
) -> Result<bool, AuthError> {
    // Only origin-form targets (`/path?query`) are signed requests; other
    // forms would make aws-sigv4 build a URI it cannot rebuild.
    if !request.path.starts_with('/') || request.path.starts_with("//") {
        return Ok(false);
    }
    // aws-sigv4 adds the date and token headers (or the presign
    // parameters) itself, from the values below.
    let mut headers = Vec::new();
    for name in &claim.signed_headers {
        if claim.location == Location::Headers
            && (name == "x-amz-date" || name == "x-amz-security-token")
        {
            continue;
        }
        let before = headers.len();
        headers.extend(
            request
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| (name.as_str(), *v)),
        );
        if headers.len() == before {
            return Ok(false);
        }
    }
    let token_signed = match claim.location {
        Location::Headers => claim
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-security-token"),
        Location::Query => claim.session_token.is_some(),
    };
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    settings.excluded_headers = Some(Vec::new());
    settings.session_token_mode = if token_signed {
        SessionTokenMode::Include
    } else {
        SessionTokenMode::Exclude
    };
    let query = match claim.location {
        Location::Headers => request.query.map(str::to_string),
        Location::Query => request.query.map(without_presign_params),
    };
    settings.signature_location = match claim.location {
        Location::Headers => SignatureLocation::Headers,
        Location::Query => SignatureLocation::QueryParams,
    };
    settings.expires_in = claim.expires.map(Duration::from_secs);
    let uri = match query.as_deref() {
        Some(q) if !q.is_empty() => format!("{}?{q}", request.path),
        _ => request.path.to_string(),
    };
    let identity = Credentials::new(
        &claim.access_key_id,
        secret.secret_access_key,
        secret.session_token.map(str::to_string),
        None,
        "wsgate",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&claim.region)
        // The service the scope names, which the caller checked.
        .name(&claim.service)
        .time(claim.time)
        .settings(settings)
        .build()
        .map_err(|e| AuthError::Incomplete(e.to_string()))?
        .into();
    // A request aws-sigv4 cannot canonicalize cannot match any signature.
    let Ok(signable) = SignableRequest::new(request.method, uri, headers.into_iter(), body) else {
        return Ok(false);
    };
    let Ok(output) = sign(signable, &params) else {
        return Ok(false);
    };
    let (instructions, signature) = output.into_parts();
    let computed_signed_headers = match claim.location {
        Location::Headers => instructions
            .headers()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.split_once("SignedHeaders=").map(|(_, rest)| rest))
            .and_then(|rest| rest.split(',').next()),
        Location::Query => instructions
            .params()
            .iter()
            .find(|(k, _)| *k == "X-Amz-SignedHeaders")
            .map(|(_, v)| v.as_ref()),
    };
    let same_headers = computed_signed_headers
        .is_some_and(|computed| computed.split(';').eq(claim.signed_headers.iter()));
    let same_signature: bool = signature
        .as_bytes()
        .ct_eq(claim.signature.as_bytes())
        .into();
    Ok(same_headers && same_signature)
}

/// The query string without the presign parameters, kept raw otherwise.
fn without_presign_params(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            !PRESIGN_PARAMS.contains(&key.as_ref())
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests;
