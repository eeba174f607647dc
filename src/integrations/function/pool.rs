//! Instances of one function: warm ones are reused, each runs one
//! invocation at a time, more start up to `concurrency`, and a bounded
//! number of invocations may wait for one.

use super::instance::{Instance, InstanceEnv, Launch, MEMORY_EXCEEDED};
use super::runtime_api::{Answer, Invocation, Outcome};
use crate::admin::metrics;
use crate::integrations::InstanceCounts;
use bytes::Bytes;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, oneshot};

/// How long a handler may take to load, at least (Lambda's init phase).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum InvokeFailure {
    #[error("{error_type}: {message}")]
    Handler { error_type: String, message: String },
    #[error("timed out after {0:?}; instance killed")]
    TimedOut(Duration),
    #[error("{0}")]
    Crashed(String),
    #[error("throttled: {0} invocations already waiting")]
    Throttled(usize),
    #[error("{0}")]
    Start(String),
}

pub type DynamicEnv = Box<dyn Fn() -> InstanceEnv + Send + Sync>;

pub struct Pool {
    launch: Launch,
    dynamic_env: DynamicEnv,
    function_arn: String,
    timeout: Duration,
    idle: Mutex<Vec<Instance>>,
    /// One permit per instance that may run at once.
    running: Semaphore,
    /// Running plus waiting invocations; past it, invocations fail at once.
    admitted: Semaphore,
    concurrency: usize,
    waiting_limit: usize,
    next_instance: AtomicU64,
    /// Bumped when the code changes: older instances are not reused.
    generation: AtomicU64,
    /// Instances starting and running an invocation, for metrics.
    starting: AtomicUsize,
    busy: AtomicUsize,
    /// The function's name, as a metric label.
    metric_name: metrics::Name,
}

