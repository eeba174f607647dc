//! The calls one node makes on another for a connection the other owns:
//! NATS request/reply on the owner's subject, the call in headers and the
//! payload as it is. Answers are served from the owner's local registry,
//! in arrival order, so pushes from one caller keep their order.

use super::lease::Lease;
use crate::gateway::registry::{ConnectionInfo, InMemoryRegistry, PushError, Registry};
use async_nats::{HeaderMap, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

pub const CALL: &str = "Wsgate-Call";
pub const CONNECTION: &str = "Wsgate-Connection";
pub const BINARY: &str = "Wsgate-Binary";
const ANSWER: &str = "Wsgate-Answer";
/// With a "too-large" answer: the owner's largest message.
const LIMIT: &str = "Wsgate-Limit";
/// What a call adds to its payload on the wire (the NATS headers), at
/// most: a node's largest message plus this must fit NATS's max_payload.
pub const CALL_OVERHEAD: usize = 512;

/// How long a call to another node may take before it is given up: a
/// NATS round trip is well under a millisecond, and the SDKs retry a 5xx
/// three times, which must still end within 5 s.
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long after NATS is lost calls wait for it to come back.
const RECONNECT_WAIT: Duration = Duration::from_millis(800);

/// When this node's NATS connection was first seen lost, so that calls
/// wait for a reconnect only within `RECONNECT_WAIT` of the loss, not each
/// its own 800 ms: an SDK's retries of a 503 then fail at once.
#[derive(Debug, Default)]
pub struct Outage {
    since: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Outage {
    /// Waits (within the outage's allowance) until `client` is connected.
    async fn wait_connected(&self, client: &async_nats::Client) -> Result<(), CallError> {
        use async_nats::connection::State;
        if client.connection_state() == State::Connected {
            *self.since.lock().expect("lock poisoned") = None;
            return Ok(());
        }
        let deadline = *self
            .since
            .lock()
            .expect("lock poisoned")
            .get_or_insert_with(tokio::time::Instant::now)
            + RECONNECT_WAIT;
        while client.connection_state() != State::Connected {
            if tokio::time::Instant::now() >= deadline {
                return Err(PushError::Unavailable("NATS is not connected".into()).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        *self.since.lock().expect("lock poisoned") = None;
        Ok(())
    }
}

/// What one node asks of another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Post { data: Bytes, binary: bool },
    Get,
    Delete,
}

/// What comes back when the call succeeded.
#[derive(Debug)]
pub enum Answer {
    Done,
    Info(ConnectionInfo),
}

/// GetConnection's answer on the wire.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoWire {
    connected_at: i64,
    last_active_at: i64,
    source_ip: String,
    user_agent: Option<String>,
}

/// Why a call gave no answer.
#[derive(Debug)]
pub enum CallError {
    /// Nobody listens on the owner's subject.
    NoResponders,
    /// Someone listens, but no answer came in time.
    TimedOut(PushError),
    Failed(PushError),
}

impl From<PushError> for CallError {
    fn from(error: PushError) -> CallError {
        CallError::Failed(error)
    }
}

/// Makes `call` for `connection_id` on the node whose subject is `subject`.
pub async fn call(
    client: &async_nats::Client,
    outage: &Outage,
    subject: &str,
    connection_id: &str,
    call: Call,
) -> Result<Answer, CallError> {
    // Disconnected from NATS: a node reconnecting to another server of a
    // NATS cluster is back within moments; otherwise fail well before the
    // timeout.
    outage.wait_connected(client).await?;
    let mut headers = HeaderMap::new();
    headers.insert(CONNECTION, connection_id);
    let sent = match &call {
        Call::Post { data, .. } => data.len(),
        _ => 0,
    };
    let payload = match call {
        Call::Post { data, binary } => {
            headers.insert(CALL, "post");
            if binary {
                headers.insert(BINARY, "1");
            }
            data
        }
        Call::Get => {
            headers.insert(CALL, "get");
            Bytes::new()
        }
        Call::Delete => {
            headers.insert(CALL, "delete");
            Bytes::new()
        }
    };
    let request = client.request_with_headers(subject.to_string(), headers, payload);
    let reply = match tokio::time::timeout(REMOTE_TIMEOUT, request).await {
        Err(_) => {
            return Err(CallError::TimedOut(PushError::Unavailable(
                "the owner node did not answer in time".into(),
            )));
        }
        Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {
            return Err(CallError::NoResponders);
        }
        Ok(Err(e)) if e.kind() == RequestErrorKind::TimedOut => {
            return Err(CallError::TimedOut(PushError::Unavailable(e.to_string())));
        }
        Ok(Err(e)) => return Err(PushError::Unavailable(e.to_string()).into()),
        Ok(Ok(reply)) => reply,
    };
    let answer = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(ANSWER))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    let answer = match answer.as_str() {
        "ok" => Ok(Answer::Done),
        "info" => serde_json::from_slice::<InfoWire>(&reply.payload)
            .map(|info| {
                Answer::Info(ConnectionInfo {
                    connected_at: info.connected_at,
                    last_active_at: info.last_active_at,
                    source_ip: info.source_ip,
                    user_agent: info.user_agent,
                })
            })
            .map_err(|e| PushError::Unavailable(format!("unreadable answer: {e}"))),
        "gone" => Err(PushError::Gone),
        "full" => Err(PushError::QueueFull),
        // The nodes' configs disagree on the largest message: a permanent
        // refusal (413), never a 503 an SDK would retry.
        "too-large" => Err(PushError::PayloadTooLarge {
            size: Some(sent),
            limit: reply
                .headers
                .as_ref()
                .and_then(|h| h.get(LIMIT))
                .and_then(|v| v.as_str().parse().ok())
                .unwrap_or(sent.saturating_sub(1)),
        }),
        other => Err(PushError::Unavailable(format!(
            "unexpected answer {other:?} from the owner node"
        ))),
    };
    answer.map_err(CallError::Failed)
}

/// Serves other nodes' calls for this node's connections on
/// `<prefix>.<slot>`, following the slot when the lease moves to a new
/// one, until `stop`.
pub async fn serve(
    client: async_nats::Client,
    prefix: String,
    local: Arc<InMemoryRegistry>,
    lease: Arc<Lease>,
    max_payload: usize,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut slot = lease.slot();
    let mut subscription = client
        .subscribe(format!("{prefix}.{slot}"))
        .await
        .map_err(|e| format!("cannot subscribe to this node's subject: {e}"))?;
    // The subscription is in place once the server has seen it: from then
    // on a call for this node's ids cannot meet "no responders".
    client
        .flush()
        .await
        .map_err(|e| format!("cannot reach NATS: {e}"))?;
    let mut slot_changes = lease.watch_slot();
    let serving = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    // Leaving: calls already routed here are still
                    // answered, then no more come.
                    let _ = subscription.drain().await;
                    let remaining = async {
                        while let Some(message) = subscription.next().await {
                            reply_to(&client, &local, &lease, max_payload, &message).await;
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), remaining).await;
                    let _ = client.flush().await;
                    return;
                }
                changed = slot_changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = *slot_changes.borrow_and_update();
                    if now != slot {
                        slot = now;
                        let _ = subscription.unsubscribe().await;
                        match client.subscribe(format!("{prefix}.{slot}")).await {
                            Ok(next) => subscription = next,
                            Err(e) => {
                                tracing::error!(error = %e, "cluster: cannot subscribe to the new slot's subject");
                                break;
                            }
                        }
                    }
                }
                message = subscription.next() => {
                    let Some(message) = message else { break };
                    reply_to(&client, &local, &lease, max_payload, &message).await;
                }
            }
        }
        let _ = subscription.unsubscribe().await;
    });
    Ok(serving)
}

