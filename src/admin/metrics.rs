//! Prometheus metrics for `/metrics` on the admin listener
//! (`prometheus-client`, the Prometheus project's own Rust client: typed
//! families, OpenMetrics text that `promtool` checks).
//!
//! Counting is off until `enable` (serving with `--admin`): the data
//! plane's hooks are one load of a `OnceLock` when nothing scrapes.
//! Labels are bounded: API names, configured route keys, function names,
//! operations and statuses; never connection ids or client text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex, OnceLock};

/// A label value shared by every series that carries it (cloning it is a
/// reference count, not an allocation).
pub type Name = Arc<String>;

#[cfg(test)]
mod tests {
    #[test]
    fn classic_text_names_counters_with_total_and_drops_openmetrics_lines() {
        let openmetrics = "# HELP a_events Events.\n# TYPE a_events counter\na_events_total{x=\"1\"} 3\n# HELP a_open Open.\n# TYPE a_open gauge\na_open 2\n# HELP a_latency_seconds L.\n# TYPE a_latency_seconds histogram\n# UNIT a_latency_seconds seconds\na_latency_seconds_count 1\n# EOF\n";
        assert_eq!(
            super::to_prometheus_text(openmetrics),
            "# HELP a_events_total Events.\n# TYPE a_events_total counter\na_events_total{x=\"1\"} 3\n# HELP a_open Open.\n# TYPE a_open gauge\na_open 2\n# HELP a_latency_seconds L.\n# TYPE a_latency_seconds histogram\na_latency_seconds_count 1\n"
        );
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub api: Name,
    pub route: Name,
    pub event_type: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub api: Name,
    pub route: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ManagementLabels {
    pub api: Name,
    pub operation: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthorizerLabels {
    pub api: Name,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    pub function: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub function: Name,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub function: Name,
    /// `awaiting_runtime` (queued until the runtime asked for an event:
    /// zero when it was already waiting), `dispatch` (from then until the
    /// Runtime API handed the event out), `instance` (handed out until the
    /// response was read) or `return` (read until the invocation's caller
    /// had it).
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub function: Name,
    pub reason: &'static str,
}

/// Something whose current state is read at each scrape (open
/// connections, function instances); false once it is gone.
type Refresh = Box<dyn Fn(&Metrics) -> bool + Send + Sync>;

pub struct Metrics {
    registry: Registry,
    pub connections_open: Family<ApiLabels, Gauge>,
    pub events: Family<EventLabels, Counter>,
    pub integration_latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub management_calls: Family<ManagementLabels, Counter>,
    pub throttled: Family<ApiLabels, Counter>,
    pub access_log_dropped: Family<ApiLabels, Counter>,
    pub authorizer_results: Family<AuthorizerLabels, Counter>,
    pub function_instances: Family<InstanceLabels, Gauge>,
    pub cold_starts: Family<FunctionLabels, Counter>,
    pub function_failures: Family<FailureLabels, Counter>,
    pub function_stages: Family<StageLabels, Histogram, fn() -> Histogram>,
    refreshers: Mutex<Vec<Refresh>>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Starts counting (the admin listener serves them); idempotent.
pub fn enable() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// The metrics, when counting is on.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

fn stage_histogram() -> Histogram {
    // 10 µs to about 2.6 s: the gateway's own steps take microseconds.
    Histogram::new(exponential_buckets(0.00001, 4.0, 10))
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 33 s: a loopback handler to API Gateway's 29 s limit.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

impl Metrics {
    fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("wsgate"),
            connections_open: Family::default(),
            events: Family::default(),
            integration_latency: Family::new_with_constructor(latency_histogram),
            management_calls: Family::default(),
            throttled: Family::default(),
            access_log_dropped: Family::default(),
            authorizer_results: Family::default(),
            function_instances: Family::default(),
            cold_starts: Family::default(),
            function_failures: Family::default(),
            function_stages: Family::new_with_constructor(stage_histogram),
            refreshers: Mutex::new(Vec::new()),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "connections_open",
            "WebSocket connections open on this node",
            metrics.connections_open.clone(),
        );
        registry.register(
            "events",
            "CONNECT, MESSAGE and DISCONNECT events by route and the status the client got",
            metrics.events.clone(),
        );
        registry.register_with_unit(
            "integration_latency",
            "Time the route's integration took to answer",
            prometheus_client::registry::Unit::Seconds,
            metrics.integration_latency.clone(),
        );
        registry.register(
            "management_calls",
            "@connections calls by operation and status",
            metrics.management_calls.clone(),
        );
        registry.register(
            "throttled",
            "Requests refused by the stage's throttling (429)",
            metrics.throttled.clone(),
        );
        registry.register(
            "access_log_dropped",
            "Access log lines dropped because the writer was behind",
            metrics.access_log_dropped.clone(),
        );
        registry.register(
            "authorizer_results",
            "Lambda authorizer decisions on $connect: allow, deny, unauthorized (no identity source), error",
            metrics.authorizer_results.clone(),
        );
        registry.register(
            "function_instances",
            "Function instances by state: starting, idle, busy",
            metrics.function_instances.clone(),
        );
        registry.register(
            "function_cold_starts",
            "Function instances started",
            metrics.cold_starts.clone(),
        );
        registry.register(
            "function_failures",
            "Failed invocations: timeout, crash, memory (killed over its memory limit), throttled, start, handler_error",
            metrics.function_failures.clone(),
        );
        registry.register_with_unit(
            "function_stage",
            "Time an invocation spent in each step: dispatch (queued until the Runtime API handed it out), instance (until its response was read), return (until the caller had it)",
            prometheus_client::registry::Unit::Seconds,
            metrics.function_stages.clone(),
        );
        metrics
    }

    /// Reads `refresh` at every scrape until it returns false.
    pub fn on_scrape(&self, refresh: impl Fn(&Metrics) -> bool + Send + Sync + 'static) {
        self.refreshers
            .lock()
            .expect("lock poisoned")
            .push(Box::new(refresh));
    }

    /// The OpenMetrics text exposition (what Prometheus asks for).
    pub fn encode(&self) -> String {
        self.refreshers
            .lock()
            .expect("lock poisoned")
            .retain(|refresh| refresh(self));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The same samples in Prometheus's classic text format (0.0.4), for
/// scrapers and tools that do not ask for OpenMetrics (`curl`,
/// `promtool check metrics`): a counter's family is named with its
/// `_total`, and there are no `# UNIT` or `# EOF` lines.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => text.push_str(&line),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// The label a route key gets: itself when the API has that route, else
/// `$none` (a message no route took), so client text never becomes a
/// series.
pub struct RouteNames {
    known: std::collections::HashMap<String, Name>,
    none: Name,
}

impl RouteNames {
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a String>) -> RouteNames {
        RouteNames {
            known: keys
                .into_iter()
                .map(|k| (k.clone(), Arc::new(k.clone())))
                .collect(),
            none: Arc::new("$none".into()),
        }
    }

    pub fn get(&self, key: &str) -> Name {
        Arc::clone(self.known.get(key).unwrap_or(&self.none))
    }
}
