//! The `wsgate` command line: argument parsing and wiring only.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wsgate::app::{self, App, ConfigFile, Options, Running};

#[derive(Parser)]
#[command(
    name = "wsgate",
    version,
    about = "A self-hosted WebSocket API gateway compatible with Amazon API Gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct AppArgs {
    /// The app definition: wsgate.toml, sst.config.ts or a CloudFormation
    /// or SAM template (default: the one in the current folder, in that
    /// order; templates as template.yaml, template.yml, template.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The SST stage (default: SST's personal stage, your user name); for
    /// a template, which stage of its API to serve.
    #[arg(long)]
    stage: Option<String>,
    /// Template parameters, as `sam deploy` takes them: `K=V` (over
    /// samconfig.toml's).
    #[arg(long, num_args = 1.., value_name = "K=V")]
    parameter_overrides: Vec<String>,
    /// A template's stack name (`AWS::StackName`; default: samconfig.toml's,
    /// else the folder's name); for a CDK app, the stack to serve.
    #[arg(long, visible_alias = "stack")]
    stack_name: Option<String>,
}

impl AppArgs {
    /// The load options these arguments give.
    fn options(&self) -> anyhow::Result<Options> {
        Ok(Options {
            stage: self.stage.clone(),
            parameter_overrides: wsgate::cloudformation::parse_overrides(&self.parameter_overrides)
                .map_err(|e| anyhow::anyhow!("--parameter-overrides: {e}"))?,
            stack_name: self.stack_name.clone(),
            ..Options::default()
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the WebSocket API(s) an app defines.
    Serve {
        #[command(flatten)]
        app: AppArgs,
        /// Address to listen on (overrides `listen` in the config) [default:
        /// 127.0.0.1:8080, and the next ports for an SST app's other APIs]
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Accept unsigned @connections calls (signed ones are still
        /// verified). Local development only.
        #[arg(long)]
        insecure_dev: bool,
        /// Clear the local tables (.wsgate/dynamodb) before starting.
        #[arg(long)]
        reset: bool,
        /// Hybrid: no local DynamoDB; functions use the app's tables on AWS
        /// with your AWS credentials (also WSGATE_AWS=1).
        #[arg(long, env = "WSGATE_AWS")]
        aws: bool,
        /// Run as one node of a cluster: NATS server URL(s), comma-separated
        /// (overrides `[cluster] nats`).
        #[arg(long, value_name = "NATS_URL")]
        cluster: Option<String>,
        /// This node's name in the cluster (default: host name and pid).
        #[arg(long)]
        node: Option<String>,
        /// On SIGTERM or Ctrl-C, how long readiness fails and new
        /// connections get 503 while open ones keep working, before the
        /// rest are closed with 1001 (a second signal closes them at once).
        #[arg(long, value_name = "DURATION", default_value = "30 seconds", value_parser = parse_drain)]
        drain_timeout: std::time::Duration,
        /// Serve the web console (/), /metrics (Prometheus), /health and
        /// /ready on this address (e.g. 127.0.0.1:9091); any non-loopback
        /// address needs a token.
        #[arg(long, value_name = "ADDR")]
        admin: Option<SocketAddr>,
        /// The token the admin listener requires: as a bearer token, or
        /// once in the console's address (`/?token=...`).
        #[arg(
            long,
            value_name = "TOKEN",
            env = "WSGATE_ADMIN_TOKEN",
            hide_env_values = true
        )]
        admin_token: Option<String>,
        /// Serve /metrics, /health and /ready on --admin without the web
        /// console, which records every event it can show (for a
        /// production node that is only scraped).
        #[arg(long)]
        no_console: bool,
    },
    /// Check an app (and start each of its functions once) without serving.
    Validate {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Show the access log of an app's API.
    Logs {
        #[command(flatten)]
        app: AppArgs,
        /// Keep printing new lines, across the daily rotation.
        #[arg(long)]
        follow: bool,
        /// Only lines from this long ago on: 30m, 1h, 2d.
        #[arg(long)]
        since: Option<String>,
        /// Only this route key.
        #[arg(long)]
        route: Option<String>,
        /// Only this connection id.
        #[arg(long)]
        connection: Option<String>,
        /// Only these statuses: 5xx, 4xx, 429.
        #[arg(long)]
        status: Option<String>,
        /// Print the lines as they are stored (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Print where the app's local certificate authority is, and how to
    /// trust it (the API is served over TLS with its certificates).
    Ca {
        #[command(flatten)]
        app: AppArgs,
    },
    /// Set, list or remove an SST app's secrets (`sst.Secret`).
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
}

#[derive(Subcommand)]
enum SecretAction {
    /// Set a secret for the stage (or, with --fallback, for every stage
    /// that sets none).
    Set {
        name: String,
        /// The value; without it, read from standard input (all of it), or
        /// from a prompt that does not echo on a terminal, as `sst secret
        /// set` reads it.
        value: Option<String>,
        #[command(flatten)]
        app: AppArgs,
        /// Set the fallback, which every stage that sets none sees.
        #[arg(long)]
        fallback: bool,
    },
    /// List the secrets a stage sees (names; values with --values).
    List {
        #[command(flatten)]
        app: AppArgs,
        /// Print each value too (`NAME=value`).
        #[arg(long)]
        values: bool,
    },
    /// Remove a secret from the stage (or the fallback).
    Remove {
        name: String,
        #[command(flatten)]
        app: AppArgs,
        /// Remove the fallback instead of the stage's own value.
        #[arg(long)]
        fallback: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WSGATE_LOG")
                // The NATS client reports every reconnection attempt at info.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Serve { .. } | Command::Validate { .. }
    ) {
        // Forked now, while the process is small and has one thread.
        wsgate::process::reaper::ensure_started();
        wsgate::memory::return_freed_memory_periodically();
    }
    let open_files = wsgate::resources::raise_open_files_limit();
    tracing::debug!(open_files, "open file limit");
    let result = match cli.command {
        Command::Serve {
            app,
            listen,
            insecure_dev,
            reset,
            aws,
            cluster,
            node,
            drain_timeout,
            admin,
            admin_token,
            no_console,
        } => app.options().and_then(|options| {
            runtime().and_then(|rt| {
                rt.block_on(serve(
                    &app,
                    Shutdown {
                        drain: drain_timeout,
                        admin,
                        admin_token,
                        console: !no_console,
                    },
                    Options {
                        listen,
                        serving: true,
                        insecure_dev,
                        reset,
                        aws,
                        cluster,
                        node,
                        without_secrets: false,
                        ..options
                    },
                ))
            })
        }),
        Command::Validate { app } => runtime().and_then(|rt| rt.block_on(validate(&app))),
        Command::Logs {
            app,
            follow,
            since,
            route,
            connection,
            status,
            json,
        } => runtime()
            .and_then(|rt| rt.block_on(logs(&app, follow, since, route, connection, status, json))),
        Command::Secret { action } => secret(action),
        Command::Ca { app } => ca(&app),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

fn config_file(args: &AppArgs) -> anyhow::Result<ConfigFile> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    app::find_config(args.config.as_deref(), &cwd).map_err(anyhow::Error::msg)
}

async fn validate(args: &AppArgs) -> anyhow::Result<()> {
    let file = config_file(args)?;
    let options = args.options()?;
    let mut app = App::load(file.clone(), &options).await?;
    app.check(&options).await?;
    for (config, _) in &app.apis {
        println!(
            "{} is valid: API {} with {} route(s)",
            file.path().display(),
            config.name,
            config.routes.len()
        );
    }
    Ok(())
}

fn parse_drain(text: &str) -> Result<std::time::Duration, String> {
    let duration = wsgate::config::parse_duration(text)?;
    if duration > std::time::Duration::from_secs(3600) {
        return Err("at most 1h".into());
    }
    Ok(duration)
}

/// `serve`'s operating options: the drain and the admin listener.
struct Shutdown {
    drain: std::time::Duration,
    admin: Option<SocketAddr>,
    admin_token: Option<String>,
    /// The web console on the admin listener.
    console: bool,
}

async fn serve(args: &AppArgs, shutdown: Shutdown, options: Options) -> anyhow::Result<()> {
    let file = config_file(args)?;
    if options.insecure_dev {
        tracing::warn!(
            "--insecure-dev: UNSIGNED @connections CALLS ARE ACCEPTED. Anyone who can reach the API can push to and close every connection. Never use this outside local development."
        );
    }
    // Listening first: /health answers and /ready says "starting" while
    // the handlers pass their start-up check.
    let admin = match shutdown.admin {
        Some(addr) => {
            Some(wsgate::admin::Admin::start(addr, shutdown.admin_token, shutdown.console).await?)
        }
        None => None,
    };
    let app = App::load(file.clone(), &options).await?;
    let mut running = app.serve(&options).await?;
    // From here on a signal drains (until now it simply ended the process).
    let mut signals = Signals::new()?;
    if let Some(admin) = &admin {
        admin.serving(
            running
                .servers
                .iter()
                .map(|(_, server)| wsgate::admin::console::ServedApi {
                    gateway: server.gateway(),
                    url: server.url(),
                    management_endpoint: server.management_endpoint(),
                })
                .collect(),
        );
    }
    print_started(&file, &running, admin.as_deref())?;
    // SIGHUP, or saving the config file, reloads it; SIGTERM/SIGINT stop.
    let (_watcher, mut changes) = watch_config(&file);
    loop {
        tokio::select! {
            stop = signals.next() => match stop {
                Stop::Reload => running.reload(&options).await,
                Stop::Terminate => break,
            },
            Some(()) = changes.recv() => {
                // Editors write in steps: wait until 300 ms pass without
                // one (at most 5 s), then reload (which also waits for
                // the file to read the same twice).
                let quiet = std::time::Duration::from_millis(300);
                let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                while let Ok(Some(())) = tokio::time::timeout(quiet, changes.recv()).await {
                    if tokio::time::Instant::now() > give_up {
                        break;
                    }
                }
                running.reload(&options).await;
            }
        }
    }
    if let Some(admin) = &admin {
        admin.draining();
    }
    running
        .drain(shutdown.drain, async {
            while signals.next().await == Stop::Reload {}
        })
        .await;
    tracing::info!("shutting down: closing connections with 1001 and running $disconnect");
    running.shutdown().await;
    if let Some(admin) = &admin {
        admin.stop();
    }
    tracing::info!("stopped");
    Ok(())
}

/// What `serve` prints once it accepts connections; the outputs file is
/// written first, so whoever reads the printed lines finds it.
fn print_started(
    file: &ConfigFile,
    running: &Running,
    admin: Option<&wsgate::admin::Admin>,
) -> anyhow::Result<()> {
    let dir = file.dir();
    let outputs_file = write_outputs(dir, &outputs_json(running)?)?;
    if let Some(about) = &running.about {
        println!("wsgate: {}", about.title);
        if !about.stand_ins.is_empty() {
            println!("  not run locally:    {}", about.stand_ins.join("; "));
        }
        for notice in &about.notices {
            println!("  note:               {notice}");
        }
    }
    for (config, server) in &running.servers {
        let outputs = server.outputs();
        println!(
            "wsgate: {} listening on {}",
            config.name,
            server.local_addr()
        );
        for (key, handler) in server.describe_routes() {
            println!("  route {key:<14} {handler}");
        }
        println!("  url:                {}", outputs.url);
        println!("  managementEndpoint: {}", outputs.management_endpoint);
        println!(
            "  access log:         {} (kept {})",
            wsgate::access_log::writer::log_dir(config.dir(), &config.name, &config.stage)
                .display(),
            config.access_log_retention
        );
        if let Some(credentials) = server.generated_credentials() {
            let exports = format!(
                "export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={region} AWS_DEFAULT_REGION={region}",
                credentials.access_key_id,
                credentials.secret_access_key,
                region = server.region()
            );
            let key_file = write_credentials(dir, &exports)?;
            println!(
                "  no [[credentials]] configured; this run's key (also in {}):",
                key_file.display()
            );
            println!("{exports}");
        }
    }
    if let Some(endpoint) = running.services.dynamodb.as_ref().map(|d| &d.endpoint) {
        println!("  dynamodb:           {endpoint} (AWS_ENDPOINT_URL_DYNAMODB)");
    }
    if let Some(endpoint) = running.services.lambda.as_ref().map(|l| &l.endpoint) {
        println!("  lambda:             {endpoint} (AWS_ENDPOINT_URL_LAMBDA; signed calls only)");
    }
    if let Some(serde_json::Value::Object(returned)) = running.about.as_ref().map(|a| &a.outputs) {
        for (key, value) in returned {
            println!("  output {key}: {value}");
        }
    }
    println!("  outputs written to  {}", outputs_file.display());
    if let Some(admin) = admin {
        let addr = admin.local_addr();
        if admin.console() {
            println!("  console:            http://{addr}/");
        }
        println!("  admin:              http://{addr}/metrics, /health, /ready");
    }
    println!("ready: Ctrl-C or SIGTERM stops it gracefully (twice: at once)");
    Ok(())
}

/// `.wsgate/outputs.json`: a wsgate.toml app's `url` and
/// `managementEndpoint`; an SST app's run() outputs and each API's.
fn outputs_json(running: &Running) -> anyhow::Result<serde_json::Value> {
    if running.about.is_none()
        && let [(_, server)] = running.servers.as_slice()
    {
        return Ok(serde_json::to_value(server.outputs())?);
    }
    let mut all = serde_json::Map::new();
    for (config, server) in &running.servers {
        all.insert(config.name.clone(), serde_json::to_value(server.outputs())?);
    }
    if let Some(serde_json::Value::Object(returned)) = running.about.as_ref().map(|a| &a.outputs) {
        all.extend(returned.clone());
    }
    Ok(serde_json::Value::Object(all))
}

fn write_outputs(dir: &Path, outputs: &serde_json::Value) -> anyhow::Result<PathBuf> {
    let folder = dir.join(".wsgate");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let file = folder.join("outputs.json");
    let json = serde_json::to_string_pretty(outputs)?;
    std::fs::write(&file, json + "\n")
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}

#[allow(clippy::too_many_arguments)]
async fn logs(
    args: &AppArgs,
    follow: bool,
    since: Option<String>,
    route: Option<String>,
    connection: Option<String>,
    status: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use wsgate::access_log::reader::{self, Filter};
    let file = config_file(args)?;
    let options = Options {
        without_secrets: true,
        ..args.options()?
    };
    let app = App::load(file.clone(), &options).await?;
    let since = since
        .map(|s| reader::parse_since(&s))
        .transpose()
        .map_err(anyhow::Error::msg)?
        .map(|d| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
                .ok_or_else(|| anyhow::anyhow!("--since reaches before any date"))
        })
        .transpose()?;
    let (config, _) = app
        .apis
        .first()
        .ok_or_else(|| anyhow::anyhow!("the app defines no API"))?;
    // A filter on a field the format does not write would match nothing.
    for (given, flag, variable) in [
        (since.is_some(), "--since", "requestTime"),
        (route.is_some(), "--route", "routeKey"),
        (connection.is_some(), "--connection", "connectionId"),
        (status.is_some(), "--status", "status"),
    ] {
        if given && !config.access_log_format.records(variable) {
            anyhow::bail!(
                "{flag} filters on $context.{variable}, which this API's access log format does not record"
            );
        }
    }
    let filter = Filter {
        since,
        route,
        connection,
        status: status
            .map(|s| reader::parse_status(&s))
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    let dir = wsgate::access_log::writer::log_dir(config.dir(), &config.name, &config.stage);
    let shown = reader::Shown {
        json,
        color: !json && std::io::stdout().is_terminal(),
    };
    if let Some(cluster) = &config.cluster {
        return cluster_logs(config, cluster, &dir, &filter, shown, follow).await;
    }
    if !dir.is_dir() && !follow {
        eprintln!("no access log yet in {}", dir.display());
        return Ok(());
    }
    let format = &config.access_log_format;
    reader::print(
        &dir,
        format,
        &filter,
        shown,
        follow,
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

/// A cluster's access log: each node's folder on this machine, or with
/// `--follow` every node's new lines, wherever it runs, through NATS.
async fn cluster_logs(
    config: &wsgate::config::Config,
    cluster: &wsgate::config::ClusterSettings,
    dir: &Path,
    filter: &wsgate::access_log::reader::Filter,
    shown: wsgate::access_log::reader::Shown,
    follow: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    use wsgate::access_log::reader;
    if follow {
        let api_id = config
            .api_id
            .clone()
            .unwrap_or_else(|| wsgate::ids::api_id_for(&config.name));
        let mut out = std::io::stdout().lock();
        wsgate::cluster::follow_access_log(cluster, &api_id, &config.stage, |node, line| {
            let Some(text) = reader::show(line, &config.access_log_format, filter, shown) else {
                return true;
            };
            let text = match shown.json {
                true => text,
                false => format!("{node}  {text}"),
            };
            writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
        })
        .await
        .map_err(anyhow::Error::msg)?;
        return Ok(());
    }
    let mut nodes: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    if nodes.is_empty() {
        eprintln!("no access log yet in {}", dir.display());
    }
    let mut out = std::io::stdout().lock();
    for node in nodes {
        let name = node
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !shown.json {
            writeln!(out, "== node {name}")?;
        }
        reader::print(
            &node,
            &config.access_log_format,
            filter,
            shown,
            false,
            &mut out,
        )?;
    }
    Ok(())
}

fn secret(action: SecretAction) -> anyhow::Result<()> {
    use wsgate::sst::secrets;
    let (args, fallback) = match &action {
        SecretAction::Set { app, fallback, .. } | SecretAction::Remove { app, fallback, .. } => {
            (app, *fallback)
        }
        SecretAction::List { app, .. } => (app, false),
    };
    let file = config_file(args)?;
    let dir = file.dir();
    let stage = args
        .stage
        .clone()
        .unwrap_or_else(|| wsgate::sst::default_stage(dir));
    let scope = (!fallback).then_some(stage.as_str());
    match action {
        SecretAction::Set { name, value, .. } => {
            secrets::check_name(&name).map_err(anyhow::Error::msg)?;
            let value = match value {
                Some(value) => value,
                None => read_secret_value()?,
            };
            secrets::set(dir, scope, &name, &value).map_err(anyhow::Error::msg)?;
            match scope {
                Some(stage) => println!("set {name} for stage {stage}"),
                None => println!("set {name} as the fallback for every stage"),
            }
        }
        SecretAction::Remove { name, .. } => {
            if secrets::remove(dir, scope, &name).map_err(anyhow::Error::msg)? {
                println!("removed {name}");
            } else {
                anyhow::bail!("{name} is not set");
            }
        }
        SecretAction::List { values, .. } => {
            for (name, value) in secrets::for_stage(dir, &stage).map_err(anyhow::Error::msg)? {
                if values {
                    println!("{name}={value}");
                } else {
                    println!("{name}");
                }
            }
        }
    }
    Ok(())
}

/// A secret's value from standard input, as `sst secret set` reads it
/// (cmd/sst/secret.go): on a terminal, one line at an "Enter value: "
/// prompt (here without echo); otherwise everything until the end.
fn read_secret_value() -> anyhow::Result<String> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut value = String::new();
        stdin
            .lock()
            .read_to_string(&mut value)
            .context("cannot read the value from standard input")?;
        return Ok(value);
    }
    // rpassword: the terminal's echo off while the line is typed.
    rpassword::prompt_password("Enter value: ").context("cannot read the value")
}

fn ca(args: &AppArgs) -> anyhow::Result<()> {
    let file = config_file(args)?;
    let ca = wsgate::local_ca::LocalCa::open(&wsgate::local_ca::dir(file.dir()))
        .map_err(anyhow::Error::msg)?;
    println!("{}", wsgate::local_ca::trust_instructions(&ca.cert_path()));
    Ok(())
}

/// Writes the generated key as shell exports, readable by the owner only.
fn write_credentials(dir: &Path, exports: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let folder = dir.join(".wsgate");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let path = folder.join("credentials");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An older file keeps its mode when opened: tighten it in any case.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{exports}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// SIGTERM and SIGINT (Ctrl-C) stop, SIGHUP reloads; listened for from
/// the start so that a second stop during the drain is heard too.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Terminate,
    Reload,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            hangup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    async fn next(&mut self) -> Stop {
        tokio::select! {
            _ = self.terminate.recv() => Stop::Terminate,
            _ = self.interrupt.recv() => Stop::Terminate,
            _ = self.hangup.recv() => Stop::Reload,
        }
    }
}

/// A message each time the config file is written or replaced (its
/// folder is watched: editors often save by renaming a new file over it);
/// for a CDK app, each time a file `cdk watch` would watch changes.
/// Nothing arrives if the folder cannot be watched; SIGHUP still works.
fn watch_config(
    file: &ConfigFile,
) -> (
    Option<notify::RecommendedWatcher>,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    use notify::Watcher;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let path = file.path();
    let Some(name) = path.file_name().map(|n| n.to_os_string()) else {
        return (None, rx);
    };
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    // Events name absolute paths; the rules compare against this one.
    let folder = std::fs::canonicalize(&folder).unwrap_or(folder);
    let cdk_rules = match file {
        ConfigFile::Cdk(_) => match wsgate::cloudformation::cdk::WatchRules::read(&folder) {
            Ok(rules) => Some(rules),
            Err(error) => {
                tracing::warn!(%error, "cannot watch the CDK app for changes; SIGHUP synthesizes it anew");
                return (None, rx);
            }
        },
        _ => None,
    };
    let recursive = cdk_rules.is_some();
    let watched_folders: Vec<PathBuf> = match &cdk_rules {
        Some(rules) => std::fs::read_dir(&folder)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| p.is_dir() && rules.may_hold_watched(p))
            .collect(),
        None => Vec::new(),
    };
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let ours = event.paths.iter().any(|p| match &cdk_rules {
            Some(rules) => rules.watches(p),
            None => p.file_name() == Some(name.as_os_str()),
        });
        let removed = recursive && event.kind.is_remove();
        if ours && (event.kind.is_modify() || event.kind.is_create() || removed) {
            let _ = tx.send(());
        }
    });
    let watching = watcher.and_then(|mut watcher| {
        watcher.watch(&folder, notify::RecursiveMode::NonRecursive)?;
        // A CDK app's folders, each with all it holds, but not the ones
        // never watched (node_modules, cdk.out: thousands of folders).
        for sub in watched_folders {
            watcher.watch(&sub, notify::RecursiveMode::Recursive)?;
        }
        Ok(watcher)
    });
    match watching {
        Ok(watcher) => (Some(watcher), rx),
        Err(error) => {
            tracing::warn!(%error, "cannot watch the config for changes; SIGHUP reloads it");
            (None, rx)
        }
    }
}
