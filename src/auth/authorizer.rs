//! Lambda REQUEST authorizers for `$connect`: API Gateway's event in, an
//! IAM policy out. As API Gateway answers (its Lambda authorizer guide):
//! Allow on the method ARN accepts the connection; Deny or no matching
//! statement refuses it with 403; an authorizer that fails with the error
//! "Unauthorized", or a missing identity source (checked before it runs),
//! with 401; any other failure (an error, a crash, a timeout, a reply that
//! is not a policy) with 500.

use super::policy::{INVOKE, wildcard_match, wildcard_match_ignore_case};
use crate::config::IdentitySource;
use crate::events::{AuthorizerContext, Event, RequestContext};
use crate::integrations::{Integration, IntegrationError};
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// One configured authorizer.
pub struct Authorizer {
    pub name: String,
    pub integration: Arc<dyn Integration>,
    pub identity_sources: Vec<IdentitySource>,
    pub timeout: Duration,
}

/// The authorizer's verdict on one connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accepted; the context every event of the connection carries.
    Allow(AuthorizerContext),
    /// 401: an identity source is missing, or the authorizer failed with
    /// the error "Unauthorized".
    Unauthorized,
    /// 403: the policy denies it (the reason is logged).
    Forbidden(String),
    /// 500: the authorizer failed, timed out or gave a reply that is not a
    /// policy (the reason is logged).
    Failed(String),
}

/// API Gateway's REQUEST authorizer event for a WebSocket `$connect`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    method_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<&'a IndexMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_headers: Option<&'a IndexMap<String, Vec<String>>>,
    /// Always present, as in AWS's example payload: `{}` with no query
    /// (unlike the `$connect` event, which omits them).
    #[serde(serialize_with = "empty_when_none")]
    query_string_parameters: Option<&'a IndexMap<String, String>>,
    #[serde(serialize_with = "empty_when_none")]
    multi_value_query_string_parameters: Option<&'a IndexMap<String, Vec<String>>>,
    stage_variables: serde_json::Map<String, Value>,
    request_context: &'a RequestContext,
}

fn empty_when_none<S: serde::Serializer, T: Serialize>(
    map: &Option<&IndexMap<String, T>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match map {
        Some(map) => map.serialize(serializer),
        None => serde_json::Map::new().serialize(serializer),
    }
}

impl Authorizer {
    /// Runs the authorizer for the `$connect` event `connect`.
    pub async fn authorize(&self, method_arn: &str, connect: &Event) -> Verdict {
        if !self.identity_present(connect) {
            return Verdict::Unauthorized;
        }
        let event = RequestEvent {
            kind: "REQUEST",
            method_arn,
            headers: connect.headers.as_deref(),
            multi_value_headers: connect.multi_value_headers.as_deref(),
            query_string_parameters: connect.query_string_parameters.as_deref(),
            multi_value_query_string_parameters: connect
                .multi_value_query_string_parameters
                .as_deref(),
            stage_variables: serde_json::Map::new(),
            request_context: &connect.request_context,
        };
        let payload = serde_json::to_vec(&event).expect("authorizer events serialize");
        let started = std::time::Instant::now();
        let reply = match tokio::time::timeout(
            self.timeout,
            self.integration
                .invoke_json(payload.into(), connect.request_id()),
        )
        .await
        {
            Ok(Ok(reply)) => reply,
            // Node's `throw new Error("Unauthorized")` and Python's
            // `raise Exception("Unauthorized")` both report this message.
            Ok(Err(IntegrationError::Handler { message, .. })) if message == "Unauthorized" => {
                return Verdict::Unauthorized;
            }
            Ok(Err(e)) => return Verdict::Failed(format!("authorizer failed: {e}")),
            Err(_) => {
                return Verdict::Failed(format!("authorizer timed out after {:?}", self.timeout));
            }
        };
        let mut verdict = evaluate(&reply, method_arn);
        if let Verdict::Allow(context) = &mut verdict {
            context.insert(
                "integrationLatency".into(),
                Value::from(started.elapsed().as_millis() as u64),
            );
        }
        verdict
    }

    fn identity_present(&self, connect: &Event) -> bool {
        self.identity_sources.iter().all(|source| match source {
            IdentitySource::Header(name) => connect.headers.as_ref().is_some_and(|headers| {
                headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
            }),
            IdentitySource::QueryString(name) => connect
                .query_string_parameters
                .as_ref()
                .is_some_and(|query| query.get(name).is_some_and(|v| !v.is_empty())),
        })
    }
}

