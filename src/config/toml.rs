//! `wsgate.toml`: the TOML schema (the SST component's arguments in
//! snake_case), parsed with spans so that every problem names the file,
//! the line and the key, and checked into the app definition.

use super::definition::*;
use super::key_lines::{KeyLines, suggestion};
use super::units::{Retention, parse_duration, parse_retention, parse_size};
use super::validate::*;
use crate::gateway::limits::Limits;
use crate::gateway::router::RouteSelector;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: Spanned<String>,
    stage: Option<Spanned<String>>,
    route_selection_expression: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    binary: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    access_log: Option<RawAccessLog>,
    domain: Option<Spanned<toml::Value>>,
    transform: Option<RawTransform>,
    region: Option<Spanned<String>>,
    #[serde(default)]
    credentials: Vec<Spanned<RawCredential>>,
    #[serde(default)]
    authorizers: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default)]
    routes: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    cluster: Option<Spanned<RawCluster>>,
}

/// `[cluster]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    nats: Spanned<String>,
    credentials: Option<String>,
    token_env: Option<Spanned<String>>,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    replicas: Option<Spanned<i64>>,
    node: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    access_key_id: String,
    secret_access_key: Option<String>,
    secret_access_key_env: Option<String>,
    user: Option<String>,
    #[serde(default)]
    allow: Vec<RawAllow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    action: String,
    #[serde(default = "any_resource")]
    resource: String,
}

fn any_resource() -> String {
    "*".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    retention: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransform {
    stage: Option<Spanned<RawStage>>,
    api: Option<Spanned<RawTransformApi>>,
    route: Option<Spanned<RawTransformRoute>>,
    access_log: Option<Spanned<RawTransformAccessLog>>,
}

/// `[transform.access_log]`: the stage's access log format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransformAccessLog {
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransformRoute {
    handler: Option<toml::Table>,
    args: Option<RawRouteArgs>,
}

/// `[transform.route.args]`: SST's route args (only `auth` is one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteArgs {
    auth: Option<toml::Value>,
}

/// `[transform.api]`: the API resource's own settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransformApi {
    route_selection_expression: Option<String>,
    api_id: Option<String>,
}

/// `[transform.stage]`: the stage settings that are the gateway's limits.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    max_message_size: Option<String>,
    max_frame_size: Option<String>,
    idle_timeout: Option<String>,
    max_duration: Option<String>,
    integration_timeout: Option<String>,
    throttling_burst_limit: Option<toml::Value>,
    throttling_rate_limit: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    handler: Option<String>,
    url: Option<String>,
    command: Option<Vec<String>>,
    timeout: Option<String>,
    memory: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    link: Vec<String>,
    auth: Option<RawAuth>,
    #[serde(default)]
    return_response: bool,
    concurrency: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    iam: Option<bool>,
    lambda: Option<String>,
}

/// Collects problems while a config is checked.
struct Checker<'i> {
    /// Byte offsets where each line starts, so a span's line is a binary
    /// search (checking stays linear in the number of routes).
    line_starts: Vec<usize>,
    keys: KeyLines<'i>,
    problems: Vec<Problem>,
    /// Reading the app without serving it (`wsgate logs`): secrets named
    /// by environment variables may be unset.
    secrets_optional: bool,
}

impl<'i> Checker<'i> {
    fn new(source: &'i str) -> Checker<'i> {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Checker {
            line_starts,
            keys: KeyLines::new(source),
            problems: Vec::new(),
            secrets_optional: false,
        }
    }

    fn line(&self, span: std::ops::Range<usize>) -> usize {
        self.line_starts
            .partition_point(|&start| start <= span.start)
    }

    /// A problem with `key`, reported at the key's own line when the file
    /// has it there, else at `span` (the table it was found in).
    fn at(&mut self, span: std::ops::Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span);
        self.at_line(line, key, message);
    }

    fn at_line(&mut self, line: usize, key: &str, message: impl Into<String>) {
        let line = self.keys.key_span(key).map_or(line, |span| self.line(span));
        self.problems.push(Problem {
            line: Some(line),
            key: Some(key.to_string()),
            message: message.into(),
        });
    }

    fn not_supported_yet(&mut self, span: std::ops::Range<usize>, key: &str, what: &str) {
        self.at(
            span,
            key,
            format!("{what} is not supported yet by this version of wsgate"),
        );
    }
}

