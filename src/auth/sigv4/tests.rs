//! Signatures made by `aws-sigv4` as a client signs (default settings, as
//! the SDKs use them), verified by this module.

use super::*;
use aws_sigv4::http_request::SigningSettings;

const REGION: &str = "us-east-1";
const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct Signed {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Signed {
    fn request(&self) -> (Vec<(&str, &str)>, Request<'_>) {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let request = Request {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &[],
            body: &self.body,
        };
        (headers, request)
    }

    fn verify(&self, secret: &str, token: Option<&str>, now: SystemTime) -> Result<(), AuthError> {
        let (headers, mut request) = self.request();
        request.headers = &headers;
        let claim = parse(&request)?;
        check_scope_and_time(&claim, REGION, now)?;
        verify_signature(
            &request,
            &claim,
            &Secret {
                secret_access_key: secret,
                session_token: token,
            },
        )
    }
}

struct Signer {
    region: &'static str,
    service: &'static str,
    token: Option<&'static str>,
    time: SystemTime,
    presign: Option<Duration>,
}

impl Default for Signer {
    fn default() -> Self {
        Signer {
            region: REGION,
            service: SERVICE,
            token: None,
            time: SystemTime::now(),
            presign: None,
        }
    }
}

impl Signer {
    fn sign(&self, method: &str, path_and_query: &str, body: &[u8]) -> Signed {
        let url = format!("http://127.0.0.1:8080{path_and_query}");
        let headers = vec![
            ("host".to_string(), "127.0.0.1:8080".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("User-Agent".to_string(), "test".to_string()),
        ];
        let identity =
            Credentials::new(KEY, SECRET, self.token.map(str::to_string), None, "t").into();
        let mut settings = SigningSettings::default();
        if let Some(expires) = self.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            method,
            url.clone(),
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let mut request = http::Request::builder().method(method).uri(&url);
        for (n, v) in &headers {
            request = request.header(n, v);
        }
        let mut request = request.body(()).unwrap();
        sign(signable, &params)
            .unwrap()
            .into_parts()
            .0
            .apply_to_request_http1x(&mut request);
        Signed {
            method: method.into(),
            path: request.uri().path().into(),
            query: request.uri().query().map(str::to_string),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }
}

const PATH: &str = "/prod/%40connections/L0SM9cOFvHcCIhw%3D";

#[test]
fn accepts_a_header_signed_request() {
    let signed = Signer::default().sign("POST", PATH, b"{\"hi\":1}");
    signed.verify(SECRET, None, SystemTime::now()).unwrap();
}

#[test]
fn accepts_session_tokens_and_presigned_urls() {
    let signer = Signer {
        token: Some("token-1"),
        ..Signer::default()
    };
    let signed = signer.sign("GET", PATH, b"");
    signed
        .verify(SECRET, Some("token-1"), SystemTime::now())
        .unwrap();
    let presigned = Signer {
        presign: Some(Duration::from_secs(60)),
        ..Signer::default()
    }
    .sign("GET", "/prod?room=a%20b&x=1", b"");
    assert!(
        presigned
            .query
            .as_deref()
            .unwrap()
            .contains("X-Amz-Signature=")
    );
    presigned.verify(SECRET, None, SystemTime::now()).unwrap();
}

#[test]
fn refuses_tampering_and_wrong_secrets() {
    let signed = Signer::default().sign("POST", PATH, b"{\"hi\":1}");
    let mut tampered = Signed {
        body: b"{\"hi\":2}".to_vec(),
        ..signed
    };
    assert_eq!(
        tampered.verify(SECRET, None, SystemTime::now()),
        Err(AuthError::mismatch())
    );
    tampered.body = b"{\"hi\":1}".to_vec();
    assert_eq!(
        tampered.verify("wrong", None, SystemTime::now()),
        Err(AuthError::mismatch())
    );
    tampered.path = "/prod/%40connections/other%3D".into();
    assert_eq!(
        tampered.verify(SECRET, None, SystemTime::now()),
        Err(AuthError::mismatch())
    );
    let mut other_method = Signer::default().sign("POST", PATH, b"");
    other_method.method = "DELETE".into();
    assert_eq!(
        other_method.verify(SECRET, None, SystemTime::now()),
        Err(AuthError::mismatch())
    );
}

#[test]
fn refuses_a_changed_signed_header_but_not_an_unsigned_one() {
    let mut signed = Signer::default().sign("POST", PATH, b"x");
    signed.headers.push(("x-extra".into(), "unsigned".into()));
    signed.verify(SECRET, None, SystemTime::now()).unwrap();
    for (n, v) in signed.headers.iter_mut() {
        if n == "content-type" {
            *v = "text/plain".into();
        }
    }
    assert_eq!(
        signed.verify(SECRET, None, SystemTime::now()),
        Err(AuthError::mismatch())
    );
}

#[test]
fn refuses_old_future_and_expired_signatures() {
    let now = SystemTime::now();
    let old = Signer {
        time: now - Duration::from_secs(6 * 60),
        ..Signer::default()
    }
    .sign("POST", PATH, b"");
    let error = old.verify(SECRET, None, now).unwrap_err();
    assert!(
        error.to_string().starts_with("Signature expired: "),
        "{error}"
    );
    let future = Signer {
        time: now + Duration::from_secs(6 * 60),
        ..Signer::default()
    }
    .sign("POST", PATH, b"");
    let error = future.verify(SECRET, None, now).unwrap_err();
    assert!(
        error.to_string().starts_with("Signature not yet current: "),
        "{error}"
    );
    // Within the skew: fine.
    Signer {
        time: now - Duration::from_secs(4 * 60),
        ..Signer::default()
    }
    .sign("POST", PATH, b"")
    .verify(SECRET, None, now)
    .unwrap();
    let presigned = Signer {
        time: now - Duration::from_secs(120),
        presign: Some(Duration::from_secs(60)),
        ..Signer::default()
    }
    .sign("GET", "/prod", b"");
    let error = presigned.verify(SECRET, None, now).unwrap_err();
    assert!(
        error.to_string().starts_with("Signature expired: "),
        "{error}"
    );
}

#[test]
fn refuses_other_regions_and_services() {
    let error = Signer {
        region: "eu-west-1",
        ..Signer::default()
    }
    .sign("POST", PATH, b"")
    .verify(SECRET, None, SystemTime::now())
    .unwrap_err();
    assert_eq!(error.error_type(), "InvalidSignatureException");
    assert!(error.to_string().contains("valid region"), "{error}");
    let error = Signer {
        service: "execute-apix",
        ..Signer::default()
    }
    .sign("POST", PATH, b"")
    .verify(SECRET, None, SystemTime::now())
    .unwrap_err();
    assert!(error.to_string().contains("correct service"), "{error}");
}

#[test]
fn parses_what_is_missing_or_malformed() {
    let request = |headers: &'static [(&'static str, &'static str)], query| Request {
        method: "GET",
        path: "/prod",
        query,
        headers,
        body: b"",
    };
    assert_eq!(
        parse(&request(&[("host", "h")], None)),
        Err(AuthError::Missing)
    );
    assert_eq!(
        parse(&request(&[], Some("room=1"))),
        Err(AuthError::Missing)
    );
    let bearer = parse(&request(&[("Authorization", "Bearer abc")], None)).unwrap_err();
    assert_eq!(bearer.error_type(), "IncompleteSignatureException");
    let no_signature = parse(&request(
        &[
            ("Authorization", "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host"),
            ("X-Amz-Date", "20260101T000000Z"),
        ],
        None,
    ))
    .unwrap_err();
    assert!(
        no_signature.to_string().contains("'Signature'"),
        "{no_signature}"
    );
    let no_host = parse(&request(
        &[
            ("Authorization", "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=x-amz-date, Signature=00"),
            ("X-Amz-Date", "20260101T000000Z"),
        ],
        None,
    ))
    .unwrap_err();
    assert!(no_host.to_string().contains("'Host'"), "{no_host}");
    let short: &'static [(&str, &str)] = &[
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/execute-api, SignedHeaders=host, Signature=00",
        ),
        ("X-Amz-Date", "20260101T000000Z"),
    ];
    let long: &'static [(&str, &str)] = &[
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/execute-api/aws4_request/more, SignedHeaders=host, Signature=00",
        ),
        ("X-Amz-Date", "20260101T000000Z"),
    ];
    for headers in [short, long] {
        let odd = parse(&request(headers, None)).unwrap_err();
        assert!(
            odd.to_string().contains("Credential must have the form"),
            "{odd}"
        );
    }
    let bad_date = parse(&request(
        &[
            ("Authorization", "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00"),
            ("X-Amz-Date", "yesterday"),
        ],
        None,
    ))
    .unwrap_err();
    assert!(bad_date.to_string().contains("X-Amz-Date"), "{bad_date}");
    let presign_missing =
        parse(&request(&[], Some("X-Amz-Algorithm=AWS4-HMAC-SHA256"))).unwrap_err();
    assert!(
        presign_missing.to_string().contains("X-Amz-"),
        "{presign_missing}"
    );
    let too_long = parse(&request(
        &[],
        Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20260101%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=00"),
    ))
    .unwrap_err();
    assert!(too_long.to_string().contains("X-Amz-Expires"), "{too_long}");
}