/// Answers one call, if it asks for an answer and this node may give one.
async fn reply_to(
    client: &async_nats::Client,
    local: &InMemoryRegistry,
    lease: &Lease,
    max_payload: usize,
    message: &async_nats::Message,
) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    if let Some((headers, body)) = answer(local, lease, max_payload, message).await
        && let Err(e) = client.publish_with_headers(reply, headers, body).await
    {
        tracing::debug!(error = %e, "cluster: cannot answer a call");
    }
}

/// A call as the owner reads it off the wire, checked: the connection id,
/// and what to do. `header` gives a header's value; a call another node
/// (or anyone with access to NATS) got wrong is `Err` with the answer.
pub fn decode_call(
    header: impl Fn(&str) -> Option<String>,
    payload: &Bytes,
    max_payload: usize,
) -> Result<(String, Decoded), &'static str> {
    let connection_id = header(CONNECTION).ok_or("bad-call")?;
    if connection_id.len() > 128 {
        return Err("bad-call");
    }
    let decoded = match header(CALL).as_deref() {
        Some("post") if payload.len() > max_payload => return Err("too-large"),
        Some("post") if header(BINARY).is_some() => Decoded::Post(Message::Binary(payload.clone())),
        Some("post") => {
            // A text frame must be UTF-8, whoever sent it.
            let text = Utf8Bytes::try_from(payload.clone()).map_err(|_| "bad-call")?;
            Decoded::Post(Message::Text(text))
        }
        Some("get") => Decoded::Get,
        Some("delete") => Decoded::Delete,
        _ => return Err("bad-call"),
    };
    Ok((connection_id, decoded))
}