/// serde's "unknown field `lisen`, expected one of `name`, `listen`, ..."
/// with "did you mean `listen`?" when one known key is a near miss.
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known = expected.split('`').skip(1).step_by(2);
    match suggestion(unknown, known) {
        Some(near) => format!(
            "unknown field `{unknown}`: did you mean `{near}`? ({})",
            expected.trim_start_matches(", ")
        ),
        None => message.to_string(),
    }
}

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(path, &read(path)?)
}

/// As `load`, for commands that only read the app (`wsgate logs`):
/// secrets named by environment variables need not be set.
pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
    parse_checked(path, &read(path)?, true)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        problems: vec![Problem {
            line: None,
            key: None,
            message: format!("cannot read config: {e}"),
        }],
    })
}

/// Parses and checks config text; `file` is used for error messages and
/// as the base folder of handler paths.
pub fn parse(file: &Path, source: &str) -> Result<Config, ConfigError> {
    parse_checked(file, source, false)
}

fn parse_checked(file: &Path, source: &str, secrets_optional: bool) -> Result<Config, ConfigError> {
    let fail = |problems| ConfigError {
        file: file.to_path_buf(),
        problems,
    };
    let mut checker = Checker::new(source);
    checker.secrets_optional = secrets_optional;
    let raw: RawConfig = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span();
            // A key missing from the top level: toml points at the whole
            // document (its first key); say what is missing instead.
            if let Some(missing) = e.message().trim().strip_prefix("missing field ")
                && span
                    .as_ref()
                    .is_none_or(|s| s.start == 0 || s.len() >= source.trim_end().len())
            {
                return Err(fail(vec![Problem {
                    line: None,
                    key: None,
                    message: format!(
                        "{missing} is missing: it is required at the top of the file (e.g. name = \"MyApi\")"
                    ),
                }]));
            }
            let key = span.as_ref().and_then(|s| checker.keys.key_containing(s));
            return Err(fail(vec![Problem {
                line: span.map(|s| checker.line(s)),
                key,
                message: with_suggestion(e.message().trim()),
            }]));
        }
    };
    let config = check(file, raw, &mut checker);
    if checker.problems.is_empty() {
        Ok(config)
    } else {
        Err(fail(checker.problems))
    }
}

