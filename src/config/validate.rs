//! Checks both front doors share: names, stages, regions, route keys,
//! handler strings and paths, identity sources.

use super::definition::IdentitySource;
use std::path::Path;

pub const DEFAULT_REGION: &str = "us-east-1";

pub fn is_valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// `route.request.header.<name>` or `route.request.querystring.<name>`.
pub fn parse_identity_source(text: &str) -> Option<IdentitySource> {
    if let Some(name) = text.strip_prefix("route.request.header.") {
        return (!name.is_empty() && http::HeaderName::from_bytes(name.as_bytes()).is_ok())
            .then(|| IdentitySource::Header(name.to_string()));
    }
    text.strip_prefix("route.request.querystring.")
        .filter(|name| !name.is_empty())
        .map(|name| IdentitySource::QueryString(name.to_string()))
}

/// `<file path>.<export>`: the export after the last dot is an identifier
/// and the path before it is not empty.
pub fn is_handler_string(handler: &str) -> bool {
    match handler.rsplit_once('.') {
        Some((path, export)) => {
            !path.is_empty()
                && !path.ends_with('/')
                && export
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && export
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        }
        None => false,
    }
}

/// A handler's file is in the app's folder, as SST bundles it from
/// there: no absolute path, no `..` that climbs out of it.
pub fn check_handler_path(handler: &str) -> Result<(), String> {
    let file = handler.rsplit_once('.').map_or(handler, |(file, _)| file);
    let outside = || {
        format!(
            "\"{handler}\" names a file outside the app's folder; handler paths are relative to the folder of the config, as in SST"
        )
    };
    if Path::new(file).is_absolute() || file.starts_with('~') {
        return Err(outside());
    }
    let mut depth: usize = 0;
    for component in Path::new(file).components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => depth = depth.checked_sub(1).ok_or_else(outside)?,
            std::path::Component::RootDir | std::path::Component::Prefix(_) => {
                return Err(outside());
            }
        }
    }
    Ok(())
}

pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

/// An SST component's name as wsgate can serve it: SST itself takes any
/// name, and the link key is the name as it is; wsgate only needs one it
/// can use as a folder's name (the API's access log).
pub fn check_component_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("\"{name}\": a component name is 1 to 255 bytes"));
    }
    if name == "." || name == ".." || name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!(
            "\"{}\" is not a component name wsgate can serve: it names the API's log folder, so no '/', control characters, \".\" or \"..\"",
            name.escape_debug()
        ));
    }
    Ok(())
}

pub fn is_valid_stage(stage: &str) -> bool {
    stage == "$default"
        || (!stage.is_empty()
            && stage.len() <= 128
            && stage
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// A route key API Gateway accepts: 1-128 characters, no control
/// characters, and `$` only for the three predefined routes.
pub fn check_route_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a route key must not be empty".into());
    }
    if key.len() > 128 {
        return Err("a route key must be at most 128 characters".into());
    }
    if let Some(control) = key.chars().find(|ch| ch.is_control()) {
        return Err(format!(
            "a route key must not contain control characters (found U+{:04X})",
            u32::from(control)
        ));
    }
    if key.starts_with('$') && !matches!(key, "$connect" | "$disconnect" | "$default") {
        return Err(
            "route keys starting with `$` are reserved; use $connect, $disconnect or $default"
                .into(),
        );
    }
    Ok(())
}

/// A cluster node's name (`[cluster] node`, `--node`): it names the node's
/// access-log folder and appears in NATS, so it is kept plain.
pub fn check_node_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name != "."
        && name != "..";
    if valid {
        Ok(())
    } else {
        Err("a node name is 1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}