/// What a decoded call asks for.
#[derive(Debug)]
pub enum Decoded {
    Post(Message),
    Get,
    Delete,
}

/// The answer to one call; `None` when this node must stay silent (it
/// cannot show the slot is still its own, so "gone" might be wrong).
async fn answer(
    local: &InMemoryRegistry,
    lease: &Lease,
    max_payload: usize,
    message: &async_nats::Message,
) -> Option<(HeaderMap, Bytes)> {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let decoded = decode_call(header, &message.payload, max_payload);
    if let Ok((id, _)) = &decoded
        && !local.holds(id)
        && !lease.held()
    {
        return None;
    }
    let result = match decoded {
        Err(answer) => Err(answer),
        Ok((id, Decoded::Post(frame))) => local
            .post(&id, frame)
            .await
            .map(|()| None)
            .map_err(push_answer),
        Ok((id, Decoded::Get)) => local
            .info(&id)
            .await
            .map(|info| {
                let wire = InfoWire {
                    connected_at: info.connected_at,
                    last_active_at: info.last_active_at,
                    source_ip: info.source_ip,
                    user_agent: info.user_agent,
                };
                Some(Bytes::from(
                    serde_json::to_vec(&wire).expect("plain fields serialize"),
                ))
            })
            .map_err(push_answer),
        Ok((id, Decoded::Delete)) => local.delete(&id).await.map(|()| None).map_err(push_answer),
    };
    let mut headers = HeaderMap::new();
    let body = match result {
        Ok(None) => {
            headers.insert(ANSWER, "ok");
            Bytes::new()
        }
        Ok(Some(info)) => {
            headers.insert(ANSWER, "info");
            info
        }
        Err(answer) => {
            headers.insert(ANSWER, answer);
            if answer == "too-large" {
                headers.insert(LIMIT, max_payload.to_string().as_str());
            }
            Bytes::new()
        }
    };
    Some((headers, body))
}

fn push_answer(error: PushError) -> &'static str {
    match error {
        PushError::Gone => "gone",
        PushError::QueueFull => "full",
        PushError::PayloadTooLarge { .. } => "too-large",
        PushError::Unavailable(_) => "unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn calls_are_checked_before_anything_is_done() {
        let id = "oAEAAAAAAAAAAAA=";
        let text = Bytes::from_static(b"hello");
        let (got, call) =
            decode_call(headers(&[(CALL, "post"), (CONNECTION, id)]), &text, 10).unwrap();
        assert_eq!(got, id);
        assert!(matches!(call, Decoded::Post(Message::Text(t)) if t.as_str() == "hello"));
        let binary = Bytes::from_static(&[0xff, 0]);
        let (_, call) = decode_call(
            headers(&[(CALL, "post"), (CONNECTION, id), (BINARY, "1")]),
            &binary,
            10,
        )
        .unwrap();
        assert!(matches!(call, Decoded::Post(Message::Binary(_))));
        // Not UTF-8 yet claimed as text; too large; unknown; no id.
        let bad = [
            decode_call(headers(&[(CALL, "post"), (CONNECTION, id)]), &binary, 10).unwrap_err(),
            decode_call(headers(&[(CALL, "post"), (CONNECTION, id)]), &text, 4).unwrap_err(),
            decode_call(headers(&[(CALL, "purge"), (CONNECTION, id)]), &text, 10).unwrap_err(),
            decode_call(headers(&[(CALL, "get")]), &text, 10).unwrap_err(),
        ];
        assert_eq!(bad, ["bad-call", "too-large", "bad-call", "bad-call"]);
    }
}