fn check(file: &Path, raw: RawConfig, c: &mut Checker) -> Config {
    let name = raw.name.get_ref().clone();
    if !is_valid_name(&name) {
        c.at(
            raw.name.span(),
            "name",
            format!("\"{name}\" is not a valid name: start with a letter, then letters and digits only (e.g. \"MyApi\")"),
        );
    }

    let stage = match &raw.stage {
        Some(s) => {
            if !is_valid_stage(s.get_ref()) {
                c.at(
                    s.span(),
                    "stage",
                    format!(
                        "\"{}\" is not a valid stage name: use \"$default\" or 1-128 of A-Z a-z 0-9 - _",
                        s.get_ref()
                    ),
                );
            }
            s.get_ref().clone()
        }
        None => "$default".to_string(),
    };

    let route_selection_expression = match &raw.route_selection_expression {
        Some(e) => {
            if let Err(msg) = RouteSelector::parse(e.get_ref()) {
                c.at(e.span(), "route_selection_expression", msg);
            }
            e.get_ref().clone()
        }
        None => crate::gateway::router::DEFAULT_EXPRESSION.to_string(),
    };

    let listen = raw.listen.as_ref().and_then(|l| match l.get_ref().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            c.at(
                l.span(),
                "listen",
                format!(
                    "\"{}\" is not an address such as \"127.0.0.1:8080\"",
                    l.get_ref()
                ),
            );
            None
        }
    });

    let binary = match raw
        .binary
        .as_ref()
        .map(|b| (b.get_ref().as_str(), b.span()))
    {
        None | Some(("reject", _)) => BinaryMode::Reject,
        Some(("base64", _)) => BinaryMode::Base64,
        Some((other, span)) => {
            c.at(
                span,
                "binary",
                format!("\"{other}\" is not a binary mode; use \"reject\" (API Gateway's default: close 1003) or \"base64\""),
            );
            BinaryMode::Reject
        }
    };

    let local_tls = match raw.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("local", _)) => true,
        Some(("off", _)) => false,
        Some((other, span)) => {
            c.at(
                span,
                "tls",
                format!("\"{other}\" is not a TLS mode; use \"local\" (the local CA's certificate, the default) or \"off\""),
            );
            true
        }
    };

    // Unset: "forever", as the SST reference wsgate.toml follows gives it
    // (SST before 3.2.49; later SST defaults to "1 month").
    let access_log_retention = match raw.access_log.and_then(|a| a.retention) {
        Some(r) => parse_retention(r.get_ref()).unwrap_or_else(|msg| {
            c.at(r.span(), "access_log.retention", msg);
            Retention::Forever
        }),
        None => Retention::Forever,
    };

    let config_dir = file.parent().unwrap_or(Path::new("."));
    let cluster = raw
        .cluster
        .as_ref()
        .and_then(|cluster| check_cluster(cluster, config_dir, c));
    let domain = raw
        .domain
        .as_ref()
        .and_then(|d| check_domain(d, config_dir, c));
    let region = match &raw.region {
        Some(r) => {
            if !is_valid_region(r.get_ref()) {
                c.at(
                    r.span(),
                    "region",
                    format!(
                        "\"{}\" is not a region name such as \"us-east-1\"",
                        r.get_ref()
                    ),
                );
            }
            r.get_ref().clone()
        }
        None => DEFAULT_REGION.to_string(),
    };
    let credentials = check_credentials(&raw.credentials, c);

    let mut limits = Limits::default();
    let mut transform_handler = None;
    let mut transform_auth = None;
    let mut route_selection_expression = route_selection_expression;
    let mut api_id = None;
    let mut access_log_format = crate::access_log::format::Format::default();
    if let Some(transform) = raw.transform {
        if let Some(route) = transform.route {
            let route = route.into_inner();
            transform_handler = route.handler;
            transform_auth = route.args.and_then(|a| a.auth);
        }
        if let Some(api) = transform.api {
            let span = api.span();
            let api = api.into_inner();
            if let Some(expression) = api.route_selection_expression {
                if let Err(msg) = RouteSelector::parse(&expression) {
                    c.at(
                        span.clone(),
                        "transform.api.route_selection_expression",
                        msg,
                    );
                }
                route_selection_expression = expression;
            }
            if let Some(id) = api.api_id {
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    c.at(
                        span,
                        "transform.api.api_id",
                        format!("\"{id}\" is not an API id: 1-64 lowercase letters and digits, e.g. \"a1b2c3d4e5\""),
                    );
                }
                api_id = Some(id);
            }
        }
        if let Some(access_log) = transform.access_log {
            let span = access_log.span();
            if let Some(format) = access_log.into_inner().format {
                match crate::access_log::format::Format::for_stage(&format) {
                    Ok(parsed) => access_log_format = parsed,
                    Err(msg) => c.at(span, "transform.access_log.format", msg),
                }
            }
        }
        if let Some(stage) = transform.stage {
            apply_stage(&stage, &mut limits, c);
        }
    }

    let mut authorizers = Vec::new();
    for (key, value) in &raw.authorizers {
        if let Some(authorizer) = check_authorizer(key, value, c) {
            authorizers.push(authorizer);
        }
    }

    let mut routes = Vec::new();
    for (key, value) in &raw.routes {
        if let Some(route) = check_route(
            key,
            value,
            transform_handler.as_ref(),
            transform_auth.as_ref(),
            c,
        ) {
            if let Some(RouteAuth::Lambda(authorizer)) = &route.auth
                && !authorizers.iter().any(|a| a.name == *authorizer)
            {
                c.at_line(
                    route.line,
                    &format!("routes.{}.auth.lambda", route.key),
                    format!("no authorizer is called \"{authorizer}\"; define it as [authorizers.{authorizer}]"),
                );
            }
            for linked in route.link.iter().filter(|l| **l != name) {
                c.at_line(
                    route.line,
                    &format!("routes.{}.link", route.key),
                    format!("\"{linked}\" is not a resource wsgate knows; a route can link the API itself (\"{name}\")"),
                );
            }
            routes.push(route);
        }
    }

    Config {
        file: file.to_path_buf(),
        source: Source::Toml,
        root_paths: false,
        app: AppIdentity {
            name: name.clone(),
            stage: stage.clone(),
        },
        name,
        stage,
        route_selection_expression,
        api_id,
        listen,
        binary,
        access_log_retention,
        access_log_format,
        limits,
        routes,
        domain,
        local_tls,
        region,
        credentials,
        authorizers,
        invokable: Vec::new(),
        cluster,
    }
}

