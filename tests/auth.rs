//! Auth with real signers: SigV4 on the management API and on `$connect`
//! (headers and presigned URLs), key policies, function credentials and
//! Lambda REQUEST authorizers. Every refusal is checked to deliver nothing.

mod common;

use aws_credential_types::Credentials as SdkCredentials;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Region};
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use wsgate::{Allow, ConnectAuth, Credentials, Policy, Response, WebSocketApi, handler_fn};

const ALICE_ID: &str = "AKIAALICE00000000001";
const ALICE_SECRET: &str = "alice-secret-alice-secret-alice-secret00";
const READER_ID: &str = "AKIAREADER0000000001";
const READER_SECRET: &str = "reader-secret-reader-secret-reader-secre";

fn alice() -> Credentials {
    Credentials {
        access_key_id: ALICE_ID.into(),
        secret_access_key: ALICE_SECRET.into(),
        session_token: None,
    }
}

fn reader() -> Credentials {
    Credentials {
        access_key_id: READER_ID.into(),
        secret_access_key: READER_SECRET.into(),
        session_token: None,
    }
}

/// A gateway on stage `prod` with two keys: alice may do anything, the
/// reader may only GetConnection. `$connect` events go to `connects`.
async fn secure_gateway(
    connect_auth: Option<ConnectAuth>,
    insecure_dev: bool,
) -> (wsgate::Server, mpsc::UnboundedReceiver<Value>) {
    let (tx, connects) = mpsc::unbounded_channel();
    let mut api = WebSocketApi::new("Secure")
        .stage("prod")
        .credential(ALICE_ID, ALICE_SECRET, "alice", Policy::allow_all())
        .credential(
            READER_ID,
            READER_SECRET,
            "reader",
            Policy {
                allow: vec![Allow::new(
                    "execute-api:ManageConnections",
                    "arn:aws:execute-api:us-east-1:*:*/prod/GET/@connections/*",
                )],
                deny: Vec::new(),
            },
        )
        .insecure_dev(insecure_dev)
        .route(
            "$connect",
            handler_fn(move |event, _| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(serde_json::to_value(&event).unwrap());
                    Ok(Response::ok())
                }
            }),
        )
        .route_with(
            "whoami",
            handler_fn(|event, _| async move {
                let context = event.request_context;
                Ok(Response::ok().with_body(
                    serde_json::json!({
                        "id": context.connection_id,
                        "userArn": context.identity.user_arn,
                    })
                    .to_string(),
                ))
            }),
            two_way(),
        );
    if let Some(auth) = connect_auth {
        api = api.connect_auth(auth);
    }
    (api.bind(any_port()).await.unwrap(), connects)
}

