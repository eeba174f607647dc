//! Access log formats: text with API Gateway's `$context` variables, as a
//! stage's `accessLogSettings.format`. Values are JSON-escaped (formats are
//! JSON templates) and missing ones are `-`, as API Gateway writes them.

use super::Record;

/// SST's format for `ApiGatewayWebSocket` access logs.
pub const SST_FORMAT: &str = concat!(
    r#"{"requestTime":"$context.requestTime","requestId":"$context.requestId","#,
    r#""eventType":"$context.eventType","routeKey":"$context.routeKey","status":$context.status,"#,
    r#""integrationRequestId":"$context.awsEndpointRequestId","#,
    r#""integrationStatus":"$context.integrationStatus","#,
    r#""integrationLatency":"$context.integrationLatency","#,
    r#""integrationServiceStatus":"$context.integration.integrationStatus","#,
    r#""ip":"$context.identity.sourceIp","userAgent":"$context.identity.userAgent","#,
    r#""connectedAt":"$context.connectedAt","connectionId":"$context.connectionId"}"#
);

/// The variables a format may use.
pub const VARIABLES: &[&str] = &[
    "apiId",
    "awsEndpointRequestId",
    "connectedAt",
    "connectionId",
    "domainName",
    "error.message",
    "error.messageString",
    "eventType",
    "extendedRequestId",
    "identity.sourceIp",
    "identity.userAgent",
    "integration.integrationStatus",
    "integration.latency",
    "integration.requestId",
    "integration.status",
    "integrationLatency",
    "integrationStatus",
    "messageId",
    "requestId",
    "requestTime",
    "requestTimeEpoch",
    "routeKey",
    "stage",
    "status",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Variable(&'static str, Field),
}

/// What a variable reads from a record: resolved once, when the format is
/// parsed, so writing a line compares no names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ApiId,
    EndpointRequestId,
    ConnectedAt,
    ConnectionId,
    DomainName,
    ErrorMessage,
    EventType,
    RequestId,
    SourceIp,
    UserAgent,
    ReplyStatus,
    Latency,
    IntegrationStatus,
    MessageId,
    RequestTime,
    RequestTimeEpoch,
    RouteKey,
    Stage,
    Status,
}

