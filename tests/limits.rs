//! Limits, close codes and hostile frames, over real sockets.

mod common;

use common::frames::{frame, raw_client, raw_close_code};
use common::*;
use futures_util::SinkExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use wsgate::{BinaryMode, Limits, Response, WebSocketApi, handler_fn};

/// An API whose `$default` echoes (two-way) and whose `$disconnect`
/// reports each ending as `code reason` on a channel.
async fn server_with(
    limits: Limits,
    binary: BinaryMode,
) -> (
    wsgate::Server,
    tokio::sync::mpsc::UnboundedReceiver<(i64, String)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let server = WebSocketApi::new("Limits")
        .limits(limits)
        .binary(binary)
        .route_with(
            "$default",
            handler_fn(|event, _| async move {
                let body = event.body.unwrap_or_default();
                Ok(Response::ok().with_body(format!("{}:{body}", event.is_base64_encoded)))
            }),
            two_way(),
        )
        .route(
            "$disconnect",
            handler_fn(move |event, _| {
                let tx = tx.clone();
                async move {
                    let ctx = event.request_context;
                    let _ = tx.send((
                        ctx.disconnect_status_code.unwrap_or_default(),
                        ctx.disconnect_reason.unwrap_or_default(),
                    ));
                    Ok(Response::ok())
                }
            }),
        )
        .bind(any_port())
        .await
        .unwrap();
    (server, rx)
}

async fn disconnected(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(i64, String)>,
) -> (i64, String) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no $disconnect in time")
        .unwrap()
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let (server, mut ended) = server_with(Limits::default(), BinaryMode::Reject).await;
    let mut client = connect(&server.url()).await;
    send_text(&mut client, &"x".repeat(32 * 1024)).await;
    assert!(next_text(&mut client).await.starts_with("false:xxx"));
    send_text(&mut client, &"x".repeat(32 * 1024 + 1)).await;
    assert_eq!(next_close(&mut client).await.0, 1009);
    assert_eq!(
        disconnected(&mut ended).await,
        (1009, "Message too big".into())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_message_in_small_frames_closes_with_1009() {
    let (server, mut ended) = server_with(Limits::default(), BinaryMode::Reject).await;
    let chunk = vec![b'a'; 30 * 1024];
    // 120 KiB in four frames is accepted...
    let mut stream = raw_client(&server).await;
    for i in 0..4 {
        let opcode = if i == 0 { 1 } else { 0 };
        stream
            .write_all(&frame(opcode, i == 3, &chunk))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while !seen.windows(6).any(|w| w == b"false:") {
        let mut chunk = [0u8; 65536];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("no echo")
            .unwrap();
        assert!(n > 0, "closed before echoing the reassembled message");
        seen.extend_from_slice(&chunk[..n]);
    }
    stream
        .write_all(&frame(8, true, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(disconnected(&mut ended).await.0, 1000);

    // ...135 KiB in five frames is not.
    let mut stream = raw_client(&server).await;
    for i in 0..5 {
        let opcode = if i == 0 { 1 } else { 0 };
        if stream
            .write_all(&frame(opcode, i == 4, &chunk[..27 * 1024]))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(&frame(0, true, &chunk[..1024])).await;
    assert_eq!(raw_close_code(&mut stream).await, 1009);
    assert_eq!(disconnected(&mut ended).await.0, 1009);
    server.shutdown().await;
}

#[tokio::test]
async fn truncated_frame_then_eof_is_an_abnormal_close_and_the_gateway_stays_up() {
    let (server, mut ended) = server_with(Limits::default(), BinaryMode::Reject).await;
    let mut stream = raw_client(&server).await;
    let full = frame(1, true, &[b'z'; 100]);
    stream.write_all(&full[..20]).await.unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);
    assert_eq!(disconnected(&mut ended).await.0, 1006);
    let mut client = connect(&server.url()).await;
    send_text(&mut client, "alive").await;
    assert_eq!(next_text(&mut client).await, "false:alive");
    server.shutdown().await;
}

#[tokio::test]
async fn binary_frames_close_with_1003_unless_base64_is_on() {
    let (server, mut ended) = server_with(Limits::default(), BinaryMode::Reject).await;
    let mut client = connect(&server.url()).await;
    client
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    assert_eq!(next_close(&mut client).await.0, 1003);
    assert_eq!(disconnected(&mut ended).await.0, 1003);
    server.shutdown().await;

    let (server, _ended) = server_with(Limits::default(), BinaryMode::Base64).await;
    let mut client = connect(&server.url()).await;
    client
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, "true:AJ+Slg==");
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_close_with_1001() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(1000),
        ..Limits::default()
    };
    let (server, mut ended) = server_with(limits, BinaryMode::Reject).await;
    let mut client = connect(&server.url()).await;
    // Messages keep it open past the idle timeout...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send_text(&mut client, "tick").await;
        assert_eq!(next_text(&mut client).await, "false:tick");
    }
    // ...silence closes it.
    assert_eq!(next_close(&mut client).await, (1001, "Going away".into()));
    assert_eq!(disconnected(&mut ended).await, (1001, "Going away".into()));
    server.shutdown().await;
}

/// Messages the server pushes keep a connection open too, as on API
/// Gateway (services built on it push a keep-alive every 9.5 minutes to
/// hold idle clients); when they stop, the idle timeout closes it.
#[tokio::test]
async fn server_pushes_keep_a_connection_open() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(1000),
        ..Limits::default()
    };
    let (server, mut ended) = server_with(limits, BinaryMode::Reject).await;
    let mut client = connect(&server.url()).await;
    let connections = server.connections();
    let id = connections.ids().pop().unwrap();
    let started = std::time::Instant::now();
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        connections
            .post(&id, format!("keep-alive {i}"))
            .await
            .unwrap();
        assert_eq!(next_text(&mut client).await, format!("keep-alive {i}"));
    }
    assert!(started.elapsed() > Duration::from_millis(1900));
    assert_eq!(next_close(&mut client).await, (1001, "Going away".into()));
    assert_eq!(disconnected(&mut ended).await, (1001, "Going away".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn connections_close_with_1001_after_max_duration() {
    let limits = Limits {
        max_duration: Duration::from_millis(700),
        ..Limits::default()
    };
    let (server, mut ended) = server_with(limits, BinaryMode::Reject).await;
    let mut client = connect(&server.url()).await;
    let started = std::time::Instant::now();
    let code = loop {
        send_text(&mut client, "busy").await;
        match tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut client))
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(_))) => tokio::time::sleep(Duration::from_millis(50)).await,
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            other => panic!("unexpected {other:?}"),
        }
        assert!(started.elapsed() < WAIT);
    };
    assert_eq!(code, 1001);
    assert_eq!(disconnected(&mut ended).await.0, 1001);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_with_1001_and_runs_every_disconnect() {
    let (server, mut ended) = server_with(Limits::default(), BinaryMode::Reject).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect(&server.url()).await);
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| tokio::spawn(async move { next_close(&mut client).await }))
        .collect();
    server.shutdown().await;
    for reader in readers {
        assert_eq!(reader.await.unwrap().0, 1001);
    }
    let mut codes = Vec::new();
    while let Ok(ending) = ended.try_recv() {
        codes.push(ending.0);
    }
    assert_eq!(
        codes,
        vec![1001; 20],
        "every $disconnect ran before shutdown returned"
    );
}

