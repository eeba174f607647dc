//! Upgrade request heads and paths from a hostile client never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsgate::gateway::handshake::parse_head;
use wsgate::gateway::paths::classify;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((head, len))) = parse_head(data) {
        assert!(len <= data.len());
        let _ = head.wants_websocket();
        let _ = head.query();
        for stage in ["$default", "prod"] {
            let _ = classify(head.path(), stage);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = classify(text, "$default");
    }
});
