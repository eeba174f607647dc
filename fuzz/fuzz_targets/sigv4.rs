//! Signed requests from a hostile caller never panic: the request head
//! (Authorization header or presigned query) is parsed, checked and the
//! signature recomputed; policy patterns and authorizer replies likewise.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::SystemTime;
use wsgate::auth::authorizer::evaluate;
use wsgate::auth::keyring::Keyring;
use wsgate::auth::policy::{Policy, wildcard_match};
use wsgate::auth::{Authenticator, sigv4};
use wsgate::gateway::handshake::parse_head;

fuzz_target!(|data: &[u8]| {
    let keyring = Arc::new(Keyring::default());
    // Keys the input may name, so parsing gets as far as the signature.
    keyring.insert_user("AKIDEXAMPLE", "secret", "fuzz", Policy::allow_all());
    let _session = keyring.issue_session("fuzz-fn", Policy::allow_all());
    let auth = Authenticator::new("us-east-1", keyring);
    if let Ok(Some((head, len))) = parse_head(data) {
        let headers = head.header_pairs();
        let request = sigv4::Request {
            body: &data[len..],
            ..head.signed_request(&headers)
        };
        let _ = auth.authorize(&request, "execute-api:Invoke", "arn:x", SystemTime::now());
        if let Ok(claim) = sigv4::parse(&request) {
            // Any time, not only now: signing at extreme dates must not panic.
            let _ = sigv4::check_scope_and_time(&claim, "us-east-1", claim.time);
            let secret = sigv4::Secret {
                secret_access_key: "secret",
                session_token: claim.session_token.as_deref(),
            };
            let _ = sigv4::verify_signature(&request, &claim, &secret);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (pattern, subject) = text.split_once('\n').unwrap_or((text, text));
        let _ = wildcard_match(pattern, subject);
    }
    let _ = evaluate(data, "arn:aws:execute-api:us-east-1:000000000000:abc/prod/$connect");
});