#[tokio::test]
async fn stage_throttling_refuses_messages_and_management_calls_over_the_rate() {
    let limits = wsgate::Limits {
        throttle: Some(wsgate::gateway::throttle::ThrottleSettings {
            burst_limit: 4,
            rate_limit: 0.5,
        }),
        ..Default::default()
    };
    let server = wsgate::WebSocketApi::new("Throttled")
        .limits(limits)
        .route_with(
            "$default",
            wsgate::handler_fn(|event, _| async move {
                Ok(wsgate::Response::ok().with_body(event.body.unwrap_or_default()))
            }),
            two_way(),
        )
        .bind(any_port())
        .await
        .unwrap();
    // The upgrade takes one token; three messages pass, the rest are refused.
    let mut client = connect(&server.url()).await;
    for i in 0..5 {
        send_text(&mut client, &format!("m{i}")).await;
    }
    let mut replies = Vec::new();
    for _ in 0..5 {
        replies.push(next_text(&mut client).await);
    }
    let passed = replies.iter().filter(|r| r.starts_with('m')).count();
    let refused: Vec<&String> = replies.iter().filter(|r| !r.starts_with('m')).collect();
    assert_eq!(passed, 3, "{replies:?}");
    assert_eq!(refused.len(), 2, "{replies:?}");
    let error: serde_json::Value = serde_json::from_str(refused[0]).unwrap();
    assert_eq!(error["message"], "Too many requests");
    let url = format!("{}/@connections/x", server.management_endpoint());
    let (status, headers, body) = management(&server, "POST", &url, "x").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["x-amzn-errortype"], "LimitExceededException");
    assert_eq!(
        try_connect(&server.url(), &[]).await.err(),
        Some(429),
        "upgrades are throttled too"
    );
    server.shutdown().await;
}
