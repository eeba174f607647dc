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
