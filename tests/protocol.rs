//! RFC 6455 at the frame level: every violation a client can commit, by
//! section, gets the close code the RFC (and API Gateway) gives, and the
//! gateway stays up. Autobahn|Testsuite (Python 2 only) cannot run here;
//! these cases keep its frame-level checks.

mod common;

use common::frames::{frame, raw_client, raw_close_code};
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use wsgate::{Response, WebSocketApi, handler_fn};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// An echo API (two-way `$default`).
async fn echo_server() -> wsgate::Server {
    WebSocketApi::new("Rfc6455")
        .route_with(
            "$default",
            handler_fn(|event, _| async move {
                Ok(Response::ok().with_body(event.body.unwrap_or_default()))
            }),
            two_way(),
        )
        .bind(any_port())
        .await
        .unwrap()
}

/// Sends `frames` on a fresh connection and returns the close code the
/// gateway answers with.
async fn close_code_for(server: &wsgate::Server, frames: &[Vec<u8>]) -> u16 {
    let mut stream = raw_client(server).await;
    for bytes in frames {
        if stream.write_all(bytes).await.is_err() {
            break;
        }
    }
    raw_close_code(&mut stream).await
}

/// A frame header with a 64-bit length and no payload.
fn header_with_length(opcode: u8, length: u64) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, 0x80 | 127];
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

