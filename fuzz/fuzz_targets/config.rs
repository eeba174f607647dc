//! Any config text gives a config or a clear error, never a panic; the
//! same text as an access log format, and as `wsgate logs` arguments and
//! log lines, likewise.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsgate::access_log::format::Format;
use wsgate::access_log::reader;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(error) = wsgate::config::parse(std::path::Path::new("wsgate.toml"), text) {
            assert!(!error.problems.is_empty());
            let _ = error.to_string();
        }
        if let Ok(format) = Format::parse(text) {
            let line = format.render(&wsgate::access_log::Record::default());
            assert!(!line.contains('\n'), "one record, one line");
        }
        let _ = reader::parse_status(text);
        let _ = reader::parse_since(text);
        if let Ok(line) = serde_json::from_str::<serde_json::Value>(text) {
            let _ = reader::human(&line, true);
            let _ = reader::Filter {
                status: Some(reader::StatusFilter::Class(5)),
                route: Some("r".into()),
                ..Default::default()
            }
            .matches(&line);
        }
    }
});
