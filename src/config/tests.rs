use super::*;
use std::path::Path;
use std::time::Duration;

fn parse_str(source: &str) -> Result<Config, ConfigError> {
    parse(Path::new("wsgate.toml"), source)
}

fn error_text(source: &str) -> String {
    parse_str(source).unwrap_err().to_string()
}

#[test]
fn minimal_config_gets_sst_defaults() {
    let config = parse_str("name = \"MyApi\"\n").unwrap();
    assert_eq!(config.name, "MyApi");
    assert_eq!(config.stage, "$default");
    assert_eq!(config.route_selection_expression, "$request.body.action");
    assert_eq!(config.access_log_retention, Retention::Forever);
    assert_eq!(config.binary, BinaryMode::Reject);
    assert!(config.routes.is_empty());
}

#[test]
fn url_routes_parse_with_options() {
    let config = parse_str(
        r#"
name = "MyApi"
stage = "prod"
listen = "127.0.0.1:9999"
binary = "base64"

[access_log]
retention = "1 week"

[transform.stage]
idle_timeout = "30 seconds"
max_message_size = "64 KB"

[routes]
"$connect" = { url = "http://127.0.0.1:9000/connect" }
echo = { url = "http://127.0.0.1:9000/echo", return_response = true, timeout = "10 seconds" }
"#,
    )
    .unwrap();
    assert_eq!(config.stage, "prod");
    assert_eq!(config.listen, Some("127.0.0.1:9999".parse().unwrap()));
    assert_eq!(config.binary, BinaryMode::Base64);
    assert_eq!(config.access_log_retention, Retention::Days(7));
    assert_eq!(config.limits.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.limits.max_message_size, 64 * 1024);
    let echo = config.routes.iter().find(|r| r.key == "echo").unwrap();
    assert!(echo.return_response);
    assert_eq!(echo.timeout, Some(Duration::from_secs(10)));
    assert_eq!(echo.line, 16);
    assert_eq!(
        echo.handler,
        HandlerSpec::Url("http://127.0.0.1:9000/echo".into())
    );
}

#[test]
fn unknown_keys_name_file_line_and_key() {
    let err = error_text("name = \"MyApi\"\nbogus = 1\n");
    assert!(err.starts_with("wsgate.toml:2"), "{err}");
    assert!(err.contains("bogus"), "{err}");

    let err = error_text(
        "name = \"MyApi\"\n[routes]\necho = { url = \"http://127.0.0.1:1/\", retries = 3 }\n",
    );
    assert!(
        err.starts_with("wsgate.toml:3: `routes.echo.retries`"),
        "{err}"
    );
}

#[test]
fn near_miss_keys_get_a_suggestion() {
    let err = error_text("name = \"MyApi\"\nlisen = \"127.0.0.1:1\"\n");
    assert!(
        err.starts_with("wsgate.toml:2: `lisen`: unknown field `lisen`: did you mean `listen`?"),
        "{err}"
    );
    let err = error_text(
        "name = \"MyApi\"\n[routes.a]\nurl = \"http://127.0.0.1:1/\"\ntimout = \"1 second\"\n",
    );
    assert!(err.contains("did you mean `timeout`?"), "{err}");
    let err = error_text("name = \"MyApi\"\nbanana = 1\n");
    assert!(!err.contains("did you mean"), "{err}");
}

/// Problems found after parsing point at the key's own line and name the
/// whole key, not the table's header.
#[test]
fn problems_point_at_the_keys_own_line() {
    let route = "name = \"MyApi\"\n[routes.\"$default\"]\nurl = \"http://127.0.0.1:1/\"\n";
    let cases = [
        (
            format!("{route}\ntimeout = 10\n"),
            "wsgate.toml:5: `routes.$default.timeout`: invalid type",
        ),
        (
            format!("{route}[transform.stage]\n\nidle_timeout = \"x\"\n"),
            "wsgate.toml:6: `transform.stage.idle_timeout`",
        ),
        (
            format!("{route}[transform.stage]\n\nmax_message_size = -1\n"),
            "wsgate.toml:6: `transform.stage.max_message_size`: invalid type",
        ),
        (
            format!(
                "{route}[[credentials]]\naccess_key_id = \"AKIAEXAMPLEEXAMPLE1\"\n\nsecret_access_key = 5\n"
            ),
            "wsgate.toml:7: `credentials[0].secret_access_key`: invalid type",
        ),
        (
            format!(
                "{route}[domain]\nname = \"a.example.com\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n\ndns = true\n"
            ),
            "wsgate.toml:9: `domain.dns`",
        ),
    ];
    for (source, expected) in cases {
        let err = error_text(&source);
        assert!(err.starts_with(expected), "{source}\n{err}");
    }
}

