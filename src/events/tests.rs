use super::*;
use serde_json::Value;

fn api() -> ApiInfo {
    ApiInfo {
        api_id: "abcd1234".into(),
        stage: "prod".into(),
    }
}

fn conn() -> ConnectionMeta {
    ConnectionMeta {
        connection_id: "AAAA1234=".into(),
        connected_at: 1707502303419,
        source_ip: "192.0.2.1".into(),
        user_agent: None,
        domain_name: "abcd1234.execute-api.us-east-1.amazonaws.com".into(),
        caller: None,
        authorizer: None,
    }
}

fn alice() -> crate::auth::keyring::Caller {
    crate::auth::keyring::Caller {
        account_id: "000000000000".into(),
        access_key: "AKIAEXAMPLE".into(),
        caller: "AIDAEXAMPLE".into(),
        user: "AIDAEXAMPLE".into(),
        user_arn: "arn:aws:iam::000000000000:user/alice".into(),
    }
}

/// The shape of a JSON value: keys in order and value types, recursively.
/// Header maps compare by their value types only, since clients differ.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Null => Value::Null,
    }
}

fn key_order(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn assert_same_shape(emitted: &Event, fixture: &str) {
    let emitted: Value = serde_json::from_slice(&emitted.to_json()).unwrap();
    let golden: Value = serde_json::from_str(fixture).unwrap();
    assert_eq!(key_order(&emitted), key_order(&golden));
    assert_eq!(
        shape(&emitted["requestContext"]),
        shape(&golden["requestContext"]),
        "requestContext drifted from AWS's"
    );
    assert_eq!(
        key_order(&emitted["requestContext"]),
        key_order(&golden["requestContext"])
    );
}

fn handshake_like_aws() -> HandshakeRequest {
    let golden: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/aws-connect-event.json")).unwrap();
    let mut headers: Vec<(String, String)> = golden["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    headers.push(("Connection".into(), "Upgrade".into()));
    headers.push(("Upgrade".into(), "websocket".into()));
    HandshakeRequest {
        headers,
        query: None,
    }
}

#[test]
fn connect_event_matches_aws_fixture() {
    let event = Event::connect(&api(), &conn(), "ABCD1234=".into(), &handshake_like_aws());
    assert_same_shape(
        &event,
        include_str!("../../tests/fixtures/aws-connect-event.json"),
    );
    let json: Value = serde_json::from_slice(&event.to_json()).unwrap();
    let golden: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/aws-connect-event.json")).unwrap();
    // Connection and Upgrade are dropped, everything else kept verbatim.
    assert_eq!(json["headers"], golden["headers"]);
    assert_eq!(json["multiValueHeaders"], golden["multiValueHeaders"]);
}

#[test]
fn message_event_matches_aws_fixture() {
    let event = Event::message(
        &api(),
        &conn(),
        "sendmessage".into(),
        "ABCDE1234=".into(),
        "AAAAAAAAAAAAAAA=".into(),
        r#"{"action": "sendmessage", "message": "hello"}"#.into(),
        false,
    );
    assert_same_shape(
        &event,
        include_str!("../../tests/fixtures/aws-message-event.json"),
    );
}

#[test]
fn disconnect_event_matches_aws_fixture() {
    let event = Event::disconnect(
        &api(),
        &conn(),
        "ABCD1234=".into(),
        1005,
        disconnect_reason(1005),
    );
    assert_same_shape(
        &event,
        include_str!("../../tests/fixtures/aws-disconnect-event.json"),
    );
    let json: Value = serde_json::from_slice(&event.to_json()).unwrap();
    let golden: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/aws-disconnect-event.json"
    ))
    .unwrap();
    assert_eq!(json["headers"], golden["headers"]);
    assert_eq!(
        json["requestContext"]["disconnectReason"],
        golden["requestContext"]["disconnectReason"]
    );
}

#[test]
fn query_parameters_appear_only_with_a_query() {
    let mut request = handshake_like_aws();
    let event = Event::connect(&api(), &conn(), "r".into(), &request);
    let json: Value = serde_json::from_slice(&event.to_json()).unwrap();
    assert!(json.get("queryStringParameters").is_none());

    request.query = Some("token=a%20b&room=1&room=2".into());
    let event = Event::connect(&api(), &conn(), "r".into(), &request);
    let json: Value = serde_json::from_slice(&event.to_json()).unwrap();
    assert_eq!(json["queryStringParameters"]["token"], "a b");
    assert_eq!(json["queryStringParameters"]["room"], "2");
    assert_eq!(
        json["multiValueQueryStringParameters"]["room"],
        serde_json::json!(["1", "2"])
    );
}

