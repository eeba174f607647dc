//! The upgrade, `$connect` and `$disconnect`, and the events handlers get.

mod common;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use wsgate::WebSocketApi;

async fn api_with(backend: &Backend, routes: &[&str], extra: &str) -> wsgate::Server {
    let mut config = format!("name = \"Events\"\n{extra}\n[routes]\n");
    for key in routes {
        config.push_str(&format!(
            "\"{key}\" = {{ url = \"{}\" }}\n",
            backend.url(&format!("/{key}"))
        ));
    }
    api_from_toml(&config).bind(any_port()).await.unwrap()
}

#[tokio::test]
async fn every_event_field_is_as_api_gateway_sends_it() {
    let mut backend = Backend::start(|_, _| Reply::ok()).await;
    let server = api_with(
        &backend,
        &["$connect", "$disconnect", "$default"],
        "stage = \"prod\"",
    )
    .await;
    let url = format!("{}?token=abc&room=1&room=2", server.url());
    let (mut client, _) = try_connect(
        &url,
        &[("User-Agent", "wsgate-test/1"), ("X-Custom-Header", "v")],
    )
    .await
    .unwrap();

    let connect = backend.event_for("$connect").await;
    let ctx = &connect["requestContext"];
    assert_eq!(ctx["eventType"], "CONNECT");
    assert_eq!(ctx["stage"], "prod");
    assert_eq!(ctx["messageDirection"], "IN");
    assert_eq!(ctx["apiId"], server.api_id());
    assert_eq!(ctx["extendedRequestId"], ctx["requestId"]);
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["userAgent"], "wsgate-test/1");
    assert_eq!(ctx["domainName"], server.local_addr().to_string());
    assert!(ctx.get("messageId").is_none());
    let time = ctx["requestTime"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S +0000").is_ok(),
        "{time}"
    );
    let connected_at = ctx["connectedAt"].as_i64().unwrap();
    assert!(ctx["requestTimeEpoch"].as_i64().unwrap() >= connected_at);
    let connection_id = ctx["connectionId"].as_str().unwrap().to_string();
    assert_eq!(connection_id.len(), 16);
    assert!(connection_id.ends_with('='));
    // Client headers in the client's spelling (tungstenite writes its own
    // headers canonically and ours lowercased), without Connection/Upgrade.
    let headers = connect["headers"].as_object().unwrap();
    assert_eq!(headers["x-custom-header"], "v");
    assert_eq!(headers["user-agent"], "wsgate-test/1");
    assert_eq!(headers["Sec-WebSocket-Version"], "13");
    assert!(headers.contains_key("Sec-WebSocket-Key"));
    assert_eq!(headers["X-Forwarded-For"], "127.0.0.1");
    assert!(
        !headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("upgrade"))
    );
    assert_eq!(
        connect["multiValueHeaders"]["x-custom-header"],
        json!(["v"])
    );
    assert_eq!(
        connect["queryStringParameters"],
        json!({ "token": "abc", "room": "2" })
    );
    assert_eq!(
        connect["multiValueQueryStringParameters"]["room"],
        json!(["1", "2"])
    );
    assert_eq!(connect["isBase64Encoded"], false);

    client
        .send(Message::text(r#"{"action":"hi"}"#))
        .await
        .unwrap();
    let message = backend.event_for("$default").await;
    let ctx = &message["requestContext"];
    assert_eq!(ctx["eventType"], "MESSAGE");
    assert_eq!(ctx["routeKey"], "$default");
    assert_eq!(ctx["connectionId"], connection_id.as_str());
    assert_eq!(ctx["connectedAt"], connected_at);
    assert_eq!(ctx["messageId"].as_str().unwrap().len(), 16);
    assert_ne!(ctx["requestId"], connect["requestContext"]["requestId"]);
    assert_eq!(message["body"], r#"{"action":"hi"}"#);
    assert_eq!(message["isBase64Encoded"], false);
    assert!(message.get("headers").is_none());

    client
        .send(Message::Close(Some(CloseFrame {
            code: 4001.into(),
            reason: "bye now".into(),
        })))
        .await
        .unwrap();
    let disconnect = backend.event_for("$disconnect").await;
    let ctx = &disconnect["requestContext"];
    assert_eq!(ctx["eventType"], "DISCONNECT");
    assert_eq!(ctx["disconnectStatusCode"], 4001);
    assert_eq!(ctx["disconnectReason"], "bye now");
    assert_eq!(ctx["connectionId"], connection_id.as_str());
    assert_eq!(
        disconnect["headers"]["Host"],
        server.local_addr().to_string()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn close_without_code_reports_1005_and_dropped_socket_1006() {
    let mut backend = Backend::start(|_, _| Reply::ok()).await;
    let server = api_with(&backend, &["$disconnect"], "").await;

    let mut client = connect(&server.url()).await;
    client.send(Message::Close(None)).await.unwrap();
    let event = backend.event_for("$disconnect").await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1005);
    assert_eq!(
        event["requestContext"]["disconnectReason"],
        "Client-side close frame status not set"
    );

    let client = connect(&server.url()).await;
    drop(client);
    let event = backend.event_for("$disconnect").await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1006);
    server.shutdown().await;
}

#[tokio::test]
async fn delete_connection_reports_what_api_gateway_logs() {
    let mut backend = Backend::start(|_, _| Reply::ok()).await;
    let server = api_with(&backend, &["$disconnect"], "").await;
    let mut client = connect(&server.url()).await;
    let id = server.connections().ids().into_iter().next().unwrap();
    server.connections().delete(&id).await.unwrap();
    // The client takes the close as any client does: it echoes the code.
    while let Some(Ok(_)) = futures_util::StreamExt::next(&mut client).await {}
    let event = backend.event_for("$disconnect").await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1000);
    assert_eq!(
        event["requestContext"]["disconnectReason"],
        "Connection Closed Normally"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn connect_handler_decides_the_handshake() {
    let backend = Backend::start(|_, event| {
        match event["queryStringParameters"]["mode"].as_str() {
            Some("deny") => Reply::json(json!({ "statusCode": 401, "body": "go away" })),
            Some("crash") => Reply { status: 500, body: "".into(), delay: Duration::ZERO },
            Some("slow") => Reply { status: 200, body: "{}".into(), delay: Duration::from_secs(2) },
            Some("protocol") => Reply::json(json!({
                "statusCode": 200,
                "headers": { "Sec-WebSocket-Protocol": "chat", "X-Bad\r\nInjected": "x", "Connection": "close" }
            })),
            _ => Reply::ok(),
        }
    })
    .await;
    let config = format!(
        "name = \"C\"\n[routes]\n\"$connect\" = {{ url = \"{}\", timeout = \"500 ms\" }}\n",
        backend.url("/connect")
    );
    let server = api_from_toml(&config).bind(any_port()).await.unwrap();
    let url = server.url();

    assert_eq!(
        try_connect(&format!("{url}?mode=deny"), &[]).await.err(),
        Some(401)
    );
    assert_eq!(
        try_connect(&format!("{url}?mode=crash"), &[]).await.err(),
        Some(502)
    );
    assert_eq!(
        try_connect(&format!("{url}?mode=slow"), &[]).await.err(),
        Some(504)
    );
    let (_client, response) = try_connect(
        &format!("{url}?mode=protocol"),
        &[("Sec-WebSocket-Protocol", "chat")],
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert!(connect(&url).await.close(None).await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn push_while_connect_runs_is_gone() {
    let mut backend = Backend::start(|_, _| Reply {
        status: 200,
        body: "{}".into(),
        delay: Duration::from_millis(800),
    })
    .await;
    let server = api_with(&backend, &["$connect"], "").await;
    let url = server.url();
    let connecting = tokio::spawn(async move { connect(&url).await });
    let event = backend.event_for("$connect").await;
    let id = event["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let endpoint = format!("{}/@connections/{id}", server.management_endpoint());
    let (status, headers, _) = management(&server, "POST", &endpoint, "early").await;
    assert_eq!(status, 410);
    assert_eq!(headers["x-amzn-errortype"], "GoneException");
    let mut client = connecting.await.unwrap();
    let (status, _, _) = management(&server, "POST", &endpoint, "now").await;
    assert_eq!(status, 200);
    assert_eq!(next_text(&mut client).await, "now");
    server.shutdown().await;
}

async fn raw_request(server: &wsgate::Server, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).to_string()
}

#[tokio::test]
async fn plain_http_and_malformed_upgrades_are_refused_clearly() {
    let server = WebSocketApi::new("T")
        .stage("prod")
        .bind(any_port())
        .await
        .unwrap();
    let plain = raw_request(
        &server,
        "GET /prod HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
    let wrong_stage = raw_request(
        &server,
        "GET /dev HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(wrong_stage.starts_with("HTTP/1.1 403"), "{wrong_stage}");
    assert!(
        wrong_stage.contains(r#"{"message":"Forbidden"}"#),
        "{wrong_stage}"
    );

    let upgrade = "GET /prod HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    for (request, status) in [
        (upgrade.replace("Version: 13", "Version: 7"), "426"),
        (upgrade.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!"), "400"),
        (
            upgrade.replace("Connection: Upgrade", "Connection: close"),
            "400",
        ),
        (upgrade.replace("GET", "PUT"), "400"),
        ("GET /prod HTTP/1.1\r\nHost x\r\n\r\n".to_string(), "400"),
        (
            format!("GET /prod HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000)),
            "431",
        ),
        ("\u{0}\u{1}garbage\r\n\r\n".to_string(), "400"),
    ] {
        let response = raw_request(&server, &request).await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:.60}: {response}"
        );
    }
    // A valid upgrade still works afterwards.
    let ok = raw_request(&server, upgrade).await;
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
    assert!(
        ok.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{ok}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn thousands_of_connects_and_disconnects_leave_nothing_behind() {
    let server = WebSocketApi::new("T").bind(any_port()).await.unwrap();
    let url = server.url();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..250 {
                let mut client = connect(&url).await;
                if i % 2 == 0 {
                    client.close(None).await.unwrap();
                } else {
                    drop(client);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Every connection is unregistered once its socket is gone.
    let connections = server.connections();
    for _ in 0..100 {
        if connections.count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connections.count(), 0);
    let mut client = connect(&url).await;
    client.send(Message::text("still up")).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn stage_endpoint_and_root_for_default_stage() {
    let server = WebSocketApi::new("T").bind(any_port()).await.unwrap();
    assert!(server.url().ends_with("/$default"));
    connect(&server.url()).await;
    connect(&format!("ws://{}/", server.local_addr())).await;
    connect(&format!("ws://{}/%24default", server.local_addr())).await;
    assert_eq!(
        try_connect(&format!("ws://{}/other", server.local_addr()), &[])
            .await
            .err(),
        Some(403)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn delete_connection_runs_disconnect_once() {
    let mut backend = Backend::start(|_, _| Reply::ok()).await;
    let server = api_with(&backend, &["$connect", "$disconnect"], "").await;
    let mut client = connect(&server.url()).await;
    let id = backend.event_for("$connect").await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let endpoint = format!("{}/@connections/{id}", server.management_endpoint());
    let (status, _, _) = management(&server, "DELETE", &endpoint, "").await;
    assert_eq!(status, 204);
    assert_eq!(next_close(&mut client).await.0, 1000);
    let event = backend.event_for("$disconnect").await;
    assert_eq!(event["requestContext"]["connectionId"], id.as_str());
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1000);
    // Exactly once: no second $disconnect for this connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let disconnects = backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, e)| e["requestContext"]["routeKey"] == "$disconnect")
        .count();
    assert_eq!(disconnects, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_absolute_form_target_upgrades() {
    // RFC 9112 section 3.2.2: servers accept absolute-form targets; the
    // target's authority is the Host.
    let server = WebSocketApi::new("T").bind(any_port()).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "GET http://{}/$default HTTP/1.1\r\nHost: ignored\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                server.local_addr()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, stream.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    server.shutdown().await;
}