/// `[cluster]`: NATS URLs, credentials (files relative to the config,
/// the token from the environment, never the file), replicas, node name.
fn check_cluster(
    raw: &Spanned<RawCluster>,
    config_dir: &Path,
    c: &mut Checker,
) -> Option<ClusterSettings> {
    let cluster = raw.get_ref();
    let nats = cluster.nats.get_ref().trim().to_string();
    if let Err(message) = check_nats_urls(&nats) {
        c.at(cluster.nats.span(), "cluster.nats", message);
    }
    let token = cluster
        .token_env
        .as_ref()
        .and_then(|name| match std::env::var(name.get_ref()) {
            Ok(token) if !token.is_empty() => Some(token),
            _ if c.secrets_optional => None,
            _ => {
                c.at(
                    name.span(),
                    "cluster.token_env",
                    format!("the environment variable {} is not set", name.get_ref()),
                );
                None
            }
        });
    let replicas = match &cluster.replicas {
        None => 1,
        Some(r) if (1..=5).contains(r.get_ref()) => *r.get_ref() as usize,
        Some(r) => {
            c.at(
                r.span(),
                "cluster.replicas",
                "replicas is 1 to 5 (JetStream's limit)",
            );
            1
        }
    };
    let node = cluster.node.as_ref().map(|n| {
        if let Err(message) = check_node_name(n.get_ref()) {
            c.at(n.span(), "cluster.node", message);
        }
        n.get_ref().clone()
    });
    let path = |p: &Option<String>| p.as_ref().map(|p| config_dir.join(p));
    if cluster.tls_cert.is_some() != cluster.tls_key.is_some() {
        c.at(
            raw.span(),
            "cluster.tls_cert",
            "tls_cert and tls_key go together",
        );
    }
    Some(ClusterSettings {
        nats,
        credentials: path(&cluster.credentials),
        token,
        tls_ca: path(&cluster.tls_ca),
        tls_cert: path(&cluster.tls_cert),
        tls_key: path(&cluster.tls_key),
        replicas,
        node,
    })
}

/// NATS server URLs as `--cluster` and `[cluster] nats` take them.
pub fn check_nats_urls(urls: &str) -> Result<(), String> {
    if urls.trim().is_empty() {
        return Err("name at least one NATS server, e.g. \"nats://127.0.0.1:4222\"".into());
    }
    for url in urls.split(',').map(str::trim) {
        let parsed =
            url::Url::parse(url).map_err(|e| format!("\"{url}\" is not a NATS URL: {e}"))?;
        if !["nats", "tls"].contains(&parsed.scheme()) || parsed.host_str().is_none() {
            return Err(format!(
                "\"{url}\" is not a NATS URL; use nats://host:port (or tls://host:port)"
            ));
        }
    }
    Ok(())
}

/// `[domain]`: SST's `name`, `path`, `cert` (here a PEM file), `dns`
/// (only `false`), plus the key file TLS needs.
fn check_domain(
    value: &Spanned<toml::Value>,
    config_dir: &Path,
    c: &mut Checker,
) -> Option<crate::domain::DomainSettings> {
    let span = value.span();
    let table = match value.get_ref() {
        toml::Value::String(name) => {
            c.at(
                span,
                "domain",
                format!("wsgate serves TLS itself: use [domain] with name = \"{name}\" and the `cert` and `key` PEM files, or `acme = {{ email = \"...\" }}`"),
            );
            return None;
        }
        toml::Value::Table(table) => table,
        _ => {
            c.at(
                span,
                "domain",
                "a domain is a table: name, path, and cert and key or acme",
            );
            return None;
        }
    };
    let mut text = |key: &str| -> Option<String> {
        match table.get(key) {
            None => None,
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                c.at(span.clone(), &format!("domain.{key}"), "must be a string");
                None
            }
        }
    };
    let (name, path, cert, key) = (text("name"), text("path"), text("cert"), text("key"));
    for unknown in table
        .keys()
        .filter(|k| !["name", "path", "cert", "key", "acme", "dns"].contains(&k.as_str()))
    {
        c.at(
            span.clone(),
            &format!("domain.{unknown}"),
            "unknown key; a domain has name, path, cert, key, acme and dns",
        );
    }
    let acme = table
        .get("acme")
        .and_then(|acme| check_acme(acme, table, &name, config_dir, span.clone(), c));
    match table.get("dns") {
        None | Some(toml::Value::Boolean(false)) => {}
        Some(_) => c.at(
            span.clone(),
            "domain.dns",
            "DNS adapters apply to deploying on AWS; wsgate serves the domain itself: use dns = false or leave it out",
        ),
    }
    let name = name.or_else(|| {
        c.at(
            span.clone(),
            "domain.name",
            "a domain needs a name, e.g. \"ws.example.com\"",
        );
        None
    })?;
    let valid_host = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid_host {
        c.at(
            span.clone(),
            "domain.name",
            format!("\"{name}\" is not a host name"),
        );
    }
    let path = path
        .map(|p| p.trim_matches('/').to_string())
        .filter(|p| !p.is_empty());
    if let Some(p) = &path
        && (p.starts_with('.')
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)))
    {
        c.at(
            span.clone(),
            "domain.path",
            format!("\"{p}\" is not a base path: one segment of letters, digits and - . _ ~, not starting with ."),
        );
    }
    if table.contains_key("acme") {
        return Some(crate::domain::DomainSettings {
            name,
            path,
            certificate: crate::domain::CertificateSource::Acme(acme?),
        });
    }
    let mut file = |value: Option<String>, key: &str| -> Option<PathBuf> {
        match value {
            None => {
                c.at(
                    span.clone(),
                    &format!("domain.{key}"),
                    format!(
                        "wsgate serves TLS itself: give `{key}`, a PEM file, or get certificates with `acme = {{ email = \"...\" }}`"
                    ),
                );
                None
            }
            Some(v) if v.starts_with("arn:") => {
                c.at(
                    span.clone(),
                    &format!("domain.{key}"),
                    "a certificate ARN applies to deploying on AWS; give a PEM file",
                );
                None
            }
            Some(v) => Some(config_dir.join(v)),
        }
    };
    let (cert, key) = (file(cert, "cert"), file(key, "key"));
    Some(crate::domain::DomainSettings {
        name,
        path,
        certificate: crate::domain::CertificateSource::Files {
            cert: cert?,
            key: key?,
        },
    })
}

