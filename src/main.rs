//! The `wsgate` command line: argument parsing and wiring only.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wsgate::{Outputs, WebSocketApi, config};

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

#[derive(Subcommand)]
enum Command {
    /// Serve the WebSocket API a config file describes.
    Serve {
        /// The app definition.
        #[arg(long, default_value = "wsgate.toml")]
        config: PathBuf,
        /// Address to listen on (overrides `listen` in the config).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Accept unsigned @connections calls (signed ones are still
        /// verified). Local development only.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Check a config file without serving it.
    Validate {
        #[arg(long, default_value = "wsgate.toml")]
        config: PathBuf,
    },
    /// Show the access log of the API a config file describes.
    Logs {
        #[arg(long, default_value = "wsgate.toml")]
        config: PathBuf,
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
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WSGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
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
            config,
            listen,
            insecure_dev,
        } => tokio::runtime::Runtime::new()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(serve(&config, listen, insecure_dev))),
        Command::Validate { config } => validate(&config),
        Command::Logs {
            config,
            follow,
            since,
            route,
            connection,
            status,
            json,
        } => logs(&config, follow, since, route, connection, status, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> anyhow::Result<(config::Config, WebSocketApi)> {
    let config = config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let api = WebSocketApi::from_config(&config)?;
    Ok((config, api))
}

fn validate(path: &Path) -> anyhow::Result<()> {
    let (config, api) = load(path)?;
    // The check starts each function once, as serving would.
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(api.check(config.listen.unwrap_or_else(default_listen)))?;
    println!(
        "{} is valid: API {} with {} route(s)",
        path.display(),
        config.name,
        config.routes.len()
    );
    Ok(())
}

async fn serve(path: &Path, listen: Option<SocketAddr>, insecure_dev: bool) -> anyhow::Result<()> {
    let (config, api) = load(path)?;
    let routes = api.describe_routes();
    let addr = listen.or(config.listen).unwrap_or_else(default_listen);
    if insecure_dev {
        tracing::warn!(
            "--insecure-dev: UNSIGNED @connections CALLS ARE ACCEPTED. Anyone who can reach {addr} can push to and close every connection. Never use this outside local development."
        );
    }
    let server = api.insecure_dev(insecure_dev).bind(addr).await?;
    let outputs = server.outputs();
    let outputs_file = write_outputs(config.dir(), &outputs)?;
    println!(
        "wsgate: {} listening on {}",
        config.name,
        server.local_addr()
    );
    for (key, handler) in routes {
        println!("  route {key:<14} {handler}");
    }
    println!("  outputs written to  {}", outputs_file.display());
    println!("  url:                {}", outputs.url);
    println!("  managementEndpoint: {}", outputs.management_endpoint);
    if let Some(credentials) = server.generated_credentials() {
        let exports = format!(
            "export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={region} AWS_DEFAULT_REGION={region}",
            credentials.access_key_id,
            credentials.secret_access_key,
            region = server.region()
        );
        let file = write_credentials(config.dir(), &exports)?;
        println!(
            "  no [[credentials]] configured; this run's key (also in {}):",
            file.display()
        );
        println!("{exports}");
    }
    println!("ready: Ctrl-C or SIGTERM stops it gracefully");

    wait_for_signal().await?;
    tracing::info!("shutting down: closing connections with 1001 and running $disconnect");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn write_outputs(dir: &Path, outputs: &Outputs) -> anyhow::Result<PathBuf> {
    let folder = dir.join(".wsgate");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let file = folder.join("outputs.json");
    let json = serde_json::to_string_pretty(outputs)?;
    std::fs::write(&file, json + "\n")
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}

fn logs(
    path: &Path,
    follow: bool,
    since: Option<String>,
    route: Option<String>,
    connection: Option<String>,
    status: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use wsgate::access_log::reader::{self, Filter};
    let config = config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    if !dir.is_dir() && !follow {
        eprintln!("no access log yet in {}", dir.display());
        return Ok(());
    }
    let shown = reader::Shown {
        json,
        color: !json && std::io::stdout().is_terminal(),
    };
    reader::print(&dir, &filter, shown, follow, &mut std::io::stdout().lock())?;
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

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
