//! Requests nobody signed, or signed with a key they do not hold, cannot
//! make the gateway hold their bodies: the signature's head is checked
//! before the body is read, bodies have a deadline, all unverified bodies
//! share one budget, and the memory comes back once they are gone.

mod common;

use common::serve::{Serve, write_config};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A POST head for `@connections/<id>` declaring a full-size body, signed
/// by `key_id` with a made-up signature (or unsigned).
fn post_head(host: &str, key_id: Option<&str>, length: Option<usize>) -> String {
    let now = chrono::Utc::now();
    let mut head = format!("POST /@connections/AAAAAAAAAAAAAAA= HTTP/1.1\r\nHost: {host}\r\n");
    if let Some(key_id) = key_id {
        head.push_str(&format!(
            "X-Amz-Date: {}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={key_id}/{}/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature={}\r\n",
            now.format("%Y%m%dT%H%M%SZ"),
            now.format("%Y%m%d"),
            "0".repeat(64)
        ));
    }
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    head
}

/// Reads the status line of a response (or `None` if nothing came).
async fn status_of(stream: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut buf = vec![0u8; 1024];
    let mut read = 0;
    let deadline = Instant::now() + within;
    while read < 12 {
        let n = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf[read..]))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        read += n;
    }
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}

async fn served(dir: &std::path::Path) -> Serve {
    let config = write_config(dir, "name = \"Bodies\"\n");
    Serve::start(&config, &[])
}

fn host(serve: &Serve) -> String {
    serve
        .url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_unsigned_or_unknown_key_is_refused_before_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let serve = served(dir.path()).await;
    let host = host(&serve);
    for (key_id, expected_type) in [
        (None, "MissingAuthenticationTokenException"),
        (Some("AKIAUNKNOWNUNKNOWN00"), "UnrecognizedClientException"),
    ] {
        let mut stream = TcpStream::connect(&host).await.unwrap();
        stream
            .write_all(post_head(&host, key_id, Some(128 * 1024)).as_bytes())
            .await
            .unwrap();
        // Not a byte of the body is sent: the answer must not wait for it.
        let mut response = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut response))
            .await
            .expect("refused before the body arrived")
            .unwrap();
        let text = String::from_utf8_lossy(&response[..n]);
        assert!(text.starts_with("HTTP/1.1 403"), "{text}");
        assert!(text.contains(expected_type), "{text}");
    }
}

#[tokio::test]
async fn a_body_that_never_completes_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let serve = served(dir.path()).await;
    let host = host(&serve);
    let key_id = serve.key.as_ref().unwrap().access_key_id.clone();
    // A known key id with a forged signature passes the head checks; its
    // body (chunked, one chunk of 100 bytes, never finished) is timed out.
    let mut stream = TcpStream::connect(&host).await.unwrap();
    let mut request = post_head(&host, Some(&key_id), None);
    request.push_str(&format!("64\r\n{}\r\n", "x".repeat(100)));
    stream.write_all(request.as_bytes()).await.unwrap();
    let started = Instant::now();
    let status = status_of(&mut stream, Duration::from_secs(20)).await;
    assert_eq!(status, Some(408));
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn slow_bodies_cannot_pin_memory_and_it_comes_back() {
    const ATTACKERS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let serve = served(dir.path()).await;
    let host = host(&serve);
    let key_id = serve.key.as_ref().unwrap().access_key_id.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = serve.rss();

    // Half unsigned, half with the known key id and a forged signature;
    // each sends all but the last byte of a 128 KiB body, then stalls.
    let mut held = Vec::new();
    let mut refused = 0;
    for i in 0..ATTACKERS {
        let mut stream = TcpStream::connect(&host).await.unwrap();
        let key = (i % 2 == 1).then_some(key_id.as_str());
        let head = post_head(&host, key, Some(128 * 1024));
        let mut request = head.into_bytes();
        request.extend(std::iter::repeat_n(b'x', 128 * 1024 - 1));
        // The server may answer (403, 429) and close before taking it all.
        if tokio::time::timeout(Duration::from_millis(200), stream.write_all(&request))
            .await
            .is_ok_and(|r| r.is_err())
        {
            refused += 1;
        }
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peak = serve.rss();
    eprintln!(
        "baseline {} MB, with {ATTACKERS} slow bodies {} MB ({refused} refused while sending)",
        baseline >> 20,
        peak >> 20
    );
    // The unverified-body budget is 16 MiB; connections themselves cost
    // a few KiB each.
    assert!(
        peak < baseline + 64 * 1024 * 1024,
        "{ATTACKERS} slow bodies took RSS from {} MB to {} MB",
        baseline >> 20,
        peak >> 20
    );

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut now = serve.rss();
    while now > baseline + 16 * 1024 * 1024 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        now = serve.rss();
    }
    assert!(
        now <= baseline + 16 * 1024 * 1024,
        "memory did not come back: {} MB after the attack, {} MB before",
        now >> 20,
        baseline >> 20
    );
}