/// `[domain] acme = { email, directory, directory_ca }`.
fn check_acme(
    acme: &toml::Value,
    domain: &toml::Table,
    name: &Option<String>,
    config_dir: &Path,
    span: std::ops::Range<usize>,
    c: &mut Checker,
) -> Option<crate::domain::AcmeSettings> {
    let Some(acme) = acme.as_table() else {
        c.at(
            span,
            "domain.acme",
            "a table: { email = \"you@example.com\" } (and `directory`, `directory_ca`)",
        );
        return None;
    };
    let mut problem =
        |key: &str, message: &str| c.at(span.clone(), &format!("domain.acme.{key}"), message);
    for unknown in acme
        .keys()
        .filter(|k| !["email", "directory", "directory_ca"].contains(&k.as_str()))
    {
        problem(
            unknown,
            "unknown key; acme has email, directory and directory_ca",
        );
    }
    for both in ["cert", "key"]
        .into_iter()
        .filter(|k| domain.contains_key(*k))
    {
        c.at(
            span.clone(),
            &format!("domain.{both}"),
            "give either `cert` and `key` or `acme`, not both",
        );
    }
    let text = |key: &str| acme.get(key).map(|v| v.as_str().map(str::to_string));
    let mut problem =
        |key: &str, message: &str| c.at(span.clone(), &format!("domain.acme.{key}"), message);
    let email = match text("email") {
        Some(Some(email)) if email.contains('@') && !email.contains(char::is_whitespace) => {
            Some(email)
        }
        Some(_) => {
            problem(
                "email",
                "must be an email address: the ACME account's contact",
            );
            None
        }
        None => {
            problem(
                "email",
                "ACME needs an email address for the account (`email = \"you@example.com\"`)",
            );
            None
        }
    };
    let directory = match text("directory") {
        None => Some(crate::domain::LETS_ENCRYPT.to_string()),
        Some(Some(url)) if url.starts_with("https://") => Some(url),
        Some(_) => {
            problem("directory", "must be the https:// URL of an ACME directory");
            None
        }
    };
    let directory_ca = match text("directory_ca") {
        None => None,
        Some(Some(file)) => Some(config_dir.join(file)),
        Some(None) => {
            problem("directory_ca", "must be a PEM file's path");
            None
        }
    };
    Some(crate::domain::AcmeSettings {
        email: email?,
        directory: directory?,
        directory_ca,
        cache: config_dir
            .join(".wsgate")
            .join("acme")
            .join(name.as_deref().unwrap_or("domain")),
    })
}

