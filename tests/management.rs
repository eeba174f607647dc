//! The `@connections` management API, driven by the AWS SDK for Rust
//! (unmodified, with `endpoint_url` = managementEndpoint) and by raw HTTP.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Region};
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::get_connection::GetConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wsgate::WebSocketApi;

/// The AWS SDK for Rust with the server's generated key.
fn sdk_client(server: &wsgate::Server, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let key = server.generated_credentials().expect("a generated key");
    sdk_client_as(
        endpoint,
        server.region(),
        Credentials::new(
            &key.access_key_id,
            &key.secret_access_key,
            key.session_token.clone(),
            None,
            "test",
        ),
    )
}

fn sdk_client_as(
    endpoint: &str,
    region: &str,
    credentials: Credentials,
) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// A server whose `whoami` route tells the client its connection id.
async fn server(stage: &str) -> wsgate::Server {
    with_whoami(WebSocketApi::new("Mgmt").stage(stage))
        .bind(any_port())
        .await
        .unwrap()
}

async fn connect_with_id(server: &wsgate::Server) -> (Client, String) {
    let (mut client, _) = try_connect(&server.url(), &[("User-Agent", "mgmt-test")])
        .await
        .unwrap();
    send_text(&mut client, r#"{"action":"whoami"}"#).await;
    let id = next_text(&mut client).await;
    (client, id)
}

#[tokio::test]
async fn aws_sdk_post_get_delete_and_gone() {
    for stage in ["$default", "prod"] {
        let server = server(stage).await;
        let sdk = sdk_client(&server, &server.management_endpoint());
        let (mut client, id) = connect_with_id(&server).await;

        sdk.post_to_connection()
            .connection_id(&id)
            .data(Blob::new("hello from the SDK"))
            .send()
            .await
            .unwrap();
        assert_eq!(next_text(&mut client).await, "hello from the SDK");

        sdk.post_to_connection()
            .connection_id(&id)
            .data(Blob::new(vec![0xffu8, 0x00, 0x01]))
            .send()
            .await
            .unwrap();
        match tokio::time::timeout(WAIT, client.next()).await.unwrap() {
            Some(Ok(Message::Binary(bytes))) => assert_eq!(&bytes[..], &[0xff, 0x00, 0x01]),
            other => panic!("expected a binary frame, got {other:?}"),
        }

        let info = sdk
            .get_connection()
            .connection_id(&id)
            .send()
            .await
            .unwrap();
        let identity = info.identity().unwrap();
        assert_eq!(identity.source_ip(), Some("127.0.0.1"));
        assert_eq!(identity.user_agent(), Some("mgmt-test"));
        let connected_at = info.connected_at().unwrap().secs();
        let now = chrono::Utc::now().timestamp();
        assert!(
            (now - connected_at).abs() < 60,
            "connectedAt {connected_at} vs now {now}"
        );
        assert!(
            info.last_active_at().unwrap().to_millis().unwrap()
                >= info.connected_at().unwrap().to_millis().unwrap()
        );

        sdk.delete_connection()
            .connection_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(next_close(&mut client).await.0, 1000);

        // Gone, as each operation's SDK error type says it.
        let mut gone = false;
        for _ in 0..50 {
            match sdk
                .post_to_connection()
                .connection_id(&id)
                .data(Blob::new("late"))
                .send()
                .await
            {
                Err(e) => {
                    assert!(matches!(
                        e.into_service_error(),
                        PostToConnectionError::GoneException(_)
                    ));
                    gone = true;
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        assert!(
            gone,
            "posting to a deleted connection must fail with GoneException"
        );
        let err = sdk
            .get_connection()
            .connection_id(&id)
            .send()
            .await
            .unwrap_err();
        assert!(matches!(
            err.into_service_error(),
            GetConnectionError::GoneException(_)
        ));
        let err = sdk
            .delete_connection()
            .connection_id(&id)
            .send()
            .await
            .unwrap_err();
        assert!(matches!(
            err.into_service_error(),
            DeleteConnectionError::GoneException(_)
        ));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn sdk_sees_payload_too_large_and_forbidden() {
    let server = server("prod").await;
    let sdk = sdk_client(&server, &server.management_endpoint());
    let (_client, id) = connect_with_id(&server).await;
    let err = sdk
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'a'; 128 * 1024 + 1]))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        PostToConnectionError::PayloadTooLargeException(_)
    ));
    sdk.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![b'a'; 128 * 1024]))
        .send()
        .await
        .unwrap();

    let wrong_stage = sdk_client(&server, &format!("http://{}/dev", server.local_addr()));
    let err = wrong_stage
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        PostToConnectionError::ForbiddenException(_)
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_chunked_body_states_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = WebSocketApi::new("Chunked")
        .insecure_dev(true)
        .bind(any_port())
        .await
        .unwrap();
    let _client = connect(&server.url()).await;
    let id = server.connections().ids().pop().unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let chunk = "a".repeat(64 * 1024);
    let mut request = format!(
        "POST /@connections/{id} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("PayloadTooLargeException"), "{response}");
    // The size of a chunked body is never known: the message gives the
    // limit, and no made-up size.
    assert!(
        response.contains("payload is larger than the 131072-byte limit"),
        "{response}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn raw_paths_encodings_and_bad_ids() {
    let server = server("$default").await;
    let (mut client, id) = connect_with_id(&server).await;
    let base = format!("http://{}", server.local_addr());
    let encoded_id = id.replace('=', "%3D");
    for (path, body) in [
        (format!("/$default/@connections/{id}"), "plain"),
        (
            format!("/%24default/%40connections/{encoded_id}"),
            "encoded",
        ),
        (
            format!("/$default//@connections/{encoded_id}"),
            "double slash",
        ),
        (format!("/@connections/{id}"), "no stage"),
    ] {
        let (status, _, _) = management(&server, "POST", &format!("{base}{path}"), body).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(next_text(&mut client).await, body);
    }

    let (status, headers, body) = management(
        &server,
        "GET",
        &format!("{base}/$default/@connections/{id}"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<_> = info.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["connectedAt", "identity", "lastActiveAt"]);
    assert!(info["connectedAt"].as_str().unwrap().ends_with('Z'));
    assert!(headers.contains_key("x-amzn-requestid"));

    for bad in ["nope", "%FF%FE", "a%2Fb", &"x".repeat(2000), "%00"] {
        let (status, headers, _) = management(
            &server,
            "POST",
            &format!("{base}/$default/@connections/{bad}"),
            "x",
        )
        .await;
        assert!(status == 410 || status == 403, "{bad}: {status}");
        assert!(headers.contains_key("x-amzn-errortype"), "{bad}");
    }
    let (status, headers, body) = management(
        &server,
        "POST",
        &format!("{base}/$default/@connections/{id}/extra"),
        "x",
    )
    .await;
    assert_eq!((status, body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    assert_eq!(headers["x-amzn-errortype"], "ForbiddenException");
    let (status, _, _) = management(
        &server,
        "PUT",
        &format!("{base}/$default/@connections/{id}"),
        "x",
    )
    .await;
    assert_eq!(status, 403);
    // The connection was never disturbed.
    let (status, _, _) = management(
        &server,
        "POST",
        &format!("{base}/$default/@connections/{id}"),
        "still here",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(next_text(&mut client).await, "still here");
    server.shutdown().await;
}

#[tokio::test]
async fn many_pushes_arrive_in_order() {
    let server = server("$default").await;
    let (mut client, id) = connect_with_id(&server).await;
    let connections = server.connections();
    let sender = tokio::spawn(async move {
        for i in 0..2000 {
            connections.post(&id, format!("{i}")).await.unwrap();
        }
    });
    for i in 0..2000 {
        assert_eq!(next_text(&mut client).await, format!("{i}"));
    }
    sender.await.unwrap();
    server.shutdown().await;
}
