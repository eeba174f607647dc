//! Route selection expressions and message bodies never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsgate::gateway::router::{DEFAULT_EXPRESSION, RouteSelector};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (expression, body) = text.split_once('\n').unwrap_or((DEFAULT_EXPRESSION, text));
    if let Ok(selector) = RouteSelector::parse(expression) {
        let _ = selector.evaluate(body);
    }
});
