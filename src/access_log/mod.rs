//! Access logs as API Gateway writes them for a stage: one line per
//! connect, message and disconnect, in a format of `$context` variables
//! (SST's by default). Lines are handed to a background writer
//! (`writer`) that never blocks the data plane; `reader` serves
//! `wsgate logs`.

pub mod format;
pub mod reader;
pub mod writer;

use crate::events::{ConnectionMeta, Event};
use format::Format;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// What one access log line may say: API Gateway's `$context` variables,
/// borrowed from the event they describe (a line is rendered at once, so
/// logging copies nothing but the line).
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    /// Common Log Format, as `$context.requestTime`.
    pub request_time: Cow<'a, str>,
    pub request_time_epoch: i64,
    pub request_id: Cow<'a, str>,
    pub event_type: &'static str,
    pub route_key: &'a str,
    /// What the client got: 200, or the refusal's status.
    pub status: u16,
    pub message_id: Option<&'a str>,
    pub connection_id: &'a str,
    pub connected_at: i64,
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub domain_name: &'a str,
    pub stage: &'a str,
    pub api_id: &'a str,
    /// Set when an integration ran.
    pub integration: Option<Integration>,
    /// `$context.error.message`, when the client got an error.
    pub error_message: Option<&'a str>,
}

/// How the route's integration went. It was called with the record's
/// request id (a function's Lambda request id is the event's).
#[derive(Debug, Clone)]
pub struct Integration {
    pub latency_ms: u64,
    /// The call's own status: 200 when the handler answered, 500 when it
    /// failed, 504 when it timed out.
    pub status: u16,
    /// The status the handler's reply carried (`statusCode`), if any.
    pub reply_status: Option<u16>,
    /// What the handler was sent and answered, kept only while the
    /// console records (`None` otherwise: nothing is copied for it).
    pub trace: Option<Box<Trace>>,
}

/// One invocation as the console shows it, kept as it was (serialized
/// only when someone looks at it).
#[derive(Debug, Clone)]
pub struct Trace {
    /// The event the handler was sent (its JSON is what an HTTP or
    /// function handler receives).
    pub event: Event,
    pub reply: TracedReply,
    pub latency_us: u64,
}

/// What the handler answered, or why there was no answer.
#[derive(Debug, Clone)]
pub enum TracedReply {
    Answered {
        status_code: u16,
        headers: Vec<(String, String)>,
        body: Option<String>,
        is_base64_encoded: bool,
    },
    Failed(String),
}

impl<'a> Record<'a> {
    /// A record for `event`, with the client-facing `status`.
    pub fn for_event(event: &'a Event, status: u16) -> Record<'a> {
        let context = &event.request_context;
        Record {
            request_time: Cow::Borrowed(&context.request_time),
            request_time_epoch: context.request_time_epoch,
            request_id: Cow::Borrowed(&context.request_id),
            event_type: match context.event_type {
                crate::events::EventType::Connect => "CONNECT",
                crate::events::EventType::Message => "MESSAGE",
                crate::events::EventType::Disconnect => "DISCONNECT",
            },
            route_key: &context.route_key,
            status,
            message_id: context.message_id.as_deref(),
            connection_id: &context.connection_id,
            connected_at: context.connected_at,
            ip: &context.identity.source_ip,
            user_agent: context.identity.user_agent.as_deref(),
            domain_name: &context.domain_name,
            stage: &context.stage,
            api_id: &context.api_id,
            integration: None,
            error_message: None,
        }
    }

    /// A record for a request refused before any event existed (an
    /// upgrade refused by auth or throttling).
    pub fn refused_upgrade(
        meta: &'a ConnectionMeta,
        api: &'a crate::events::ApiInfo,
        status: u16,
        message: &'a str,
    ) -> Record<'a> {
        let now = chrono::Utc::now();
        Record {
            request_time: Cow::Owned(crate::events::clf_time(now).to_string()),
            request_time_epoch: now.timestamp_millis(),
            request_id: Cow::Owned(crate::ids::new_id()),
            event_type: "CONNECT",
            route_key: "$connect",
            status,
            connection_id: &meta.connection_id,
            connected_at: meta.connected_at,
            ip: &meta.source_ip,
            user_agent: meta.user_agent.as_deref(),
            domain_name: &meta.domain_name,
            stage: &api.stage,
            api_id: &api.api_id,
            error_message: Some(message),
            ..Record::default()
        }
    }
}

/// The data plane's handle: formats a line and queues it, dropping (and
/// counting) when the writer is behind rather than waiting.
#[derive(Clone)]
pub struct AccessLog {
    /// Replaced by a config reload.
    format: Arc<arc_swap::ArcSwap<Format>>,
    lines: mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
    /// Where a copy of each line goes too (a cluster node publishes them
    /// for `wsgate logs --follow`); dropped when behind, never waited for.
    copies: Option<mpsc::Sender<String>>,
}

impl AccessLog {
    /// A handle and the receiving end for a writer; `capacity` lines may
    /// wait.
    pub fn channel(format: Format, capacity: usize) -> (AccessLog, mpsc::Receiver<String>) {
        let (lines, receiver) = mpsc::channel(capacity.max(1));
        (
            AccessLog {
                format: Arc::new(arc_swap::ArcSwap::from_pointee(format)),
                lines,
                dropped: Arc::new(AtomicU64::new(0)),
                copies: None,
            },
            receiver,
        )
    }

    /// Sends a copy of every line to `copies` as well.
    pub fn with_copies(mut self, copies: mpsc::Sender<String>) -> AccessLog {
        self.copies = Some(copies);
        self
    }

    /// Lines from now on are written in `format`.
    pub fn set_format(&self, format: Format) {
        self.format.store(Arc::new(format));
    }

    pub fn format(&self) -> Arc<Format> {
        self.format.load_full()
    }

    /// The line `record` gives in the format in force.
    pub fn render(&self, record: &Record<'_>) -> String {
        self.format.load().render(record)
    }

    pub fn log(&self, record: &Record<'_>) {
        self.send(self.render(record));
    }

    /// Queues a rendered line.
    pub fn send(&self, line: String) {
        if let Some(copies) = &self.copies {
            let _ = copies.try_send(line.clone());
        }
        if self.lines.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped so far because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }
}