/// Decrements a count when dropped, however the scope ends.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Counted<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub fn new(
        launch: Launch,
        function_arn: String,
        timeout: Duration,
        concurrency: usize,
        waiting_limit: usize,
        dynamic_env: DynamicEnv,
    ) -> Pool {
        let name = function_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        Pool {
            launch,
            dynamic_env,
            function_arn,
            starting: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            metric_name: std::sync::Arc::new(name),
            timeout,
            idle: Mutex::new(Vec::new()),
            running: Semaphore::new(concurrency),
            concurrency,
            admitted: Semaphore::new(concurrency + waiting_limit),
            waiting_limit,
            next_instance: AtomicU64::new(1),
            generation: AtomicU64::new(0),
        }
    }

    /// Runs one invocation on a warm instance, or a new one; failures are
    /// counted by kind when metrics are on.
    pub async fn invoke(&self, payload: Bytes, request_id: String) -> Result<Bytes, InvokeFailure> {
        let result = self.invoke_on_instance(payload, request_id).await;
        if let (Err(failure), Some(m)) = (&result, metrics::get()) {
            let reason = match failure {
                InvokeFailure::Handler { .. } => "handler_error",
                InvokeFailure::TimedOut(_) => "timeout",
                InvokeFailure::Crashed(why) if why.starts_with(MEMORY_EXCEEDED) => "memory",
                InvokeFailure::Crashed(_) => "crash",
                InvokeFailure::Throttled(_) => "throttled",
                InvokeFailure::Start(_) => "start",
            };
            m.function_failures
                .get_or_create(&metrics::FailureLabels {
                    function: std::sync::Arc::clone(&self.metric_name),
                    reason,
                })
                .inc();
        }
        result
    }

    /// Instances that may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Instances by state now.
    pub fn instance_counts(&self) -> InstanceCounts {
        InstanceCounts {
            starting: self.starting.load(Ordering::Relaxed),
            idle: self.idle.lock().expect("lock poisoned").len(),
            busy: self.busy.load(Ordering::Relaxed),
        }
    }

    /// Instances by state, read at each scrape.
    pub fn refresh_metrics(&self, m: &metrics::Metrics) {
        let counts = self.instance_counts();
        for (state, count) in [
            ("starting", counts.starting),
            ("idle", counts.idle),
            ("busy", counts.busy),
        ] {
            m.function_instances
                .get_or_create(&metrics::InstanceLabels {
                    function: std::sync::Arc::clone(&self.metric_name),
                    state,
                })
                .set(count as i64);
        }
    }

    async fn invoke_on_instance(
        &self,
        payload: Bytes,
        request_id: String,
    ) -> Result<Bytes, InvokeFailure> {
        let _admitted = self
            .admitted
            .try_acquire()
            .map_err(|_| InvokeFailure::Throttled(self.waiting_limit))?;
        let _running = self
            .running
            .acquire()
            .await
            .expect("pool semaphore never closes");
        let instance = match self.take_idle() {
            Some(instance) => instance,
            None => self.start_instance().await.map_err(InvokeFailure::Start)?,
        };
        let _busy = Counted::new(&self.busy);
        let generation = instance.generation;
        let (reply, outcome) = oneshot::channel();
        let queued_at = Instant::now();
        let deadline_ms = chrono::Utc::now().timestamp_millis() + self.timeout.as_millis() as i64;
        let invocation = Invocation {
            request_id,
            payload,
            deadline_ms,
            reply,
        };
        if instance.invocations.send(invocation).await.is_err() {
            return Err(InvokeFailure::Crashed(instance.exit_reason()));
        }
        let mut exited = instance.exited.clone();
        let result = tokio::select! {
            answer = outcome => match answer {
                Ok(answer) => {
                    self.time_stages(queued_at, &answer);
                    match answer.outcome {
                        Outcome::Response(body) => Ok(body),
                        Outcome::Error { error_type, message } => Err(InvokeFailure::Handler { error_type, message }),
                    }
                }
                Err(_) => Err(InvokeFailure::Crashed(instance.exit_reason())),
            },
            _ = exited.wait_for(Option::is_some) => Err(InvokeFailure::Crashed(instance.exit_reason())),
            _ = tokio::time::sleep(self.timeout) => Err(InvokeFailure::TimedOut(self.timeout)),
        };
        match &result {
            // A handler error leaves the instance warm, as on Lambda;
            // one running old code is retired.
            Ok(_) | Err(InvokeFailure::Handler { .. })
                if instance.is_alive() && generation == self.generation.load(Ordering::SeqCst) =>
            {
                self.idle.lock().expect("lock poisoned").push(instance);
            }
            // Timed out, crashed: the instance is dropped, which kills it.
            _ => drop(instance),
        }
        result
    }

    /// Times an answered invocation's steps, when metrics are on.
    fn time_stages(&self, queued_at: Instant, answer: &Answer) {
        let Some(m) = metrics::get() else {
            return;
        };
        let now = Instant::now();
        // An event queued before the runtime asked for the next one waits
        // for the runtime (its own time between answering and asking
        // again), not for the gateway.
        let ready = queued_at.max(answer.asked);
        for (stage, from, to) in [
            ("awaiting_runtime", queued_at, ready),
            ("dispatch", ready, answer.handed_out),
            ("instance", answer.handed_out, answer.answered),
            ("return", answer.answered, now),
        ] {
            let labels = metrics::StageLabels {
                function: std::sync::Arc::clone(&self.metric_name),
                stage,
            };
            let seconds = to.saturating_duration_since(from).as_secs_f64();
            m.function_stages.get_or_create(&labels).observe(seconds);
        }
    }

    /// Starts one instance ahead of the first invocation and waits until
    /// its handler has loaded, with the environment it runs with (the
    /// start-up check); it then stays warm for the first invocation.
    pub async fn warm(&self) -> Result<(), String> {
        let instance = self.start_instance().await?;
        instance.ready(self.timeout.max(INIT_TIMEOUT)).await?;
        self.idle.lock().expect("lock poisoned").push(instance);
        Ok(())
    }

    async fn start_instance(&self) -> Result<Instance, String> {
        let id = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::SeqCst);
        tracing::debug!(route = %self.launch.label, instance = id, "starting instance (cold start)");
        let _starting = Counted::new(&self.starting);
        if let Some(m) = metrics::get() {
            m.cold_starts
                .get_or_create(&metrics::FunctionLabels {
                    function: std::sync::Arc::clone(&self.metric_name),
                })
                .inc();
        }
        let mut instance =
            Instance::start(id, &self.launch, (self.dynamic_env)(), &self.function_arn).await?;
        instance.generation = generation;
        Ok(instance)
    }

    /// New code is in place: warm instances are dropped now, busy ones
    /// once their invocation ends.
    pub fn retire(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let retired: Vec<Instance> = self.idle.lock().expect("lock poisoned").drain(..).collect();
        drop(retired);
    }

    fn take_idle(&self) -> Option<Instance> {
        let mut idle = self.idle.lock().expect("lock poisoned");
        while let Some(instance) = idle.pop() {
            if instance.is_alive() {
                return Some(instance);
            }
        }
        None
    }
}
