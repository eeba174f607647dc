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
/// Bytes of an event's or a reply's body kept; longer ones are cut, and
/// say so.
pub const BODY_KEPT: usize = 32 * 1024;
/// Handler output lines kept.
pub const LOG_LINES_KEPT: usize = 2_000;
/// Seconds of chart data kept (five minutes).
pub const SECONDS_KEPT: usize = 300;
/// Latency samples a route keeps per second for its percentiles.
const SAMPLES_PER_SECOND: usize = 1_000;
/// Live updates a slow console may fall behind by before it skips some.
const LIVE_BACKLOG: usize = 1_024;

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// Turns recording on (idempotent) and returns the recorder.
pub fn enable() -> &'static Recorder {
    RECORDER.get_or_init(Recorder::new)
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
struct KeptEvent {
    summary: EventSummary,
    trace: Option<Box<Trace>>,
    access_log_line: Option<String>,
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

pub struct Recorder {
    next_seq: AtomicU64,
    events: Mutex<VecDeque<KeptEvent>>,
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
            events: Mutex::new(VecDeque::new()),
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
        let kept = KeptEvent {
            summary,
            trace: trace.map(cut_bodies),
            access_log_line,
        };
        push_bounded(&self.events, kept, EVENTS_KEPT);
    }

    /// Records a line a function instance wrote.
    pub fn log_line(&self, route: &str, instance: u64, stream: &'static str, text: &str) {
        let line = LogLine {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            at: chrono::Utc::now().timestamp_millis(),
            route: route.to_string(),
            instance,
            stream,
            text: text.to_string(),
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

/// The trace with the event's and the reply's bodies cut to `BODY_KEPT`
/// bytes, so what the console keeps stays bounded.
fn cut_bodies(mut trace: Box<Trace>) -> Box<Trace> {
    if let Some(body) = &mut trace.event.body {
        cut(body);
    }
    if let TracedReply::Answered {
        body: Some(body), ..
    } = &mut trace.reply
    {
        cut(body);
    }
    trace
}

/// Cuts `text` to its first `BODY_KEPT` bytes (on a character boundary),
/// with a note of how much was left out.
fn cut(text: &mut String) {
    if text.len() <= BODY_KEPT {
        return;
    }
    let mut end = BODY_KEPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("… ({left_out} more bytes not kept)"));
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
        cut(&mut text);
        assert!(text.len() < long.len());
        assert!(text.ends_with(&format!("({} more bytes not kept)", long.len() - BODY_KEPT)));
        let mut short = "{}".to_string();
        cut(&mut short);
        assert_eq!(short, "{}");
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