#[test]
fn events_deserialize_into_aws_lambda_events_types() {
    let mut request = handshake_like_aws();
    request.query = Some("a=1".into());
    let connect = Event::connect(&api(), &conn(), "req1".into(), &request).to_lambda_request();
    assert_eq!(
        connect.request_context.route_key.as_deref(),
        Some("$connect")
    );
    assert_eq!(
        connect.request_context.event_type.as_deref(),
        Some("CONNECT")
    );
    assert_eq!(connect.request_context.connected_at, 1707502303419);
    assert_eq!(
        connect.request_context.identity.source_ip.as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(connect.headers["sec-websocket-version"], "13");
    assert_eq!(connect.query_string_parameters.first("a"), Some("1"));

    let message = Event::message(
        &api(),
        &conn(),
        "echo".into(),
        "r".into(),
        "m".into(),
        "hi".into(),
        false,
    )
    .to_lambda_request();
    assert_eq!(message.body.as_deref(), Some("hi"));
    assert_eq!(message.request_context.message_id.as_deref(), Some("m"));

    let disconnect =
        Event::disconnect(&api(), &conn(), "r".into(), 1001, "Going away").to_lambda_request();
    assert_eq!(
        disconnect.request_context.disconnect_status_code,
        Some(1001)
    );
}

#[test]
fn request_time_is_common_log_format() {
    let time = DateTime::parse_from_rfc3339("2024-02-09T18:11:43.420Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(&*clf_time(time), "09/Feb/2024:18:11:43 +0000");
    // Formatted once a second: the next second, and back, are still right.
    let next = time + chrono::Duration::milliseconds(600);
    assert_eq!(&*clf_time(next), "09/Feb/2024:18:11:44 +0000");
    assert_eq!(&*clf_time(time), "09/Feb/2024:18:11:43 +0000");
}

#[test]
fn direct_conversion_equals_deserializing_the_json() {
    let mut request = handshake_like_aws();
    request.query = Some("a=1&a=2&b=x%20y".into());
    request.headers.push(("X-Repeated".into(), "one".into()));
    request.headers.push(("X-Repeated".into(), "two".into()));
    let mut conn = conn();
    conn.user_agent = Some("agent/1".into());
    conn.caller = Some(std::sync::Arc::new(alice()));
    conn.authorizer = Some(std::sync::Arc::new(
        [
            ("tenant".to_string(), Value::from("t1")),
            ("level".to_string(), Value::from(3)),
            ("principalId".to_string(), Value::from("user-1")),
        ]
        .into_iter()
        .collect(),
    ));
    let events = [
        Event::connect(&api(), &conn, "r1".into(), &request),
        Event::message(
            &api(),
            &conn,
            "echo".into(),
            "r2".into(),
            "m".into(),
            "body".into(),
            false,
        ),
        Event::message(
            &api(),
            &conn,
            "$default".into(),
            "r3".into(),
            "m".into(),
            "AAEC".into(),
            true,
        ),
        Event::disconnect(
            &api(),
            &conn,
            "r4".into(),
            1006,
            "Connection closed abnormally",
        ),
    ];
    for event in events {
        let via_json: ApiGatewayWebsocketProxyRequest =
            serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(event.to_lambda_request(), via_json, "{}", event.route_key());
    }
}

#[test]
fn authorizer_and_caller_appear_where_aws_puts_them() {
    let mut conn = conn();
    conn.authorizer = Some(std::sync::Arc::new(
        [("principalId".to_string(), Value::from("me"))]
            .into_iter()
            .collect(),
    ));
    conn.caller = Some(std::sync::Arc::new(alice()));
    let event: Value = serde_json::from_slice(
        &Event::message(
            &api(),
            &conn,
            "echo".into(),
            "r".into(),
            "m".into(),
            "b".into(),
            false,
        )
        .to_json(),
    )
    .unwrap();
    let context = &event["requestContext"];
    assert_eq!(key_order(context)[..2], ["routeKey", "authorizer"]);
    assert_eq!(context["authorizer"]["principalId"], "me");
    assert_eq!(
        context["identity"]["userArn"],
        "arn:aws:iam::000000000000:user/alice"
    );
    assert_eq!(context["identity"]["accessKey"], "AKIAEXAMPLE");
    let plain: Value = serde_json::from_slice(
        &Event::message(
            &api(),
            &super::tests::conn(),
            "echo".into(),
            "r".into(),
            "m".into(),
            "b".into(),
            false,
        )
        .to_json(),
    )
    .unwrap();
    assert!(plain["requestContext"].get("authorizer").is_none());
    assert_eq!(
        key_order(&plain["requestContext"]["identity"]),
        ["sourceIp"]
    );
}
