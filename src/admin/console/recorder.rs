//! What the console shows that the gateway would otherwise forget: recent
//! events with what their handler got and answered, the handlers' output,
//! and per-second figures for the charts. Everything is bounded (the
//! `*_KEPT` constants): the oldest goes first.
//!
//! Off until `enable` (serving with `--admin`); the data plane's hooks
//! are then one load of a `OnceLock`.

use crate::access_log::{Record, Trace, TracedReply};
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::broadcast;

/// Events kept for the events view, newest last.
pub const EVENTS_KEPT: usize = 1_000;
/// Bytes the kept events may hold in all; past it the oldest go first.
pub const EVENT_BYTES_KEPT: usize = 48 * 1024 * 1024;
/// Bytes of an event's or a reply's body (or a failure's message) kept;
/// longer ones are cut, and say so.
pub const BODY_KEPT: usize = 32 * 1024;
/// A reply's headers kept, and bytes of each name and value.
pub const HEADERS_KEPT: usize = 32;
pub const HEADER_BYTES_KEPT: usize = 1024;
/// Handler output lines kept, and bytes of each.
pub const LOG_LINES_KEPT: usize = 2_000;
pub const LOG_LINE_BYTES_KEPT: usize = 8 * 1024;
/// What the recorder may hold in all, whatever the traffic: the events'
/// budget and the log lines' (2,000 × 8 KiB).
pub const BYTES_KEPT: usize = EVENT_BYTES_KEPT + LOG_LINES_KEPT * (LOG_LINE_BYTES_KEPT + 256);
/// Seconds of chart data kept (five minutes).
pub const SECONDS_KEPT: usize = 300;
/// Latency samples a route keeps per second for its percentiles.
const SAMPLES_PER_SECOND: usize = 1_000;
/// Live updates a slow console may fall behind by before it skips some.
const LIVE_BACKLOG: usize = 1_024;

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// Turns recording on (idempotent) and returns the recorder, which then
/// observes the data plane.
pub fn enable() -> &'static Recorder {
    let recorder = RECORDER.get_or_init(Recorder::new);
    crate::gateway::observe::install(recorder);
    recorder
}

/// The recorder, if the console is on.
pub fn get() -> Option<&'static Recorder> {
    RECORDER.get()
}

/// One event as the events view lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub seq: u64,
    /// Epoch milliseconds.
    pub at: i64,
    pub api: Arc<String>,
    pub event_type: &'static str,
    pub route_key: String,
    pub connection_id: String,
    pub request_id: String,
    /// What the client got (200, or the refusal's status).
    pub status: u16,
    /// The integration's latency, when one ran.
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

/// One event, whole: the summary, what the handler got and answered, and
/// its access-log line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    /// The event JSON the handler received (`None`: no handler ran).
    pub event: Option<String>,
    pub reply: Option<String>,
    pub access_log_line: Option<String>,
}

/// An event as kept: its trace is serialized only when it is looked at.
/// Every text in it is a copy of at most a bounded size (the originals,
/// however large, are freed).
struct KeptEvent {
    summary: EventSummary,
    trace: Option<Box<Trace>>,
    access_log_line: Option<String>,
    /// The heap it holds, about: what the events' budget counts.
    bytes: usize,
}

impl KeptEvent {
    fn detail(&self) -> EventDetail {
        let trace = self.trace.as_deref();
        EventDetail {
            summary: self.summary.clone(),
            event: trace.map(|t| String::from_utf8_lossy(&t.event.to_json()).into_owned()),
            reply: trace.map(|t| reply_json(&t.reply)),
            access_log_line: self.access_log_line.clone(),
        }
    }
}

/// One line a handler wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub seq: u64,
    pub at: i64,
    pub route: String,
    pub instance: u64,
    pub stream: &'static str,
    pub text: String,
}

/// One second of chart data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Second {
    /// Epoch seconds.
    pub t: i64,
    pub connections: usize,
    pub messages: u64,
    /// Route key → [p50, p99] integration latency in milliseconds.
    pub latency: BTreeMap<String, [f64; 2]>,
}

/// The second being counted.
#[derive(Default)]
struct Counting {
    messages: u64,
    samples: BTreeMap<String, Vec<u64>>,
}

/// The kept events and the bytes they hold.
#[derive(Default)]
struct Events {
    kept: VecDeque<KeptEvent>,
    bytes: usize,
}