/// Reads an authorizer's reply: `{principalId, policyDocument, context}`.
/// An explicit Deny wins over Allow, as in IAM.
pub fn evaluate(reply: &[u8], method_arn: &str) -> Verdict {
    let forbidden = |why: &str| Verdict::Failed(format!("authorizer reply {why}"));
    let Ok(Value::Object(reply)) = serde_json::from_slice::<Value>(reply) else {
        return forbidden("is not a JSON object");
    };
    let Some(Value::String(principal_id)) = reply.get("principalId") else {
        return forbidden("has no string principalId");
    };
    let Some(statements) = reply
        .get("policyDocument")
        .and_then(|doc| doc.get("Statement"))
    else {
        return forbidden("has no policyDocument.Statement");
    };
    let statements: Vec<&Value> = match statements {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut allowed = false;
    for statement in statements {
        let strings = |key: &str| -> Option<Vec<&str>> {
            match statement.get(key)? {
                Value::String(s) => Some(vec![s.as_str()]),
                Value::Array(items) => items.iter().map(Value::as_str).collect(),
                _ => None,
            }
        };
        let (Some(effect), Some(actions), Some(resources)) = (
            statement.get("Effect").and_then(Value::as_str),
            strings("Action"),
            strings("Resource"),
        ) else {
            return forbidden("has a statement without Effect, Action or Resource");
        };
        let applies = actions
            .iter()
            .any(|a| wildcard_match_ignore_case(a, INVOKE))
            && resources.iter().any(|r| wildcard_match(r, method_arn));
        match (effect, applies) {
            ("Deny", true) => return Verdict::Forbidden("the authorizer denied it".into()),
            ("Allow", true) => allowed = true,
            ("Allow" | "Deny", false) => {}
            _ => return forbidden("has an Effect other than Allow or Deny"),
        }
    }
    if !allowed {
        return Verdict::Forbidden("the policy does not allow this connection".into());
    }
    let mut context = AuthorizerContext::new();
    match reply.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                // API Gateway accepts only strings, numbers and booleans.
                if !(value.is_string() || value.is_number() || value.is_boolean()) {
                    return forbidden(&format!("context.{key} is not a string, number or boolean"));
                }
                context.insert(key.clone(), value.clone());
            }
        }
        Some(_) => return forbidden("context is not an object"),
    }
    context.insert("principalId".into(), Value::String(principal_id.clone()));
    Verdict::Allow(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:abc/prod/$connect";

    fn reply(effect: &str, resource: &str, context: &str) -> Vec<u8> {
        format!(
            r#"{{"principalId":"u1","policyDocument":{{"Version":"2012-10-17","Statement":[{{"Action":"execute-api:Invoke","Effect":"{effect}","Resource":"{resource}"}}]}},"context":{context}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn allow_on_the_method_arn_accepts_with_the_context() {
        let Verdict::Allow(context) = evaluate(
            &reply("Allow", ARN, r#"{"tenant":"t","n":1,"ok":true}"#),
            ARN,
        ) else {
            panic!("expected Allow");
        };
        let keys: Vec<&str> = context.keys().map(String::as_str).collect();
        assert_eq!(keys, ["tenant", "n", "ok", "principalId"]);
        assert!(matches!(
            evaluate(
                &reply("Allow", "arn:aws:execute-api:*:*:abc/*/*", "{}"),
                ARN
            ),
            Verdict::Allow(_)
        ));
    }

    #[test]
    fn deny_elsewhere_and_garbage_refuse() {
        for bad in [
            reply("Deny", ARN, "{}"),
            reply(
                "Allow",
                "arn:aws:execute-api:us-east-1:000000000000:other/prod/$connect",
                "{}",
            ),
            reply("Allow", ARN, r#"{"nested":{"x":1}}"#),
            reply("Maybe", ARN, "{}"),
            b"not json".to_vec(),
            b"{\"principalId\":\"u\"}".to_vec(),
            b"[]".to_vec(),
        ] {
            assert!(
                matches!(
                    evaluate(&bad, ARN),
                    Verdict::Forbidden(_) | Verdict::Failed(_)
                ),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        let both = br#"{"principalId":"u","policyDocument":{"Statement":[
            {"Action":"*","Effect":"Allow","Resource":"*"},
            {"Action":["execute-api:Invoke"],"Effect":"Deny","Resource":["*"]}]}}"#;
        assert!(matches!(evaluate(both, ARN), Verdict::Forbidden(_)));
        // A policy is a denial; a reply that is no policy is a failure.
        assert!(matches!(
            evaluate(&reply("Deny", ARN, "{}"), ARN),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(evaluate(b"not json", ARN), Verdict::Failed(_)));
    }
}
