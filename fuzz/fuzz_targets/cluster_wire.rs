//! What a cluster node reads from NATS and from ids: a call's headers and
//! payload as another node (or anyone on NATS) sent them, and the slot an
//! id names. Never a panic; a call either decodes to something its
//! checks allow or is refused.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wsgate::cluster::wire::{self, Decoded};

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xff: call, connection id, binary flag, payload.
    let mut fields = data.splitn(4, |b| *b == 0xff);
    let text = |f: Option<&[u8]>| f.map(|f| String::from_utf8_lossy(f).to_string());
    let call = text(fields.next());
    let connection = text(fields.next());
    let binary = fields.next().filter(|f| !f.is_empty()).map(|_| "1".to_string());
    let payload = Bytes::copy_from_slice(fields.next().unwrap_or_default());
    let header = |name: &str| match name {
        wire::CALL => call.clone(),
        wire::CONNECTION => connection.clone(),
        wire::BINARY => binary.clone(),
        _ => None,
    };
    if let Ok((id, decoded)) = wire::decode_call(header, &payload, 4096) {
        assert!(id.len() <= 128);
        if let Decoded::Post(message) = decoded {
            assert!(message.len() <= 4096);
        }
        let _ = wsgate::ids::slot_of(&id);
    }
    if let Some(id) = &connection
        && let Some(slot) = wsgate::ids::slot_of(id)
    {
        assert!((1..=4095).contains(&slot));
    }
});
