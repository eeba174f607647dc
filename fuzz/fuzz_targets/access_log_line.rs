//! `wsgate logs` reading stored lines back with a format: any format the
//! config accepts, any line from the file. Never a panic; what a format
//! wrote, it reads back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsgate::access_log::format::Format;

fuzz_target!(|data: &[u8]| {
    // The format, then 0xff, then the line.
    let mut fields = data.splitn(2, |b| *b == 0xff);
    let format = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let line = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let Ok(format) = Format::parse(&format) else {
        return;
    };
    if let Some(fields) = format.read(&line) {
        assert!(fields.values().all(|v| v.is_string() || v.is_i64()));
    }
});
