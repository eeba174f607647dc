use super::*;

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
    assert_eq!(config.access_log_retention, Retention::Days(30));
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
    assert!(err.starts_with("wsgate.toml:3: `routes.echo`"), "{err}");
    assert!(err.contains("retries"), "{err}");
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
fn later_features_parse_but_are_not_supported_yet() {
    let cases = [
        ("name = \"A\"\ndomain = \"ws.example.com\"", "domain"),
        (
            "name = \"A\"\n[domain]\nname = \"ws.example.com\"\npath = \"v1\"",
            "domain",
        ),
        (
            "name = \"A\"\n[routes]\n\"$connect\" = { url = \"http://127.0.0.1:1/\", auth = { iam = true } }",
            "routes.$connect.auth",
        ),
        (
            "name = \"A\"\n[[credentials]]\naccess_key_id = \"x\"",
            "credentials",
        ),
        (
            "name = \"A\"\n[transform.route.args]\nauth = 1",
            "transform.route.args",
        ),
    ];
    for (source, key) in cases {
        let err = error_text(source);
        assert!(err.contains("not supported yet"), "for {source:?}: {err}");
        assert!(err.contains(&format!("`{key}`")), "for {source:?}: {err}");
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