fn check_credentials(raw: &[Spanned<RawCredential>], c: &mut Checker) -> Vec<CredentialConfig> {
    let mut credentials: Vec<CredentialConfig> = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let line = c.line(entry.span());
        let key = format!("credentials[{i}]");
        let raw = entry.get_ref();
        let id = &raw.access_key_id;
        if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            c.at_line(
                line,
                &format!("{key}.access_key_id"),
                "must be 16 to 128 letters and digits, as AWS access key ids",
            );
        }
        if credentials.iter().any(|other| other.access_key_id == *id) {
            c.at_line(
                line,
                &format!("{key}.access_key_id"),
                format!("\"{id}\" is listed twice"),
            );
        }
        let secret = match (&raw.secret_access_key, &raw.secret_access_key_env) {
            (Some(secret), None) => Some(secret.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(secret) if !secret.is_empty() => Some(secret),
                _ if c.secrets_optional => Some(String::new()),
                _ => {
                    c.at_line(
                        line,
                        &format!("{key}.secret_access_key_env"),
                        format!("the environment variable {var} is not set"),
                    );
                    None
                }
            },
            _ => {
                c.at_line(
                    line,
                    &key,
                    "give one of `secret_access_key` and `secret_access_key_env`",
                );
                None
            }
        };
        if raw.allow.is_empty() {
            c.at_line(
                line,
                &format!("{key}.allow"),
                "a key that allows nothing is useless; allow e.g. { action = \"execute-api:ManageConnections\", resource = \"*\" }",
            );
        }
        for allow in &raw.allow {
            let action = allow.action.to_ascii_lowercase();
            if action != "*" && !action.starts_with("execute-api:") {
                c.at_line(
                    line,
                    &format!("{key}.allow"),
                    format!("\"{}\" is not an execute-api action; use execute-api:Invoke or execute-api:ManageConnections", allow.action),
                );
            }
            if allow.resource != "*" && !allow.resource.starts_with("arn:aws:execute-api:") {
                c.at_line(
                    line,
                    &format!("{key}.allow"),
                    format!("\"{}\" is not an API Gateway ARN such as arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/POST/@connections/*", allow.resource),
                );
            }
        }
        credentials.push(CredentialConfig {
            line,
            access_key_id: id.clone(),
            secret_access_key: secret.unwrap_or_default(),
            user: raw.user.clone().unwrap_or_else(|| format!("wsgate-{i}")),
            allow: raw
                .allow
                .iter()
                .map(|a| crate::auth::policy::Allow::new(&a.action, &a.resource))
                .collect(),
        });
    }
    credentials
}

fn check_authorizer(
    key: &Spanned<String>,
    value: &Spanned<toml::Value>,
    c: &mut Checker,
) -> Option<AuthorizerConfig> {
    let name = key.get_ref();
    let path = format!("authorizers.{name}");
    let span = key.span();
    if !is_valid_name(name) {
        c.at(
            span.clone(),
            &path,
            "an authorizer name starts with a letter, then letters and digits only",
        );
    }
    let toml::Value::Table(table) = value.get_ref() else {
        c.at(span, &path, "an authorizer is a table with `handler` (or `url` or `command`) and `identity_sources`");
        return None;
    };
    let mut table = table.clone();
    let sources = match table.remove("identity_sources") {
        None => vec![IdentitySource::Header("Authorization".into())],
        Some(toml::Value::Array(values)) => values
            .iter()
            .filter_map(|v| {
                let parsed = v.as_str().and_then(parse_identity_source);
                if parsed.is_none() {
                    c.at(
                        span.clone(),
                        &format!("{path}.identity_sources"),
                        format!("{v} is not route.request.header.<name> or route.request.querystring.<name>"),
                    );
                }
                parsed
            })
            .collect(),
        Some(_) => {
            c.at(span.clone(), &format!("{path}.identity_sources"), "must be a list of strings");
            Vec::new()
        }
    };
    let handler = check_handler(name, &path, table, span, c)?;
    if handler.auth.is_some() {
        c.at_line(
            handler.line,
            &format!("{path}.auth"),
            "an authorizer takes no `auth`",
        );
    }
    if handler.return_response {
        c.at_line(
            handler.line,
            &format!("{path}.return_response"),
            "an authorizer takes no `return_response`",
        );
    }
    Some(AuthorizerConfig {
        name: name.clone(),
        handler,
        identity_sources: sources,
    })
}