/// `frame` with the RSV bits `rsv` (0b100 = RSV1) set.
fn with_rsv(mut bytes: Vec<u8>, rsv: u8) -> Vec<u8> {
    bytes[0] |= rsv << 4;
    bytes
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

#[tokio::test]
async fn section_5_1_unmasked_client_frames_are_a_protocol_error() {
    let server = echo_server().await;
    assert_eq!(
        close_code_for(&server, &[vec![0x81, 0x02, b'h', b'i']]).await,
        1002
    );
    assert_eq!(close_code_for(&server, &[vec![0x89, 0x00]]).await, 1002);
    server.shutdown().await;
}

#[tokio::test]
async fn section_5_2_rsv_bits_without_an_extension_are_a_protocol_error() {
    let server = echo_server().await;
    for rsv in [0b100, 0b010, 0b001, 0b111] {
        let code = close_code_for(&server, &[with_rsv(frame(TEXT, true, b"rsv"), rsv)]).await;
        assert_eq!(code, 1002, "RSV bits {rsv:03b}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn section_5_2_reserved_opcodes_are_a_protocol_error() {
    let server = echo_server().await;
    for opcode in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let code = close_code_for(&server, &[frame(opcode, true, b"")]).await;
        assert_eq!(code, 1002, "opcode {opcode:#x}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn section_5_2_a_64_bit_length_with_the_top_bit_set_is_refused() {
    // 2^63 and above are not lengths (the most significant bit must be 0);
    // anything past the frame limit closes with 1009 before a byte is read.
    let server = echo_server().await;
    assert_eq!(
        close_code_for(&server, &[header_with_length(TEXT, 1 << 63)]).await,
        1009
    );
    assert_eq!(
        close_code_for(&server, &[header_with_length(TEXT, u64::MAX)]).await,
        1009
    );
    assert_eq!(
        close_code_for(&server, &[header_with_length(BINARY, 1 << 40)]).await,
        1009
    );
    server.shutdown().await;
}

#[tokio::test]
async fn section_5_4_fragments_must_be_in_order_and_not_interleaved() {
    let server = echo_server().await;
    // A continuation with no message started.
    assert_eq!(
        close_code_for(&server, &[frame(CONTINUATION, true, b"orphan")]).await,
        1002
    );
    // A new data frame while a fragmented message is open.
    let interleaved = [frame(TEXT, false, b"first "), frame(TEXT, true, b"second")];
    assert_eq!(close_code_for(&server, &interleaved).await, 1002);
    // Control frames may come between fragments; the message still arrives.
    let mut stream = raw_client(&server).await;
    for bytes in [
        frame(TEXT, false, b"hel"),
        frame(PING, true, b"mid"),
        frame(CONTINUATION, true, b"lo"),
    ] {
        stream.write_all(&bytes).await.unwrap();
    }
    let mut seen = Vec::new();
    while !seen.windows(5).any(|w| w == b"hello") {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before echoing the reassembled message");
        seen.extend_from_slice(&chunk[..n]);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn section_5_5_control_frames_are_short_and_never_fragmented() {
    let server = echo_server().await;
    assert_eq!(
        close_code_for(&server, &[frame(PING, true, &[b'p'; 126])]).await,
        1002
    );
    assert_eq!(
        close_code_for(&server, &[frame(PING, false, b"part")]).await,
        1002
    );
    assert_eq!(
        close_code_for(&server, &[frame(CLOSE, false, &close_payload(1000, b""))]).await,
        1002
    );
    server.shutdown().await;
}

#[tokio::test]
async fn section_5_5_1_a_close_payload_of_one_byte_is_a_protocol_error() {
    let server = echo_server().await;
    assert_eq!(
        close_code_for(&server, &[frame(CLOSE, true, &[0x03])]).await,
        1002
    );
    server.shutdown().await;
}

#[tokio::test]
async fn section_5_5_2_pings_get_pongs_and_a_flood_changes_nothing() {
    let server = echo_server().await;
    let mut client = connect(&server.url()).await;
    futures_util::SinkExt::send(&mut client, Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut client))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));

    // 20,000 pings as fast as they go, never reading the pongs.
    let mut stream = raw_client(&server).await;
    let ping = frame(PING, true, &[b'x'; 125]);
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 20_000)
        .collect();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.write_all(&flood)).await;
    // The gateway still serves everyone else.
    send_text(&mut client, "still here").await;
    assert_eq!(next_text(&mut client).await, "still here");
    server.shutdown().await;
}

#[tokio::test]
async fn section_7_4_invalid_close_codes_are_a_protocol_error() {
    let server = echo_server().await;
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let answered =
            close_code_for(&server, &[frame(CLOSE, true, &close_payload(code, b""))]).await;
        assert_eq!(answered, 1002, "close code {code}");
    }
    // Valid ones are echoed back, as the close handshake does.
    for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 4999] {
        let answered =
            close_code_for(&server, &[frame(CLOSE, true, &close_payload(code, b"bye"))]).await;
        assert_eq!(answered, code, "close code {code}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn section_8_1_invalid_utf8_closes_with_1007() {
    let server = echo_server().await;
    // In one frame; split across fragments; in a close reason.
    assert_eq!(
        close_code_for(
            &server,
            &[frame(TEXT, true, &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xff])]
        )
        .await,
        1007
    );
    let split = [
        frame(TEXT, false, &[0xce]),
        frame(CONTINUATION, true, &[0x41]),
    ];
    assert_eq!(close_code_for(&server, &split).await, 1007);
    // A 4-byte sequence cut between fragments is fine once completed.
    let mut stream = raw_client(&server).await;
    stream
        .write_all(&frame(TEXT, false, &[0xf0, 0x9f]))
        .await
        .unwrap();
    stream
        .write_all(&frame(CONTINUATION, true, &[0x98, 0x80]))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == [0xf0, 0x9f, 0x98, 0x80]) {
        let mut chunk = [0u8; 64];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed a valid message");
        seen.extend_from_slice(&chunk[..n]);
    }
    let reason = close_payload(1000, &[0xff, 0xfe]);
    assert_eq!(
        close_code_for(&server, &[frame(CLOSE, true, &reason)]).await,
        1007
    );
    server.shutdown().await;
}

#[tokio::test]
async fn after_every_violation_the_gateway_serves_new_clients() {
    let server = echo_server().await;
    for bytes in [
        vec![0x81, 0x02, b'h', b'i'],
        with_rsv(frame(TEXT, true, b"x"), 0b100),
        frame(0x3, true, b""),
        header_with_length(TEXT, u64::MAX),
        frame(PING, false, b""),
        frame(TEXT, true, &[0xff]),
    ] {
        let mut stream = raw_client(&server).await;
        let _ = stream.write_all(&bytes).await;
    }
    let mut client = connect(&server.url()).await;
    send_text(&mut client, "fine").await;
    assert_eq!(next_text(&mut client).await, "fine");
    server.shutdown().await;
}