#[test]
fn bad_values_are_clear_errors() {
    let cases = [
        ("name = \"1Api\"", "wsgate.toml:1: `name`"),
        ("name = \"A\"\nstage = \"a b\"", "wsgate.toml:2: `stage`"),
        (
            "name = \"A\"\n[routes]\n\"\" = \"src/a.handler\"",
            "must not be empty",
        ),
        (
            "name = \"A\"\n[routes]\necho = { url = \"http://127.0.0.1:1/\", timeout = \"soon\" }",
            "`routes.echo.timeout`",
        ),
        (
            "name = \"A\"\n[routes]\necho = { timeout = \"1 second\" }",
            "needs a handler",
        ),
        ("name = \"A\"\n[routes]\necho = 42", "not a integer"),
        (
            "name = \"A\"\n[routes]\necho = \"nodot\"",
            "not a handler string",
        ),
        (
            "name = \"A\"\n[routes]\n\"$weird\" = { url = \"http://127.0.0.1:1/\" }",
            "reserved",
        ),
        (
            "name = \"A\"\n[access_log]\nretention = \"4 days\"",
            "\"forever\"",
        ),
        ("name = \"A\"\nlisten = \"nowhere\"", "`listen`"),
        (
            "name = \"A\"\nroute_selection_expression = \"$request.header.x\"",
            "route_selection_expression",
        ),
        (
            "name = \"A\"\n[routes]\necho = { url = \"http://127.0.0.1:1/\", memory = \"1 GB\" }",
            "not to `url` routes",
        ),
        (
            "name = \"A\"\n[routes]\necho = { url = \"http://127.0.0.1:1/\", auth = { iam = true } }",
            "authorizes only at $connect",
        ),
        (
            "name = \"A\"\n[transform.stage]\nidle_timeout = \"0 seconds\"",
            "greater than zero",
        ),
    ];
    for (source, expected) in cases {
        let err = error_text(source);
        assert!(err.contains(expected), "for {source:?}: {err}");
    }
}

#[test]
fn https_integrations_are_not_supported_yet() {
    let err = error_text("name = \"A\"\n[routes]\necho = { url = \"https://example.com/\" }");
    assert!(err.contains("not supported yet"), "{err}");
    assert!(err.contains("`routes.echo.url`"), "{err}");
}

#[test]
fn domain_certificates_from_acme() {
    let config = parse_str(
        "name = \"A\"\n[domain]\nname = \"ws.example.com\"\nacme = { email = \"ops@example.com\", directory_ca = \"pebble.pem\" }",
    )
    .unwrap();
    let domain = config.domain.unwrap();
    let crate::domain::CertificateSource::Acme(acme) = domain.certificate else {
        panic!("not ACME");
    };
    assert_eq!(acme.email, "ops@example.com");
    assert_eq!(acme.directory, crate::domain::LETS_ENCRYPT);
    assert_eq!(acme.directory_ca.as_deref(), Some(Path::new("pebble.pem")));
    assert_eq!(acme.cache, Path::new(".wsgate/acme/ws.example.com"));
}