async fn whoami(client: &mut Client) -> Value {
    send_text(client, r#"{"action":"whoami"}"#).await;
    serde_json::from_str(&next_text(client).await).unwrap()
}

fn sdk(endpoint: &str, region: &str, key: &Credentials) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(SdkCredentials::new(
            &key.access_key_id,
            &key.secret_access_key,
            key.session_token.clone(),
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// A raw signed POST with the signing inputs varied.
struct Post<'a> {
    key: &'a Credentials,
    region: &'a str,
    service: &'a str,
    time: SystemTime,
    signed_body: &'a str,
    sent_body: &'a str,
}

impl<'a> Post<'a> {
    fn new(key: &'a Credentials) -> Post<'a> {
        Post {
            key,
            region: "us-east-1",
            service: "execute-api",
            time: SystemTime::now(),
            signed_body: "refused",
            sent_body: "refused",
        }
    }

    async fn send(&self, url: &str) -> (u16, http::HeaderMap, String) {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(url)
            .body(())
            .unwrap();
        sign(
            &mut request,
            self.key,
            self.region,
            self.service,
            self.signed_body.as_bytes(),
            self.time,
        );
        send(request, bytes::Bytes::from(self.sent_body.to_string())).await
    }
}

#[tokio::test]
async fn management_refuses_bad_signatures_and_delivers_nothing() {
    let (server, _) = secure_gateway(None, false).await;
    let mut client = connect(&server.url()).await;
    let id = whoami(&mut client).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/@connections/{id}", server.management_endpoint());
    let six_minutes_ago = SystemTime::now() - Duration::from_secs(6 * 60);
    let stranger = Credentials {
        access_key_id: "AKIASTRANGER00000001".into(),
        ..alice()
    };
    let wrong_secret = Credentials {
        secret_access_key: "not-alices-secret".into(),
        ..alice()
    };
    let alice = alice();

    let (status, headers, body) = management_as(None, "POST", &url, "unsigned").await;
    assert_eq!(status, 403);
    assert_eq!(
        headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(body, r#"{"message":"Missing Authentication Token"}"#);

    let cases: Vec<(&str, Post, &str, &str)> = vec![
        (
            "tampered body",
            Post {
                sent_body: "tampered",
                ..Post::new(&alice)
            },
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        ),
        (
            "wrong secret",
            Post::new(&wrong_secret),
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        ),
        (
            "replayed outside the skew",
            Post {
                time: six_minutes_ago,
                ..Post::new(&alice)
            },
            "InvalidSignatureException",
            "Signature expired",
        ),
        (
            "wrong region",
            Post {
                region: "eu-west-1",
                ..Post::new(&alice)
            },
            "InvalidSignatureException",
            "Credential should be scoped to a valid region",
        ),
        (
            "wrong service",
            Post {
                service: "lambda",
                ..Post::new(&alice)
            },
            "InvalidSignatureException",
            "Credential should be scoped to correct service",
        ),
        (
            "unknown key",
            Post::new(&stranger),
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
    ];
    for (what, post, error_type, message) in cases {
        let (status, headers, body) = post.send(&url).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(headers["x-amzn-errortype"], error_type, "{what}");
        assert!(body.contains(message), "{what}: {body}");
    }
    assert_silent(&mut client, Duration::from_millis(300)).await;

    // The same request, signed right, is delivered.
    let valid = Post {
        signed_body: "valid",
        sent_body: "valid",
        ..Post::new(&alice)
    };
    assert_eq!(valid.send(&url).await.0, 200);
    assert_eq!(next_text(&mut client).await, "valid");
    server.shutdown().await;
}

#[tokio::test]
async fn rust_sdk_errors_are_typed_and_policies_apply() {
    let (server, _) = secure_gateway(None, false).await;
    let mut client = connect(&server.url()).await;
    let id = whoami(&mut client).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let endpoint = server.management_endpoint();

    sdk(&endpoint, "us-east-1", &alice())
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("from alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, "from alice");

    // The reader may GetConnection but not post: ForbiddenException.
    let reader = sdk(&endpoint, "us-east-1", &reader());
    reader
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    let err = reader
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("from the reader"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, PostToConnectionError::ForbiddenException(_)),
        "{err:?}"
    );
    assert!(
        err.message().unwrap_or_default().contains(
            "arn:aws:iam::000000000000:user/reader is not authorized to perform: execute-api:ManageConnections"
        ),
        "{err:?}"
    );

    let wrong_secret = Credentials {
        secret_access_key: "nope".into(),
        ..alice()
    };
    let err = sdk(&endpoint, "us-east-1", &wrong_secret)
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    let err = sdk(&endpoint, "ap-south-1", &alice())
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    assert_silent(&mut client, Duration::from_millis(300)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn insecure_dev_accepts_unsigned_calls_only() {
    let (server, _) = secure_gateway(None, true).await;
    let mut client = connect(&server.url()).await;
    let id = whoami(&mut client).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/@connections/{id}", server.management_endpoint());
    assert_eq!(management_as(None, "POST", &url, "unsigned").await.0, 200);
    assert_eq!(next_text(&mut client).await, "unsigned");
    // A signature, if any, is still verified.
    let wrong_secret = Credentials {
        secret_access_key: "nope".into(),
        ..alice()
    };
    assert_eq!(Post::new(&wrong_secret).send(&url).await.0, 403);
    assert_silent(&mut client, Duration::from_millis(300)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn generated_key_is_the_only_one_without_config() {
    let server = WebSocketApi::new("Gen").bind(any_port()).await.unwrap();
    let key = server.generated_credentials().expect("generated").clone();
    assert!(key.access_key_id.starts_with("AKIA"));
    let mut client = connect(&server.url()).await;
    let url = format!("{}/@connections/nope", server.management_endpoint());
    // Signed by the generated key: past auth (the connection is unknown).
    assert_eq!(management(&server, "POST", &url, "x").await.0, 410);
    assert_eq!(management_as(None, "POST", &url, "x").await.0, 403);
    assert_eq!(Post::new(&alice()).send(&url).await.0, 403);
    assert_silent(&mut client, Duration::from_millis(100)).await;
    // A configured key replaces the generated one.
    let (configured, _) = secure_gateway(None, false).await;
    assert!(configured.generated_credentials().is_none());
    server.shutdown().await;
    configured.shutdown().await;
}

#[tokio::test]
async fn iam_connect_by_signed_headers_and_presigned_url() {
    let (server, mut connects) = secure_gateway(Some(ConnectAuth::Iam), false).await;
    let url = server.url();

    // Unsigned: 403 before any upgrade, $connect never runs.
    assert_eq!(try_connect(&url, &[]).await.err(), Some(403));

    // Signed headers, as an SDK-based client would send.
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.replacen("ws://", "http://", 1))
        .body(())
        .unwrap();
    sign(
        &mut request,
        &alice(),
        "us-east-1",
        "execute-api",
        b"",
        SystemTime::now(),
    );
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (mut client, _) = try_connect(&url, &headers).await.unwrap();
    let event = connects.recv().await.unwrap();
    let identity = &event["requestContext"]["identity"];
    assert_eq!(identity["userArn"], "arn:aws:iam::000000000000:user/alice");
    assert_eq!(identity["accessKey"], ALICE_ID);
    assert_eq!(identity["accountId"], "000000000000");
    // Later events of the connection carry the caller too.
    assert_eq!(
        whoami(&mut client).await["userArn"],
        "arn:aws:iam::000000000000:user/alice"
    );

    // Presigned URL: what a browser can use.
    let presigned = presign(
        &url,
        &alice(),
        "us-east-1",
        Duration::from_secs(60),
        SystemTime::now(),
    );
    assert!(presigned.contains("X-Amz-Signature="), "{presigned}");
    let mut browser_like = connect(&presigned).await;
    assert!(whoami(&mut browser_like).await["id"].is_string());
    connects.recv().await.unwrap();

    // Expired presign, tampered presign, a key without Invoke: refused.
    let expired = presign(
        &url,
        &alice(),
        "us-east-1",
        Duration::from_secs(60),
        SystemTime::now() - Duration::from_secs(120),
    );
    assert_eq!(try_connect(&expired, &[]).await.err(), Some(403));
    let tampered = presign(
        &format!("{url}?room=a"),
        &alice(),
        "us-east-1",
        Duration::from_secs(60),
        SystemTime::now(),
    )
    .replace("room=a", "room=b");
    assert_eq!(try_connect(&tampered, &[]).await.err(), Some(403));
    let reader_url = presign(
        &url,
        &reader(),
        "us-east-1",
        Duration::from_secs(60),
        SystemTime::now(),
    );
    assert_eq!(try_connect(&reader_url, &[]).await.err(), Some(403));
    assert!(
        connects.try_recv().is_err(),
        "$connect ran for a refused upgrade"
    );
    server.shutdown().await;
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions")
}

/// An app folder with the fixture handlers and `config`.
fn app(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("handlers.mjs"),
        dir.path().join("handlers.mjs"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("py")).unwrap();
    std::fs::write(dir.path().join("py/__init__.py"), "").unwrap();
    std::fs::copy(
        fixtures().join("py/handlers.py"),
        dir.path().join("py/handlers.py"),
    )
    .unwrap();
    std::fs::write(dir.path().join("wsgate.toml"), config).unwrap();
    dir
}

async fn ask(client: &mut Client, action: &str) -> String {
    send_text(client, &format!(r#"{{"action":"{action}"}}"#)).await;
    next_text(client).await
}

#[tokio::test]
async fn only_linked_functions_may_manage_connections() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.is_file(), "run scripts/setup: it makes .venv");
    let python = python.display();
    let dir = app(&format!(
        r#"
name = "Fns"
[routes]
linked = {{ command = ["{python}", "-m", "awslambdaric", "py.handlers.push_self"], return_response = true, link = ["Fns"] }}
unlinked = {{ command = ["{python}", "-m", "awslambdaric", "py.handlers.push_self"], return_response = true }}
credentials = {{ handler = "handlers.credentials", return_response = true, link = ["Fns"] }}
"#
    ));
    let server = serve_folder(dir.path()).await;
    let mut client = connect(&server.url()).await;

    // boto3 in a function, signing with the function's session credentials.
    assert_eq!(ask(&mut client, "linked").await, "pushed by the function");
    assert_eq!(next_text(&mut client).await, "delivered");
    assert_eq!(ask(&mut client, "unlinked").await, "ForbiddenException");
    assert_silent(&mut client, Duration::from_millis(300)).await;

    // A session key is useless without its token.
    let session: Value = serde_json::from_str(&ask(&mut client, "credentials").await).unwrap();
    let mut key = Credentials {
        access_key_id: session["accessKeyId"].as_str().unwrap().into(),
        secret_access_key: session["secretAccessKey"].as_str().unwrap().into(),
        session_token: None,
    };
    let url = format!("{}/@connections/nope", server.management_endpoint());
    let (status, headers, _) = Post::new(&key).send(&url).await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-amzn-errortype"], "UnrecognizedClientException");
    key.session_token = Some("a-made-up-token".into());
    assert_eq!(Post::new(&key).send(&url).await.0, 403);
    key.session_token = session["sessionToken"].as_str().map(str::to_string);
    // With its token: authorized (the connection is unknown: 410).
    assert_eq!(Post::new(&key).send(&url).await.0, 410);
    server.shutdown().await;
}

#[tokio::test]
async fn lambda_request_authorizer_decides_the_upgrade() {
    let mut backend = Backend::start(|_, _| Reply::ok()).await;
    let dir = app(&format!(
        r#"
name = "Authz"
stage = "prod"
[authorizers.Token]
handler = "handlers.authorize"
[authorizers.Query]
handler = "handlers.authorize"
identity_sources = ["route.request.querystring.token"]
[routes]
"$connect" = {{ url = "{connect}", auth = {{ lambda = "Token" }} }}
"$disconnect" = {{ url = "{disconnect}" }}
authorizer = {{ handler = "handlers.authorizer", return_response = true }}
"#,
        connect = backend.url("/connect"),
        disconnect = backend.url("/disconnect"),
    ));
    let server = serve_folder(dir.path()).await;
    let url = server.url();
    let bearer = |token: &str| format!("Bearer {token}");

    // No Authorization header: 401 before the authorizer runs. Then as
    // API Gateway answers: Deny 403, the error "Unauthorized" 401, any
    // other error 500.
    assert_eq!(try_connect(&url, &[]).await.err(), Some(401));
    for (token, status) in [("bad", 403), ("expired", 401), ("crash", 500)] {
        assert_eq!(
            try_connect(&url, &[("Authorization", &bearer(token))])
                .await
                .err(),
            Some(status),
            "{token}"
        );
    }
    let (mut client, _) = try_connect(&url, &[("Authorization", &bearer("good"))])
        .await
        .unwrap();
    let connect_event = backend.event_for("$connect").await;
    let authorizer = &connect_event["requestContext"]["authorizer"];
    assert_eq!(authorizer["principalId"], "user-1");
    assert_eq!(authorizer["tenant"], "t1");
    assert_eq!(authorizer["level"], 3);
    assert_eq!(authorizer["eventType"], "REQUEST");
    let api_id = connect_event["requestContext"]["apiId"].as_str().unwrap();
    assert_eq!(
        authorizer["methodArn"],
        format!("arn:aws:execute-api:us-east-1:000000000000:{api_id}/prod/$connect").as_str()
    );
    assert!(authorizer["integrationLatency"].is_u64());
    // AWS's REQUEST payload keys, in its order, the query ones `{}` when
    // the URL has none.
    assert_eq!(
        authorizer["keys"],
        "type,methodArn,headers,multiValueHeaders,queryStringParameters,multiValueQueryStringParameters,stageVariables,requestContext"
    );
    assert_eq!(authorizer["query"], "[{},{}]");

    // Every later event carries it (without the latency).
    let later: Value = serde_json::from_str(&ask(&mut client, "authorizer").await).unwrap();
    assert_eq!(later["principalId"], "user-1");
    assert_eq!(later["tenant"], "t1");
    assert!(later.get("integrationLatency").is_none(), "{later}");
    client.close(None).await.unwrap();
    let disconnect = backend.event_for("$disconnect").await;
    assert_eq!(
        disconnect["requestContext"]["authorizer"]["principalId"],
        "user-1"
    );
    // Refused upgrades never reached $connect.
    let connects = backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _)| path == "/connect")
        .count();
    assert_eq!(connects, 1);
    server.shutdown().await;

    // A query-string identity source.
    let config = std::fs::read_to_string(dir.path().join("wsgate.toml"))
        .unwrap()
        .replace(r#"lambda = "Token""#, r#"lambda = "Query""#);
    std::fs::write(dir.path().join("wsgate.toml"), config).unwrap();
    let server = serve_folder(dir.path()).await;
    let url = server.url();
    assert_eq!(try_connect(&url, &[]).await.err(), Some(401));
    assert_eq!(
        try_connect(&format!("{url}?token=bad"), &[]).await.err(),
        Some(403)
    );
    let mut client = connect(&format!("{url}?token=good")).await;
    let later: Value = serde_json::from_str(&ask(&mut client, "authorizer").await).unwrap();
    assert_eq!(later["principalId"], "user-1");
    server.shutdown().await;
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a peer against the IAM gateway with alice's key as the default
/// credentials and the reader's beside it.
async fn run_auth_peer(program: &Path, script: &str) -> String {
    let (server, _) = secure_gateway(Some(ConnectAuth::Iam), false).await;
    let script = root().join(script);
    let stdout = run_peer(
        program,
        &[
            script.to_str().unwrap(),
            &server.url(),
            &server.management_endpoint(),
        ],
        server.region(),
        &[
            ("AWS_ACCESS_KEY_ID", ALICE_ID),
            ("AWS_SECRET_ACCESS_KEY", ALICE_SECRET),
            ("READER_ACCESS_KEY_ID", READER_ID),
            ("READER_SECRET_ACCESS_KEY", READER_SECRET),
        ],
    )
    .await;
    server.shutdown().await;
    stdout
}

#[tokio::test]
async fn boto3_and_botocore_presigned_connect() {
    let stdout = run_auth_peer(
        &root().join(".venv/bin/python"),
        "tests/conformance/python/auth.py",
    )
    .await;
    assert!(
        stdout.contains("python auth: all checks passed"),
        "{stdout}"
    );
}

#[tokio::test]
async fn js_sdk_and_its_presigner() {
    let stdout = run_auth_peer(Path::new("node"), "tests/conformance/node/auth.mjs").await;
    assert!(stdout.contains("node auth: all checks passed"), "{stdout}");
}
