//! Handler replies are hostile: any bytes give a response or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = wsgate::integrations::parse_proxy_response(data) {
        assert!((200..=599).contains(&response.status_code));
    }
});