fn apply_stage(stage: &Spanned<RawStage>, limits: &mut Limits, c: &mut Checker) {
    let span = stage.span();
    let s = stage.get_ref();
    let mut size = |value: &Option<String>, key: &str, target: &mut usize| {
        if let Some(text) = value {
            match parse_size(text) {
                Ok(n) if n > 0 => *target = n as usize,
                Ok(_) => c.at(span.clone(), key, "must be greater than zero"),
                Err(msg) => c.at(span.clone(), key, msg),
            }
        }
    };
    size(
        &s.max_message_size,
        "transform.stage.max_message_size",
        &mut limits.max_message_size,
    );
    size(
        &s.max_frame_size,
        "transform.stage.max_frame_size",
        &mut limits.max_frame_size,
    );
    let mut duration = |value: &Option<String>, key: &str, target: &mut Duration| {
        if let Some(text) = value {
            match parse_duration(text) {
                Ok(d) if !d.is_zero() => *target = d,
                Ok(_) => c.at(span.clone(), key, "must be greater than zero"),
                Err(msg) => c.at(span.clone(), key, msg),
            }
        }
    };
    duration(
        &s.idle_timeout,
        "transform.stage.idle_timeout",
        &mut limits.idle_timeout,
    );
    duration(
        &s.max_duration,
        "transform.stage.max_duration",
        &mut limits.max_duration,
    );
    duration(
        &s.integration_timeout,
        "transform.stage.integration_timeout",
        &mut limits.integration_timeout,
    );
    let number = |value: &Option<toml::Value>| match value {
        None => Ok(None),
        Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as f64)),
        Some(toml::Value::Float(n)) if *n >= 0.0 && n.is_finite() => Ok(Some(*n)),
        Some(_) => Err(()),
    };
    match (
        number(&s.throttling_burst_limit),
        number(&s.throttling_rate_limit),
    ) {
        (Ok(None), Ok(None)) => {}
        (Ok(burst), Ok(rate)) => {
            // One given: the other follows it, as API Gateway's defaults
            // keep burst and rate of the same order.
            let rate = rate.or(burst).unwrap_or_default();
            let burst = burst.unwrap_or(rate.ceil());
            if burst > f64::from(u32::MAX) || burst.fract() != 0.0 {
                c.at(
                    span.clone(),
                    "transform.stage.throttling_burst_limit",
                    "must be a whole number of requests",
                );
            } else {
                limits.throttle = Some(crate::gateway::throttle::ThrottleSettings {
                    burst_limit: burst as u32,
                    rate_limit: rate,
                });
            }
        }
        (burst, rate) => {
            for (result, key) in [
                (burst, "throttling_burst_limit"),
                (rate, "throttling_rate_limit"),
            ] {
                if result.is_err() {
                    c.at(
                        span.clone(),
                        &format!("transform.stage.{key}"),
                        "must be a number of requests (per second, for the rate), 0 or more",
                    );
                }
            }
        }
    }
    if limits.max_frame_size > limits.max_message_size {
        c.at(
            span,
            "transform.stage.max_frame_size",
            "must not be larger than max_message_size",
        );
    }
}

fn check_route(
    key: &Spanned<String>,
    value: &Spanned<toml::Value>,
    transform_handler: Option<&toml::Table>,
    transform_auth: Option<&toml::Value>,
    c: &mut Checker,
) -> Option<RouteConfig> {
    let name = key.get_ref();
    let path = format!("routes.{name}");
    let span = key.span();
    if let Err(message) = check_route_key(name) {
        let key = if name.is_empty() {
            "routes".to_string()
        } else {
            format!("routes.{}", name.escape_debug())
        };
        c.at(span, &key, message);
        return None;
    }
    // A handler string is the table `{ handler = "..." }`.
    let mut table = match value.get_ref() {
        toml::Value::String(handler) => {
            let mut table = toml::Table::new();
            table.insert("handler".into(), toml::Value::String(handler.clone()));
            table
        }
        toml::Value::Table(table) => table.clone(),
        other => {
            c.at(
                span,
                &path,
                format!(
                    "a route is a handler string (\"src/handler.main\") or a table with `handler` or `url`, not a {}",
                    other.type_str()
                ),
            );
            return None;
        }
    };
    // `transform.route.handler` is merged over every function route's
    // arguments, shallow, its keys winning, as SST's transform does.
    let is_function = table.contains_key("handler") || table.contains_key("command");
    if let (true, Some(transform)) = (is_function, transform_handler) {
        for (k, v) in transform {
            table.insert(k.clone(), v.clone());
        }
    }
    // `[transform.route.args]` likewise over every route; its `auth`
    // reaches only $connect, as SST gives every other route none.
    if let Some(auth) = transform_auth
        && name == "$connect"
    {
        table.insert("auth".into(), auth.clone());
    }
    check_handler(name, &path, table, span, c)
}

