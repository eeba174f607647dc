//! Any config text gives a config or a clear error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(error) = wsgate::config::parse(std::path::Path::new("wsgate.toml"), text) {
            assert!(!error.problems.is_empty());
            let _ = error.to_string();
        }
    }
});
