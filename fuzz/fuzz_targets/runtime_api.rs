//! Requests from a hostile runtime to the Lambda Runtime API never panic:
//! any method, path and body, against an API with one invocation queued
//! and one in flight. The first line of the input is `METHOD PATH`, the
//! rest the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let (method, path) = line.split_once(' ').unwrap_or(("GET", &line));
    let body = bytes::Bytes::copy_from_slice(body);
    let status = runtime().block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            wsgate::integrations::function::fuzz_request(method, path, body),
        )
        .await
    });
    if let Ok(status) = status {
        assert!((200..600).contains(&status));
    }
});