pub struct Recorder {
    next_seq: AtomicU64,
    events: Mutex<Events>,
    logs: Mutex<VecDeque<LogLine>>,
    seconds: Mutex<VecDeque<Second>>,
    counting: Mutex<Counting>,
    /// Server-Sent Events frames for every open console.
    live: broadcast::Sender<Bytes>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            next_seq: AtomicU64::new(1),
            events: Mutex::new(Events::default()),
            logs: Mutex::new(VecDeque::new()),
            seconds: Mutex::new(VecDeque::new()),
            counting: Mutex::new(Counting::default()),
            live: broadcast::channel(LIVE_BACKLOG).0,
        }
    }

    /// Records one CONNECT, MESSAGE or DISCONNECT of `api` as its access
    /// log describes it, with what its handler got and answered.
    pub fn event(
        &self,
        api: &Arc<String>,
        record: &Record<'_>,
        trace: Option<Box<Trace>>,
        access_log_line: Option<String>,
    ) {
        let latency_ms = match (&record.integration, &trace) {
            (_, Some(trace)) => Some(trace.latency_us as f64 / 1000.0),
            (Some(integration), None) => Some(integration.latency_ms as f64),
            (None, None) => None,
        };
        let summary = EventSummary {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            at: record.request_time_epoch,
            api: Arc::clone(api),
            event_type: record.event_type,
            route_key: record.route_key.to_string(),
            connection_id: record.connection_id.to_string(),
            request_id: record.request_id.to_string(),
            status: record.status,
            latency_ms,
            error: record.error_message.map(str::to_string),
        };
        {
            let mut counting = self.counting.lock().expect("lock poisoned");
            if record.event_type == "MESSAGE" {
                counting.messages += 1;
            }
            if let Some(trace) = &trace {
                // The key is copied once a second per route, not per event.
                if !counting.samples.contains_key(record.route_key) {
                    counting
                        .samples
                        .insert(record.route_key.to_string(), Vec::new());
                }
                let samples = counting.samples.get_mut(record.route_key);
                if let Some(samples) = samples.filter(|s| s.len() < SAMPLES_PER_SECOND) {
                    samples.push(trace.latency_us);
                }
            }
        }
        self.broadcast("event", &summary);
        let trace = trace.map(bounded_trace);
        let access_log_line = access_log_line.map(|mut line| {
            cut(&mut line, BODY_KEPT);
            line
        });
        let bytes = std::mem::size_of::<KeptEvent>()
            + trace.as_deref().map_or(0, trace_bytes)
            + access_log_line.as_ref().map_or(0, String::capacity)
            + summary.route_key.capacity()
            + summary.connection_id.capacity()
            + summary.request_id.capacity()
            + summary.error.as_ref().map_or(0, String::capacity);
        let mut events = self.events.lock().expect("lock poisoned");
        events.bytes += bytes;
        events.kept.push_back(KeptEvent {
            summary,
            trace,
            access_log_line,
            bytes,
        });
        while events.kept.len() > EVENTS_KEPT || events.bytes > EVENT_BYTES_KEPT {
            let Some(oldest) = events.kept.pop_front() else {
                break;
            };
            events.bytes -= oldest.bytes;
        }
    }

    /// The bytes the kept events and log lines hold, about.
    pub fn kept_bytes(&self) -> usize {
        let events = self.events.lock().expect("lock poisoned").bytes;
        let logs: usize = self
            .logs
            .lock()
            .expect("lock poisoned")
            .iter()
            .map(|l| std::mem::size_of::<LogLine>() + l.route.capacity() + l.text.capacity())
            .sum();
        events + logs
    }

    /// Records a line a function instance wrote.
    pub fn log_line(&self, route: &str, instance: u64, stream: &'static str, text: &str) {
        let line = LogLine {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            at: chrono::Utc::now().timestamp_millis(),
            route: route.to_string(),
            instance,
            stream,
            text: {
                let mut text = text.to_string();
                cut(&mut text, LOG_LINE_BYTES_KEPT);
                text
            },
        };
        self.broadcast("log", &line);
        push_bounded(&self.logs, line, LOG_LINES_KEPT);
    }

    /// Closes the second that just ended with the connections open now,
    /// keeps it for the charts and sends it to every open console.
    pub fn tick(&self, connections: usize) {
        let counting = std::mem::take(&mut *self.counting.lock().expect("lock poisoned"));
        let latency = counting
            .samples
            .into_iter()
            .map(|(route, mut samples)| {
                samples.sort_unstable();
                let ms = |q: f64| percentile(&samples, q) as f64 / 1000.0;
                (route, [ms(0.5), ms(0.99)])
            })
            .collect();
        let second = Second {
            t: chrono::Utc::now().timestamp(),
            connections,
            messages: counting.messages,
            latency,
        };
        self.broadcast("second", &second);
        push_bounded(&self.seconds, second, SECONDS_KEPT);
    }

    /// Events, newest first, that `filter` keeps; at most `limit`.
    pub fn events(&self, filter: &EventFilter, limit: usize) -> Vec<EventSummary> {
        let events = self.events.lock().expect("lock poisoned");
        events
            .kept
            .iter()
            .rev()
            .filter(|e| filter.keeps(&e.summary))
            .take(limit)
            .map(|e| e.summary.clone())
            .collect()
    }

    /// One event, whole, if it is still kept.
    pub fn event_detail(&self, seq: u64) -> Option<EventDetail> {
        let events = self.events.lock().expect("lock poisoned");
        events
            .kept
            .iter()
            .find(|e| e.summary.seq == seq)
            .map(KeptEvent::detail)
    }

    /// Handler output, oldest first, of one route or all.
    pub fn logs(&self, route: Option<&str>) -> Vec<LogLine> {
        let logs = self.logs.lock().expect("lock poisoned");
        logs.iter()
            .filter(|l| route.is_none_or(|r| l.route == r))
            .cloned()
            .collect()
    }

    pub fn seconds(&self) -> Vec<Second> {
        self.seconds
            .lock()
            .expect("lock poisoned")
            .iter()
            .cloned()
            .collect()
    }

    /// Live updates: Server-Sent Events frames, ready to write.
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.live.subscribe()
    }

    fn broadcast(&self, kind: &str, value: &impl Serialize) {
        if self.live.receiver_count() == 0 {
            return;
        }
        let data = serde_json::to_string(value).expect("console records serialize");
        let _ = self
            .live
            .send(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    }
}