/// A handler table (a route's or an authorizer's): which integration, and
/// the function arguments.
fn check_handler(
    name: &String,
    path: &str,
    table: toml::Table,
    span: std::ops::Range<usize>,
    c: &mut Checker,
) -> Option<RouteConfig> {
    let path = path.to_string();
    let raw: RawRoute = match serde_path_to_error::deserialize(table) {
        Ok(route) => route,
        Err(e) => {
            // The failing field, when serde names one (not for an unknown key).
            let key = match e.path().to_string().as_str() {
                "." | "" => path.clone(),
                field => format!("{path}.{field}"),
            };
            c.at(span, &key, with_suggestion(e.inner().message().trim()));
            return None;
        }
    };

    let handler = match (raw.handler, raw.url, raw.command) {
        (Some(h), None, None) => {
            if !is_handler_string(&h) {
                c.at(
                    span.clone(),
                    &path,
                    format!("\"{h}\" is not a handler string: expected \"<file path>.<export>\", e.g. \"src/connect.handler\""),
                );
            } else if let Err(why) = check_handler_path(&h) {
                c.at(span.clone(), &format!("{path}.handler"), why);
            }
            HandlerSpec::Handler(h)
        }
        (None, Some(url), None) => {
            check_url(&url, &path, span.clone(), c);
            HandlerSpec::Url(url)
        }
        (None, None, Some(command)) => {
            if command.is_empty() {
                c.at(span.clone(), &path, "`command` must name a program");
            }
            HandlerSpec::Command(command)
        }
        (None, None, None) => {
            c.at(
                span,
                &path,
                "a route needs a handler: a `handler` string (\"src/handler.main\"), a `url`, or a `command`",
            );
            return None;
        }
        _ => {
            c.at(
                span,
                &path,
                "give only one of `handler`, `url` and `command`",
            );
            return None;
        }
    };

    let timeout = raw.timeout.and_then(|t| match parse_duration(&t) {
        Ok(d) if d >= Duration::from_millis(50) => Some(d),
        Ok(_) => {
            c.at(
                span.clone(),
                &format!("{path}.timeout"),
                "must be at least 50 ms",
            );
            None
        }
        Err(msg) => {
            c.at(span.clone(), &format!("{path}.timeout"), msg);
            None
        }
    });
    let memory = raw.memory.and_then(|m| {
        parse_size(&m)
            .map_err(|msg| c.at(span.clone(), &format!("{path}.memory"), msg))
            .ok()
    });
    let auth = raw.auth.and_then(|a| match (a.iam, a.lambda) {
        (Some(true), None) => Some(RouteAuth::Iam),
        (None | Some(false), Some(name)) => Some(RouteAuth::Lambda(name)),
        (Some(false) | None, None) => None,
        (Some(true), Some(_)) => {
            c.at(
                span.clone(),
                &format!("{path}.auth"),
                "choose `iam` or `lambda`, not both",
            );
            None
        }
    });

    if matches!(handler, HandlerSpec::Url(_)) {
        for (set, field) in [
            (memory.is_some(), "memory"),
            (!raw.environment.is_empty(), "environment"),
            (!raw.link.is_empty(), "link"),
            (raw.concurrency.is_some(), "concurrency"),
        ] {
            if set {
                c.at(
                    span.clone(),
                    &format!("{path}.{field}"),
                    "applies to function handlers (`handler` or `command`), not to `url` routes",
                );
            }
        }
    }
    if auth.is_some() && name != "$connect" && path.starts_with("routes.") {
        c.at(
            span.clone(),
            &format!("{path}.auth"),
            "API Gateway authorizes only at $connect; move `auth` to the $connect route",
        );
    }
    if raw.concurrency == Some(0) {
        c.at(
            span.clone(),
            &format!("{path}.concurrency"),
            "must be at least 1",
        );
    }

    Some(RouteConfig {
        key: name.clone(),
        line: c.line(span),
        handler,
        timeout,
        memory,
        environment: raw.environment,
        link: raw.link,
        auth,
        return_response: raw.return_response,
        concurrency: raw.concurrency,
        resources: Vec::new(),
        nodejs: None,
        runtime: None,
        permissions: Vec::new(),
        layers: Vec::new(),
    })
}

fn check_url(url: &str, path: &str, span: std::ops::Range<usize>, c: &mut Checker) {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" && u.host().is_some() => {}
        Ok(u) if u.scheme() == "https" => {
            c.not_supported_yet(span, &format!("{path}.url"), "an https:// integration URL")
        }
        Ok(_) => c.at(
            span,
            &format!("{path}.url"),
            format!("\"{url}\" must be an http:// URL"),
        ),
        Err(e) => c.at(
            span,
            &format!("{path}.url"),
            format!("\"{url}\" is not a URL: {e}"),
        ),
    }
}