#[test]
fn domain_takes_sst_keys_and_pem_files() {
    let config = parse_str(
        "name = \"A\"\n[domain]\nname = \"ws.example.com\"\npath = \"/v1/\"\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\ndns = false",
    )
    .unwrap();
    let domain = config.domain.unwrap();
    assert_eq!(domain.name, "ws.example.com");
    assert_eq!(domain.path.as_deref(), Some("v1"));
    assert_eq!(
        domain.certificate,
        crate::domain::CertificateSource::Files {
            cert: Path::new("tls/cert.pem").into(),
            key: Path::new("tls/key.pem").into(),
        }
    );
    let cases = [
        ("domain = \"ws.example.com\"", "`domain`", "cert"),
        (
            "[domain]\nname = \"ws.example.com\"",
            "`domain.cert`",
            "PEM",
        ),
        (
            "[domain]\nname = \"a b\"\ncert = \"c\"\nkey = \"k\"",
            "`domain.name`",
            "host name",
        ),
        (
            "[domain]\nname = \"x.com\"\ncert = \"arn:aws:acm:us-east-1:1:certificate/x\"\nkey = \"k\"",
            "`domain.cert`",
            "AWS",
        ),
        (
            "[domain]\nname = \"x.com\"\ncert = \"c\"\nkey = \"k\"\ndns = \"cloudflare\"",
            "`domain.dns`",
            "AWS",
        ),
        (
            "[domain]\nname = \"x.com\"\ncert = \"c\"\nkey = \"k\"\npath = \"a/b\"",
            "`domain.path`",
            "one segment",
        ),
        (
            "[domain]\nname = \"x.com\"\nacme = true",
            "`domain.acme`",
            "a table",
        ),
        (
            "[domain]\nname = \"x.com\"\ncert = \"c\"\nkey = \"k\"\nacme = { email = \"a@x.com\" }",
            "`domain.cert`",
            "not both",
        ),
        (
            "[domain]\nname = \"x.com\"\nacme = { }",
            "`domain.acme.email`",
            "email address",
        ),
        (
            "[domain]\nname = \"x.com\"\nacme = { email = \"a@x.com\", directory = \"http://insecure/dir\" }",
            "`domain.acme.directory`",
            "https://",
        ),
        (
            "[domain]\nname = \"x.com\"\nacme = { email = \"a@x.com\", dir = \"x\" }",
            "`domain.acme.dir`",
            "unknown key",
        ),
    ];
    for (source, key, words) in cases {
        let err = error_text(&format!("name = \"A\"\n{source}"));
        assert!(
            err.contains(key) && err.contains(words),
            "for {source:?}: {err}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = parse_str("name = \"1\"\nstage = \"a b\"\n").unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
}

#[test]
fn function_routes_take_transform_route_handler() {
    let config = parse_str(
        r#"
name = "A"
[transform.route.handler]
timeout = "3 seconds"
memory = "256 MB"
[routes]
"$default" = "src/default.handler"
run = { command = ["./bin/handler", "--flag"], concurrency = 4 }
web = { url = "http://127.0.0.1:1/" }
"#,
    )
    .unwrap();
    let route = |key: &str| config.routes.iter().find(|r| r.key == key).unwrap();
    assert_eq!(
        route("$default").handler,
        HandlerSpec::Handler("src/default.handler".into())
    );
    assert_eq!(route("$default").timeout, Some(Duration::from_secs(3)));
    assert_eq!(route("run").memory, Some(256 * 1024 * 1024));
    assert_eq!(route("run").concurrency, Some(4));
    assert_eq!(
        route("web").timeout,
        None,
        "transforms of handlers leave url routes alone"
    );
}

#[test]
fn credentials_authorizers_and_route_auth() {
    // SAFETY: set before any thread of this test reads it; the name is unique.
    unsafe { std::env::set_var("WSGATE_TEST_SECRET_1", "s3cret") };
    let config = parse_str(
        r#"
name = "A"
region = "eu-west-1"
[[credentials]]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key_env = "WSGATE_TEST_SECRET_1"
user = "backend"
allow = [{ action = "execute-api:ManageConnections", resource = "arn:aws:execute-api:*:*:*/*/POST/@connections/*" }, { action = "execute-api:Invoke" }]
[authorizers.Token]
handler = "src/auth.handler"
identity_sources = ["route.request.header.Auth", "route.request.querystring.token"]
[routes]
"$connect" = { handler = "src/connect.handler", auth = { lambda = "Token" } }
"#,
    )
    .unwrap();
    assert_eq!(config.region, "eu-west-1");
    let key = &config.credentials[0];
    assert_eq!(key.secret_access_key, "s3cret");
    assert_eq!(key.user, "backend");
    assert_eq!(key.allow[1].resource, "*");
    let authorizer = &config.authorizers[0];
    assert_eq!(authorizer.name, "Token");
    assert_eq!(
        authorizer.identity_sources,
        vec![
            IdentitySource::Header("Auth".into()),
            IdentitySource::QueryString("token".into())
        ]
    );
    assert_eq!(
        config.routes[0].auth,
        Some(RouteAuth::Lambda("Token".into()))
    );
    let defaults =
        parse_str("name = \"A\"\n[authorizers.T]\nurl = \"http://127.0.0.1:1/\"").unwrap();
    assert_eq!(defaults.region, "us-east-1");
    assert_eq!(
        defaults.authorizers[0].identity_sources,
        vec![IdentitySource::Header("Authorization".into())]
    );
}

#[test]
fn bad_credentials_and_auth_are_named() {
    let cases = [
        ("region = \"mars\"", "region"),
        (
            "[[credentials]]\naccess_key_id = \"short\"\nsecret_access_key = \"x\"\nallow = [{ action = \"*\" }]",
            "credentials[0].access_key_id",
        ),
        (
            "[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nallow = [{ action = \"*\" }]",
            "credentials[0]",
        ),
        (
            "[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key_env = \"WSGATE_TEST_UNSET_VAR\"\nallow = [{ action = \"*\" }]",
            "credentials[0].secret_access_key_env",
        ),
        (
            "[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key = \"x\"",
            "credentials[0].allow",
        ),
        (
            "[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key = \"x\"\nallow = [{ action = \"s3:GetObject\" }]",
            "credentials[0].allow",
        ),
        (
            "[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key = \"x\"\nallow = [{ action = \"*\", resource = \"arn:aws:s3:::b\" }]",
            "credentials[0].allow",
        ),
        (
            "[routes]\n\"$connect\" = { url = \"http://127.0.0.1:1/\", auth = { lambda = \"Nope\" } }",
            "routes.$connect.auth.lambda",
        ),
        (
            "[routes]\n\"$default\" = { url = \"http://127.0.0.1:1/\", auth = { iam = true } }",
            "routes.$default.auth",
        ),
        (
            "[authorizers.T]\nurl = \"http://127.0.0.1:1/\"\nidentity_sources = [\"route.request.body.x\"]",
            "authorizers.T.identity_sources",
        ),
        ("[authorizers.T]\nidentity_sources = []", "authorizers.T"),
    ];
    for (source, key) in cases {
        let err = error_text(&format!("name = \"A\"\n{source}"));
        assert!(err.contains(&format!("`{key}`")), "for {source:?}: {err}");
    }
}

#[test]
fn transform_stage_throttling_api_and_route_args() {
    let config = parse_str(
        r#"
name = "A"
[transform.stage]
throttling_burst_limit = 50
throttling_rate_limit = 12.5
[transform.api]
route_selection_expression = "$request.body.type"
api_id = "abc123xyz0"
[transform.route.args]
auth = { iam = true }
[routes]
"$connect" = { url = "http://127.0.0.1:1/" }
"$default" = { url = "http://127.0.0.1:1/" }
"#,
    )
    .unwrap();
    let throttle = config.limits.throttle.unwrap();
    assert_eq!((throttle.burst_limit, throttle.rate_limit), (50, 12.5));
    assert_eq!(config.route_selection_expression, "$request.body.type");
    assert_eq!(config.api_id.as_deref(), Some("abc123xyz0"));
    let auth = |key: &str| {
        config
            .routes
            .iter()
            .find(|r| r.key == key)
            .unwrap()
            .auth
            .clone()
    };
    assert_eq!(auth("$connect"), Some(RouteAuth::Iam));
    assert_eq!(auth("$default"), None, "SST gives other routes no auth");

    let rate_only =
        parse_str("name = \"A\"\n[transform.stage]\nthrottling_rate_limit = 7").unwrap();
    let throttle = rate_only.limits.throttle.unwrap();
    assert_eq!((throttle.burst_limit, throttle.rate_limit), (7, 7.0));
    for (source, key) in [
        (
            "[transform.stage]\nthrottling_burst_limit = -1",
            "transform.stage.throttling_burst_limit",
        ),
        (
            "[transform.stage]\nthrottling_rate_limit = \"fast\"",
            "transform.stage.throttling_rate_limit",
        ),
        (
            "[transform.api]\napi_id = \"Not An Id\"",
            "transform.api.api_id",
        ),
        (
            "[transform.api]\nroute_selection_expression = \"action\"",
            "transform.api.route_selection_expression",
        ),
        (
            "[transform.route.args]\nreturn_response = true",
            "unknown field `return_response`",
        ),
    ] {
        let err = error_text(&format!("name = \"A\"\n{source}"));
        assert!(err.contains(key), "for {source:?}: {err}");
    }
}

#[test]
fn a_huge_duration_is_a_config_error_with_its_line() {
    let error = error_text(
        "name = \"MyApi\"\n[routes]\necho = { url = \"http://127.0.0.1:9/\", timeout = \"1e300 seconds\" }\n",
    );
    assert!(
        error.starts_with("wsgate.toml:3: `routes.echo.timeout`"),
        "{error}"
    );
    let error =
        error_text("name = \"MyApi\"\n[transform.stage]\nidle_timeout = \"1e300 seconds\"\n");
    assert!(error.contains("idle_timeout"), "{error}");
    assert!(error.contains("maximum duration"), "{error}");
}

#[test]
fn control_characters_in_route_keys_are_refused() {
    for key in ["a\\u0000b", "tab\\there", "bell\\u0007", "del\\u007f"] {
        let error = error_text(&format!(
            "name = \"MyApi\"\n[routes]\n\"{key}\" = {{ url = \"http://127.0.0.1:9/\" }}\n"
        ));
        assert!(error.contains("control characters"), "{key}: {error}");
        assert!(error.starts_with("wsgate.toml:3:"), "{error}");
    }
}

#[test]
fn handler_paths_stay_in_the_app_folder() {
    for handler in [
        "/etc/passwd.handler",
        "../outside.handler",
        "src/../../outside.handler",
        "~/home.handler",
    ] {
        let error = error_text(&format!(
            "name = \"MyApi\"\n[routes]\n\"$default\" = \"{handler}\"\n"
        ));
        assert!(
            error.contains("outside the app's folder"),
            "{handler}: {error}"
        );
        assert!(error.contains("routes.$default.handler"), "{error}");
    }
    for handler in ["src/a.handler", "./src/a.handler", "src/x/../a.handler"] {
        assert!(check_handler_path(handler).is_ok(), "{handler}");
    }
}

#[test]
fn checking_is_linear_in_the_number_of_routes() {
    // 100,000 routes took more than a minute when each line number was
    // counted from the start of the file; the bound here is only a guard
    // against that (bench/config.rs measures the rate).
    let mut source = String::from("name = \"MyApi\"\n[routes]\n");
    for i in 0..100_000 {
        source.push_str(&format!("r{i} = {{ url = \"http://127.0.0.1:9/{i}\" }}\n"));
    }
    let started = std::time::Instant::now();
    let config = parse_str(&source).unwrap();
    assert_eq!(config.routes.len(), 100_000);
    assert_eq!(
        config
            .routes
            .iter()
            .find(|r| r.key == "r99999")
            .unwrap()
            .line,
        100_002
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_access_log_format_without_a_request_id_is_refused_as_aws_refuses_it() {
    let error = error_text(
        "name = \"A\"\n[transform.access_log]\nformat = \"$context.routeKey $context.status\"\n",
    );
    assert!(
        error.contains("must include $context.requestId or $context.extendedRequestId"),
        "{error}"
    );
}

#[test]
fn a_missing_name_is_reported_as_missing() {
    let error = error_text(
        "stage = \"dev\"\n[routes]\n\"$default\" = { url = \"http://127.0.0.1:1/x\" }\n",
    );
    assert!(error.contains("`name` is missing"), "{error}");
    assert!(!error.contains("wsgate.toml:1"), "{error}");
}