#[test]
fn scope_date_must_match_the_request_date() {
    let request = Request {
        method: "GET",
        path: "/prod",
        query: None,
        headers: &[
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=A/20260102/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00",
            ),
            ("X-Amz-Date", "20260101T000000Z"),
        ],
        body: b"",
    };
    let claim = parse(&request).unwrap();
    let now = claim.time;
    let error = check_scope_and_time(&claim, REGION, now).unwrap_err();
    assert!(
        error.to_string().starts_with("Date in Credential scope"),
        "{error}"
    );
}

#[test]
fn odd_request_targets_are_mismatches_not_panics() {
    let signed = Signer::default().sign("POST", PATH, b"x");
    for path in [
        "D",
        "*",
        "//x",
        "//",
        "",
        "http://h/prod",
        "/a%ZZ",
        "/\u{e9}",
    ] {
        let mut odd = Signed {
            path: path.into(),
            ..Signer::default().sign("POST", PATH, b"x")
        };
        odd.query = Some("a=b&X-Amz-Date=1".into());
        assert_eq!(
            odd.verify(SECRET, None, SystemTime::now()),
            Err(AuthError::mismatch()),
            "{path:?}"
        );
    }
    signed.verify(SECRET, None, SystemTime::now()).unwrap();
}

#[test]
fn amz_dates_parse_as_chrono_parses_them() {
    for text in [
        "20260101T000000Z",
        "20261231T235959Z",
        "20240229T120000Z",
        "20230229T120000Z",
        "20260101T240000Z",
        "20260101T000000",
        "20260101T000000Z ",
        "2026-01-01T00:00:00Z",
        "yesterday",
        "",
        "120260101T000000Z",
        "20260101T0000Z",
    ] {
        assert_eq!(
            parse_amz_date(text).ok(),
            NaiveDateTime::parse_from_str(text, AMZ_DATE_FORMAT).ok(),
            "{text:?}"
        );
    }
}