impl Field {
    /// The field of one of `VARIABLES`.
    fn of(name: &str) -> Field {
        match name {
            "apiId" => Field::ApiId,
            "awsEndpointRequestId" | "integration.requestId" => Field::EndpointRequestId,
            "connectedAt" => Field::ConnectedAt,
            "connectionId" => Field::ConnectionId,
            "domainName" => Field::DomainName,
            "error.message" | "error.messageString" => Field::ErrorMessage,
            "eventType" => Field::EventType,
            "extendedRequestId" | "requestId" => Field::RequestId,
            "identity.sourceIp" => Field::SourceIp,
            "identity.userAgent" => Field::UserAgent,
            "integration.integrationStatus" => Field::ReplyStatus,
            "integration.latency" | "integrationLatency" => Field::Latency,
            "integration.status" | "integrationStatus" => Field::IntegrationStatus,
            "messageId" => Field::MessageId,
            "requestTime" => Field::RequestTime,
            "requestTimeEpoch" => Field::RequestTimeEpoch,
            "routeKey" => Field::RouteKey,
            "stage" => Field::Stage,
            "status" => Field::Status,
            other => unreachable!("{other} is not in VARIABLES"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    parts: Vec<Part>,
}

impl Default for Format {
    fn default() -> Self {
        Format::parse(SST_FORMAT).expect("SST's format parses")
    }
}

impl Format {
    /// Parses a format; unknown variables and line breaks are errors.
    pub fn parse(text: &str) -> Result<Format, String> {
        if text.contains(['\n', '\r']) {
            return Err("an access log format is one line: remove the line breaks".into());
        }
        if !text.contains("$context.") {
            return Err("an access log format needs at least one $context variable, e.g. $context.requestId".into());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("$context.") {
            if at > 0 {
                parts.push(Part::Text(rest[..at].to_string()));
            }
            let after = &rest[at + "$context.".len()..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .unwrap_or(after.len());
            // A trailing dot ends a sentence, not a variable.
            let name = after[..len].trim_end_matches('.');
            let Some(known) = VARIABLES.iter().find(|v| **v == name) else {
                return Err(format!(
                    "$context.{name} is not a variable wsgate knows; use one of: {}",
                    VARIABLES
                        .iter()
                        .map(|v| format!("$context.{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            parts.push(Part::Variable(known, Field::of(known)));
            rest = &after[name.len()..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Format { parts })
    }

    /// A stage's format, as a config gives it: parsed, and with a request
    /// id, which API Gateway requires at deploy time ("The access log
    /// format must include at least $context.requestId or
    /// $context.extendedRequestId", Developer Guide, access logging).
    pub fn for_stage(text: &str) -> Result<Format, String> {
        let format = Format::parse(text)?;
        if !format.records("requestId") && !format.records("extendedRequestId") {
            return Err("an access log format must include $context.requestId or $context.extendedRequestId, as API Gateway requires".into());
        }
        Ok(format)
    }

    /// Whether the format writes `$context.<name>`.
    pub fn records(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Variable(v, _) if *v == name))
    }

    pub fn render(&self, record: &Record<'_>) -> String {
        let mut line = String::with_capacity(384);
        for part in &self.parts {
            match part {
                Part::Text(text) => line.push_str(text),
                Part::Variable(_, field) => match value(record, *field) {
                    Some(Value::Text(text)) => escape_into(&mut line, text),
                    // itoa: `write!` through `fmt` cost ~200 instructions
                    // a number, five numbers a line.
                    Some(Value::Number(n)) => line.push_str(itoa::Buffer::new().format(n)),
                    None => line.push('-'),
                },
            }
        }
        line
    }
}

impl Format {
    /// Reads a line this format wrote back into its fields, under the keys
    /// of SST's format (`routeKey`, `status`, `connectionId`, `ip`...) so
    /// `wsgate logs` filters and shows any format alike; `None` when the
    /// line does not fit the format. A variable's value ends where the
    /// text after it next appears (values are JSON-escaped, so a quote in
    /// a value cannot end it early).
    pub fn read(&self, line: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut fields = serde_json::Map::new();
        let mut rest = line;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Text(text) => rest = rest.strip_prefix(text.as_str())?,
                Part::Variable(name, _) => {
                    let end = match parts.peek() {
                        Some(Part::Text(next)) => find_unescaped(rest, next)?,
                        // Two variables in a row cannot be told apart.
                        Some(Part::Variable(..)) => return None,
                        None => rest.len(),
                    };
                    let raw = &rest[..end];
                    rest = &rest[end..];
                    if raw != "-" {
                        let value = serde_json::from_str::<String>(&format!("\"{raw}\""))
                            .unwrap_or_else(|_| raw.to_string());
                        let numeric = NUMBERS.contains(name);
                        let value = match value.parse::<i64>() {
                            Ok(n) if numeric => serde_json::Value::from(n),
                            _ => serde_json::Value::from(value),
                        };
                        fields.insert(field_name(name).to_string(), value);
                    }
                }
            }
        }
        rest.is_empty().then_some(fields)
    }
}

/// The variables whose values are numbers.
const NUMBERS: &[&str] = &[
    "connectedAt",
    "integration.integrationStatus",
    "integration.latency",
    "integration.status",
    "integrationLatency",
    "integrationStatus",
    "requestTimeEpoch",
    "status",
];

/// Where `needle` next starts in `text`, skipping JSON escapes (`\"`).
fn find_unescaped(text: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(needle).map(|i| i + from) {
        let backslashes = text[..at].chars().rev().take_while(|c| *c == '\\').count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
        // Past the match's first character (a char boundary).
        from = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// The key SST's format gives a variable (the variable's own name when
/// SST's format does not have it).
fn field_name(variable: &str) -> &str {
    match variable {
        "extendedRequestId" => "requestId",
        "awsEndpointRequestId" | "integration.requestId" => "integrationRequestId",
        "integration.status" => "integrationStatus",
        "integration.latency" => "integrationLatency",
        "integration.integrationStatus" => "integrationServiceStatus",
        "identity.sourceIp" => "ip",
        "identity.userAgent" => "userAgent",
        other => other,
    }
}

/// A variable's value in one record: borrowed text, or a number written
/// out.
enum Value<'a> {
    Text(&'a str),
    Number(i64),
}

fn value<'a>(record: &'a Record<'_>, field: Field) -> Option<Value<'a>> {
    let integration = record.integration.as_ref();
    let text = |s: &'a str| Some(Value::Text(s));
    let number = |n: i64| Some(Value::Number(n));
    match field {
        Field::ApiId => text(record.api_id),
        Field::EndpointRequestId => integration.and_then(|_| text(&record.request_id)),
        Field::ConnectedAt => number(record.connected_at),
        Field::ConnectionId => text(record.connection_id),
        Field::DomainName => text(record.domain_name),
        Field::ErrorMessage => text(record.error_message?),
        Field::EventType => text(record.event_type),
        Field::RequestId => text(&record.request_id),
        Field::SourceIp => text(record.ip),
        Field::UserAgent => text(record.user_agent?),
        Field::ReplyStatus => number(integration?.reply_status?.into()),
        Field::Latency => number(integration?.latency_ms as i64),
        Field::IntegrationStatus => number(integration?.status.into()),
        Field::MessageId => text(record.message_id?),
        Field::RequestTime => text(&record.request_time),
        Field::RequestTimeEpoch => number(record.request_time_epoch),
        Field::RouteKey => text(record.route_key),
        Field::Stage => text(record.stage),
        Field::Status => number(record.status.into()),
    }
}

/// JSON string escaping, without the quotes: formats are JSON templates.
fn escape_into(line: &mut String, value: &str) {
    if !value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        line.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if (c as u32) < 0x20 => line.push_str(&format!("\\u{:04x}", c as u32)),
            c => line.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::Integration;

    #[test]
    fn every_variable_reads_a_field() {
        // Resolving a name that `Field::of` lacks panics.
        for name in VARIABLES {
            let format = Format::parse(&format!("<$context.{name}>")).unwrap();
            assert!(format.render(&record()).starts_with('<'), "{name}");
        }
    }

    fn record() -> Record<'static> {
        Record {
            request_time: "25/Nov/2026:19:30:00 +0000".into(),
            request_time_epoch: 1,
            request_id: "req=".into(),
            event_type: "MESSAGE",
            route_key: "send\"Message",
            status: 200,
            connection_id: "conn=",
            connected_at: 1700,
            ip: "127.0.0.1",
            user_agent: None,
            integration: Some(Integration {
                latency_ms: 12,
                status: 200,
                reply_status: Some(201),
                trace: None,
            }),
            ..Record::default()
        }
    }

    #[test]
    fn sst_format_gives_sst_fields_with_status_an_integer() {
        let line = Format::default().render(&record());
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "requestTime",
                "requestId",
                "eventType",
                "routeKey",
                "status",
                "integrationRequestId",
                "integrationStatus",
                "integrationLatency",
                "integrationServiceStatus",
                "ip",
                "userAgent",
                "connectedAt",
                "connectionId"
            ]
        );
        assert_eq!(json["status"], 200);
        assert_eq!(json["routeKey"], "send\"Message");
        assert_eq!(json["integrationLatency"], "12");
        assert_eq!(json["integrationServiceStatus"], "201");
        assert_eq!(json["userAgent"], "-");
    }

    #[test]
    fn lines_read_back_into_fields_in_any_format() {
        let mut record = record();
        record.user_agent = Some("agent \"quoted\" / ok");
        for format in [
            SST_FORMAT,
            "$context.requestId $context.routeKey [$context.status] $context.identity.sourceIp \"$context.identity.userAgent\" $context.connectionId",
            r#"{"route":"$context.routeKey","code":$context.status,"id":"$context.connectionId","ua":"$context.identity.userAgent"}"#,
        ] {
            let format = Format::parse(format).unwrap();
            let line = format.render(&record);
            let fields = format.read(&line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(fields["routeKey"], record.route_key, "{line}");
            assert_eq!(fields["status"], 200, "{line}");
            assert_eq!(fields["connectionId"], record.connection_id, "{line}");
            assert_eq!(fields["userAgent"], "agent \"quoted\" / ok", "{line}");
        }
        // An escaped separator that is several bytes long.
        let format = Format::parse("$context.routeKey→$context.status").unwrap();
        let fields = format.read("a\\→b→200").unwrap();
        assert_eq!(fields["routeKey"], "a\\→b");
        assert_eq!(fields["status"], 200);
        let format = Format::parse("[$context.routeKey] $context.status").unwrap();
        assert!(format.read("not this format at all").is_none());
        assert!(
            format
                .read("[echo] 200 and more")
                .is_some_and(|f| f["status"] == "200 and more")
        );
    }

    #[test]
    fn custom_formats_and_their_errors() {
        let format = Format::parse("$context.requestId $context.status. done").unwrap();
        assert_eq!(format.render(&record()), "req= 200. done");
        assert!(
            Format::parse("$context.nope")
                .unwrap_err()
                .contains("$context.nope")
        );
        assert!(Format::parse("a\nb $context.status").is_err());
        assert!(Format::parse("no variables").is_err());
        // API Gateway's rule: a request id is in every format.
        assert!(
            Format::for_stage("$context.status $context.routeKey")
                .unwrap_err()
                .contains("$context.requestId or $context.extendedRequestId")
        );
        assert!(Format::for_stage("$context.extendedRequestId").is_ok());
    }
}