impl crate::gateway::observe::Observer for Recorder {
    fn event(
        &self,
        api: &Arc<String>,
        record: &Record<'_>,
        trace: Option<Box<Trace>>,
        access_log_line: Option<String>,
    ) {
        Recorder::event(self, api, record, trace, access_log_line);
    }

    fn log_line(&self, route: &str, instance: u64, stream: &'static str, text: &str) {
        Recorder::log_line(self, route, instance, stream, text);
    }
}

/// Which events a query wants: each given part must match.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub api: Option<String>,
    pub route: Option<String>,
    pub connection: Option<String>,
    /// A status class: 2, 4 or 5 for 2xx, 4xx, 5xx.
    pub status_class: Option<u16>,
}

impl EventFilter {
    fn keeps(&self, event: &EventSummary) -> bool {
        self.api.as_deref().is_none_or(|a| *event.api == a)
            && self.route.as_deref().is_none_or(|r| event.route_key == r)
            && self
                .connection
                .as_deref()
                .is_none_or(|c| event.connection_id == c)
            && self.status_class.is_none_or(|c| event.status / 100 == c)
    }
}

fn push_bounded<T>(queue: &Mutex<VecDeque<T>>, item: T, bound: usize) {
    let mut queue = queue.lock().expect("lock poisoned");
    if queue.len() == bound {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The trace as the console keeps it: the event's body, the reply's body
/// and headers, and a failure's message cut to their bounds, each a new,
/// exactly sized copy (a cut original would keep its whole allocation).
fn bounded_trace(mut trace: Box<Trace>) -> Box<Trace> {
    if let Some(body) = &mut trace.event.body {
        cut(body, BODY_KEPT);
    }
    match &mut trace.reply {
        TracedReply::Answered { headers, body, .. } => {
            if let Some(body) = body {
                cut(body, BODY_KEPT);
            }
            let left_out = headers.len().saturating_sub(HEADERS_KEPT);
            headers.truncate(HEADERS_KEPT);
            for (name, value) in headers.iter_mut() {
                cut(name, HEADER_BYTES_KEPT);
                cut(value, HEADER_BYTES_KEPT);
            }
            if left_out > 0 {
                headers.push(("…".into(), format!("{left_out} more headers not kept")));
            }
            headers.shrink_to_fit();
        }
        TracedReply::Failed(message) => cut(message, BODY_KEPT),
    }
    trace
}

/// The heap a bounded trace holds, about.
fn trace_bytes(trace: &Trace) -> usize {
    let event = &trace.event;
    let map = |m: &indexmap::IndexMap<String, String>| -> usize {
        m.iter()
            .map(|(k, v)| k.capacity() + v.capacity() + 32)
            .sum()
    };
    let multi = |m: &indexmap::IndexMap<String, Vec<String>>| -> usize {
        m.iter()
            .map(|(k, v)| k.capacity() + v.iter().map(|s| s.capacity() + 24).sum::<usize>() + 32)
            .sum()
    };
    let reply = match &trace.reply {
        TracedReply::Answered { headers, body, .. } => {
            headers
                .iter()
                .map(|(n, v)| n.capacity() + v.capacity() + 48)
                .sum::<usize>()
                + body.as_ref().map_or(0, String::capacity)
        }
        TracedReply::Failed(message) => message.capacity(),
    };
    std::mem::size_of::<Trace>()
        + event.body.as_ref().map_or(0, String::capacity)
        + event.headers.as_deref().map_or(0, map)
        + event.query_string_parameters.as_deref().map_or(0, map)
        + event.multi_value_headers.as_deref().map_or(0, multi)
        + event
            .multi_value_query_string_parameters
            .as_deref()
            .map_or(0, multi)
        + reply
}

/// Cuts `text` to its first `limit` bytes (on a character boundary), with
/// a note of how much was left out, into a new string of that size.
fn cut(text: &mut String, limit: usize) {
    if text.len() <= limit {
        return;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = text.len() - end;
    let mut kept = format!("{}… ({left_out} more bytes not kept)", &text[..end]);
    kept.shrink_to_fit();
    *text = kept;
}

/// A handler's reply as JSON: the proxy response's fields, or why there
/// was none.
fn reply_json(reply: &TracedReply) -> String {
    let value = match reply {
        TracedReply::Answered {
            status_code,
            headers,
            body,
            is_base64_encoded,
        } => serde_json::json!({
            "statusCode": status_code,
            "headers": headers
                .iter()
                .map(|(name, value)| (name.clone(), serde_json::Value::from(value.as_str())))
                .collect::<serde_json::Map<_, _>>(),
            "body": body,
            "isBase64Encoded": is_base64_encoded,
        }),
        TracedReply::Failed(error) => serde_json::json!({ "error": error }),
    };
    serde_json::to_string(&value).expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), 50);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let long = "é".repeat(BODY_KEPT);
        let mut text = long.clone();
        cut(&mut text, BODY_KEPT);
        assert!(text.len() < long.len());
        assert!(text.ends_with(&format!("({} more bytes not kept)", long.len() - BODY_KEPT)));
        // A new string: the original's allocation is not kept.
        assert!(text.capacity() < BODY_KEPT + 64);
        let mut short = "{}".to_string();
        cut(&mut short, BODY_KEPT);
        assert_eq!(short, "{}");
    }

    /// Huge bodies, huge reply headers and huge log lines, far more than
    /// the bounds: what is kept stays under `BYTES_KEPT`.
    #[test]
    fn the_recorder_holds_its_budget_whatever_the_traffic() {
        use crate::events::{ApiInfo, ConnectionMeta, Event};
        let recorder = Recorder::new();
        let api = Arc::new("Api".to_string());
        let big = "x".repeat(4 * 1024 * 1024);
        let template = Event::message(
            &ApiInfo {
                api_id: "a".into(),
                stage: "s".into(),
            },
            &ConnectionMeta {
                connection_id: "c=".into(),
                connected_at: 1,
                source_ip: "127.0.0.1".into(),
                user_agent: None,
                domain_name: "d".into(),
                caller: None,
                authorizer: None,
            },
            "big".into(),
            "r=".into(),
            "m".into(),
            big.clone(),
            false,
        );
        for _ in 0..(2 * EVENTS_KEPT) {
            let trace = Box::new(Trace {
                event: template.clone(),
                reply: TracedReply::Answered {
                    status_code: 200,
                    headers: (0..100)
                        .map(|i| (format!("h{i}"), big[..64 * 1024].to_string()))
                        .collect(),
                    body: Some(big.clone()),
                    is_base64_encoded: false,
                },
                latency_us: 1,
            });
            let record = Record::for_event(&template, 200);
            recorder.event(&api, &record, Some(trace), Some(big[..100_000].to_string()));
        }
        for _ in 0..(2 * LOG_LINES_KEPT) {
            recorder.log_line("big", 1, "stdout", &big[..1024 * 1024]);
        }
        let kept = recorder.kept_bytes();
        assert!(kept <= BYTES_KEPT, "{kept} > {BYTES_KEPT}");
        // The newest event is there, its body cut.
        let newest = recorder.events(&EventFilter::default(), 1)[0].seq;
        let detail = recorder.event_detail(newest).unwrap();
        assert!(detail.reply.unwrap().contains("more headers not kept"));
    }

    #[test]
    fn the_oldest_goes_first() {
        let queue = Mutex::new(VecDeque::new());
        for i in 0..5 {
            push_bounded(&queue, i, 3);
        }
        assert_eq!(queue.into_inner().unwrap(), [2, 3, 4]);
    }
}
