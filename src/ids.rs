//! Identifiers shaped like API Gateway's: connection and request ids are
//! 16 characters of base64 ending in `=` (11 random bytes), the API id is
//! 10 lowercase alphanumerics.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use rand::Rng;

/// A fresh, unguessable id such as `L0SM9cOFvHcCIhw=`.
///
/// The URL-safe alphabet keeps ids free of `/` and `+`, so they can be put in
/// a management URL path as they are (AWS's ids use `-` and `_` as well).
pub fn new_id() -> String {
    let mut bytes = [0u8; 11];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE.encode(bytes)
}

/// A fresh id as events share it (a request id is written into an event
/// twice and read by its access log line).
pub fn new_shared_id() -> std::sync::Arc<str> {
    let mut bytes = [0u8; 11];
    rand::rng().fill_bytes(&mut bytes);
    let mut text = [0u8; 16];
    let written = URL_SAFE
        .encode_slice(bytes, &mut text)
        .expect("11 bytes are 16 characters of base64");
    std::str::from_utf8(&text[..written])
        .expect("base64 is ASCII")
        .into()
}

/// The first byte's top four bits in a clustered node's ids: ids of a
/// single node (fully random) carry it only by chance, and an id without
/// it is never sent to another node.
const CLUSTER_MARK: u8 = 0xA0;

/// A connection id owned by the cluster node holding `slot` (1..=4095):
/// the first 12 bits after the mark name the slot, the other 72 bits are
/// random, and the id has API Gateway's shape.
pub fn new_id_in_slot(slot: u16) -> String {
    debug_assert!((1..=0x0FFF).contains(&slot));
    let mut bytes = [0u8; 11];
    rand::rng().fill_bytes(&mut bytes[2..]);
    bytes[0] = CLUSTER_MARK | (slot >> 8) as u8;
    bytes[1] = slot as u8;
    URL_SAFE.encode(bytes)
}

/// The slot an id names, if it is shaped like a clustered node's id
/// (16 characters of URL-safe base64 carrying the mark and a slot);
/// `None` for anything else, forged or truncated.
pub fn slot_of(id: &str) -> Option<u16> {
    if id.len() != 16 {
        return None;
    }
    let bytes = URL_SAFE.decode(id).ok()?;
    if bytes.len() != 11 || bytes[0] & 0xF0 != CLUSTER_MARK {
        return None;
    }
    let slot = (u16::from(bytes[0] & 0x0F) << 8) | u16::from(bytes[1]);
    (slot != 0).then_some(slot)
}

/// The host name API Gateway gives an API: `<apiId>.execute-api.<region>
/// .amazonaws.com`.
pub fn execute_api_host(api_id: &str, region: &str) -> String {
    format!("{api_id}.execute-api.{region}.amazonaws.com")
}

/// A stable API id derived from the API's name, so the id (and every event
/// that carries it) survives restarts.
pub fn api_id_for(name: &str) -> String {
    // FNV-1a: small, stable across Rust versions (unlike `DefaultHasher`).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..10)
        .map(|_| {
            let c = ALPHABET[(hash % 36) as usize] as char;
            hash /= 36;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_look_like_api_gateway_ids() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = new_id();
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.ends_with('='), "{id}");
            assert!(
                id[..15]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{id}"
            );
            assert!(seen.insert(id), "ids must not repeat");
        }
    }

    #[test]
    fn clustered_ids_carry_their_slot() {
        for slot in [1, 2, 255, 256, 4095] {
            let id = new_id_in_slot(slot);
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.ends_with('='), "{id}");
            assert_eq!(slot_of(&id), Some(slot), "{id}");
        }
        assert_ne!(new_id_in_slot(7), new_id_in_slot(7));
    }

    #[test]
    fn forged_and_truncated_ids_name_no_slot() {
        let id = new_id_in_slot(42);
        assert_eq!(slot_of(&id[..15]), None);
        assert_eq!(slot_of(&format!("{id}A")), None);
        assert_eq!(slot_of("AAAAAAAAAAAAAAA="), None, "no mark");
        assert_eq!(slot_of("oAAAAAAAAAAAAAA="), None, "mark, slot 0");
        assert_eq!(slot_of("!!!!!!!!!!!!!!!="), None);
        assert_eq!(slot_of("L0SM9cOFvHcCIh+="), None, "standard alphabet");
        assert_eq!(slot_of(""), None);
    }

    #[test]
    fn api_id_is_stable_and_shaped() {
        let id = api_id_for("MyApi");
        assert_eq!(id, api_id_for("MyApi"));
        assert_ne!(id, api_id_for("OtherApi"));
        assert_eq!(id.len(), 10);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
