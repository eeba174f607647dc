//! Which part of the API a request path addresses. Segments are
//! percent-decoded (`%24default`, `%40connections`, ids ending in `%3D`)
//! and empty segments skipped (the JS SDK sends `//@connections` when an
//! endpoint ends in `/`).

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The WebSocket endpoint: `/<stage>`, or `/` for the `$default` stage.
    Endpoint,
    /// `/<stage>/@connections/<id>`.
    Connection(String),
    /// Another stage, or a path the API does not have.
    Forbidden,
}

pub fn classify(path: &str, stage: &str) -> Target {
    let Some(segments) = segments(path) else {
        return Target::Forbidden;
    };
    let is_default = stage == "$default";
    match segments.as_slice() {
        [] if is_default => Target::Endpoint,
        [s] if s == stage => Target::Endpoint,
        [s, c, id] if s == stage && c == "@connections" => Target::Connection(id.to_string()),
        [c, id] if is_default && c == "@connections" => Target::Connection(id.to_string()),
        _ => Target::Forbidden,
    }
}

/// As `classify`, for a request to a custom domain whose API mapping has
/// `base` (or none): `/<base>` is the endpoint and `/<base>/@connections/
/// <id>` the management API, as API Gateway serves it on a domain.
pub fn classify_on_domain(path: &str, base: Option<&str>) -> Target {
    let Some(segments) = segments(path) else {
        return Target::Forbidden;
    };
    match (segments.as_slice(), base) {
        ([], None) => Target::Endpoint,
        ([b], Some(base)) if b == base => Target::Endpoint,
        ([c, id], None) if c == "@connections" => Target::Connection(id.to_string()),
        ([b, c, id], Some(base)) if b == base && c == "@connections" => {
            Target::Connection(id.to_string())
        }
        _ => Target::Forbidden,
    }
}

/// The path's segments, percent-decoded, empty ones skipped; `None` for
/// more than three or any that is not UTF-8.
fn segments(path: &str) -> Option<Vec<std::borrow::Cow<'_, str>>> {
    let mut segments = Vec::with_capacity(3);
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segments.len() == 3 {
            return None;
        }
        segments.push(percent_decode_str(segment).decode_utf8().ok()?);
    }
    Some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_paths() {
        assert_eq!(classify("/", "$default"), Target::Endpoint);
        assert_eq!(classify("/$default", "$default"), Target::Endpoint);
        assert_eq!(classify("/%24default/", "$default"), Target::Endpoint);
        assert_eq!(classify("/prod", "prod"), Target::Endpoint);
        assert_eq!(classify("/", "prod"), Target::Forbidden);
        assert_eq!(classify("/dev", "prod"), Target::Forbidden);
    }

    #[test]
    fn domain_paths() {
        let id = Target::Connection("L0SM9cOFvHcCIhw=".into());
        assert_eq!(classify_on_domain("/", None), Target::Endpoint);
        assert_eq!(classify_on_domain("/v1/", Some("v1")), Target::Endpoint);
        assert_eq!(
            classify_on_domain("/@connections/L0SM9cOFvHcCIhw=", None),
            id
        );
        assert_eq!(
            classify_on_domain("/v1/@connections/L0SM9cOFvHcCIhw=", Some("v1")),
            id
        );
        assert_eq!(
            classify_on_domain("/@connections/x", Some("v1")),
            Target::Forbidden
        );
        assert_eq!(classify_on_domain("/v2", Some("v1")), Target::Forbidden);
    }

    #[test]
    fn connection_paths() {
        let id = Target::Connection("L0SM9cOFvHcCIhw=".into());
        assert_eq!(classify("/prod/@connections/L0SM9cOFvHcCIhw=", "prod"), id);
        assert_eq!(
            classify("/prod/%40connections/L0SM9cOFvHcCIhw%3D", "prod"),
            id
        );
        assert_eq!(
            classify("/prod//@connections/L0SM9cOFvHcCIhw%3D", "prod"),
            id
        );
        assert_eq!(
            classify("/$default/@connections/L0SM9cOFvHcCIhw=", "$default"),
            id
        );
        assert_eq!(classify("/@connections/L0SM9cOFvHcCIhw=", "$default"), id);
        assert_eq!(classify("/dev/@connections/x", "prod"), Target::Forbidden);
        assert_eq!(
            classify("/prod/@connections/x/y", "prod"),
            Target::Forbidden
        );
        assert_eq!(
            classify("/prod/@connections/%FF", "prod"),
            Target::Forbidden
        );
    }
}
