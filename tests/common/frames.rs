//! WebSocket frames written and read by hand, for what no well-behaved
//! client sends.

use super::WAIT;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens a WebSocket by hand, for frames no well-behaved client sends.
pub async fn raw_client(server: &wsgate::Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

/// A masked client frame.
pub fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [1u8, 2, 3, 4];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads server frames until a close frame; returns its code.
pub async fn raw_close_code(stream: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Parse what we have: unmasked server frames.
        let mut at = 0;
        while buf.len() >= at + 2 {
            let opcode = buf[at] & 0x0f;
            let mut len = (buf[at + 1] & 0x7f) as usize;
            let mut header = 2;
            if len == 126 {
                if buf.len() < at + 4 {
                    break;
                }
                len = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
                header = 4;
            }
            if buf.len() < at + header + len {
                break;
            }
            if opcode == 8 {
                return u16::from_be_bytes([buf[at + header], buf[at + header + 1]]);
            }
            at += header + len;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("no close frame")
            .unwrap();
        assert!(n > 0, "socket closed without a close frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}
