//! One task per WebSocket connection: reads frames, hands messages to
//! their routes, writes pushes, enforces the idle and duration limits, and
//! runs `$disconnect` once the socket is gone.

use super::registry::{ConnectionEntry, Outbound, OutboundReceiver};
use super::{Gateway, InvokeError, error_message};
use crate::access_log::Record;
use crate::config::BinaryMode;
use crate::events::{ConnectionMeta, Event, disconnect_reason};
use crate::ids::{new_id, new_shared_id};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, Sink, SinkExt, StreamExt};
use std::collections::VecDeque;
use std::future::Future;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long to wait for the client's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How a connection ended, as `$disconnect` reports it.
struct Ending {
    code: u16,
    reason: String,
}

impl Ending {
    fn new(code: u16, reason: &str) -> Ending {
        let reason = if reason.is_empty() {
            disconnect_reason(code)
        } else {
            reason
        };
        Ending {
            code,
            reason: reason.to_string(),
        }
    }
}

/// Serves an upgraded connection until it ends, then runs `$disconnect`.
pub async fn run<S>(
    gateway: Arc<Gateway>,
    entry: Arc<ConnectionEntry>,
    socket: WebSocketStream<S>,
    outbound: OutboundReceiver,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let meta = Arc::clone(&entry.meta);
    let ending = serve(&gateway, &entry, socket, outbound).await;
    finish(&gateway, &meta, ending.code, &ending.reason).await;
}

/// Runs `$disconnect` for a connection already unregistered whose socket
/// is gone (best effort: its reply goes nowhere).
pub async fn finish(gateway: &Gateway, meta: &ConnectionMeta, code: u16, reason: &str) {
    let ending = Ending::new(code, reason);
    tracing::debug!(connection_id = %meta.connection_id, code, reason = %ending.reason, "disconnected");
    let event = Event::disconnect(
        &gateway.api,
        meta,
        new_shared_id(),
        ending.code,
        &ending.reason,
    );
    let mut integration = None;
    let routing = gateway.routing();
    if let Some(route) = routing.route("$disconnect") {
        // At shutdown every connection ends at once: their handlers run a
        // bounded number at a time rather than all together.
        let _slot = match gateway.shutdown.is_cancelled() {
            true => routing.shutdown_disconnects.acquire().await.ok(),
            false => None,
        };
        integration = Some(gateway.invoke(route, &event).await.1);
    }
    gateway.log(|| Record {
        integration,
        ..Record::for_event(&event, 200)
    });
}

async fn serve<S>(
    gateway: &Arc<Gateway>,
    entry: &Arc<ConnectionEntry>,
    mut socket: WebSocketStream<S>,
    mut outbound: OutboundReceiver,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &gateway.limits;
    let ends_at = Instant::now() + limits.max_duration;
    let expiry_after = |activity: Instant| (activity + limits.idle_timeout).min(ends_at);
    let mut deadlines = Deadlines {
        expiry: expiry_after(Instant::now()),
        write: None,
        close: None,
    };
    // One timer, at or before the earliest deadline (see `arm_if_earlier`):
    // a timer is 112 bytes that every idle connection keeps.
    let timer = sleep_until(deadlines.expiry);
    let mut closing = false;
    // The close code `$disconnect` sees if the client never takes the close.
    let mut closing_code = 1000;
    tokio::pin!(timer);
    // The messages being handled, polled by this task: API Gateway handles
    // a connection's messages concurrently, and doing it here rather than
    // on a task per message saves a spawn and a wake-up per message. At
    // the limit, reading pauses (backpressure) while pushes keep flowing.
    // Made at the first message (the set allocates up front), and its
    // futures boxed (it allocates a stub the size of its future type):
    // an idle connection keeps neither.
    let mut in_flight: Option<InFlight> = None;
    let max_in_flight = limits.max_in_flight_per_connection.max(1);
    // The budget the frame being written holds, while one is.
    let mut writing: Option<u32> = None;
    // Frames to write next, in order: pushes taken from `outbound`, and
    // replies of handled messages behind the pushes queued before them.
    let mut queued: VecDeque<Outbound> = VecDeque::new();
    let exit = loop {
        if writing.is_none()
            && let Some(item) = queued.pop_front()
        {
            match begin_write(&mut socket, item) {
                Ok(charge) => {
                    writing = Some(charge);
                    deadlines.write = Some(Instant::now() + limits.write_timeout);
                    arm_if_earlier(timer.as_mut(), deadlines.earliest());
                }
                Err(exit) => break exit,
            }
        }
        let handling = in_flight.as_ref().map_or(0, FuturesUnordered::len);
        let reading = handling < max_in_flight;
        // Biased, in this order: a handled message's reply is taken before
        // the socket is read again. Polled at random, every second message
        // tried a read that found nothing (tungstenite zeroes its 4 KiB
        // read buffer for each try). The socket comes before pushes, and a
        // reply drains the pushes queued before it; when the client floods,
        // tokio's budget makes the read pending now and then, and pushes
        // go out then.
        tokio::select! {
            biased;
            _ = gateway.shutdown.cancelled(), if !closing => {
                // Pushes answered 200 before the shutdown still go out,
                // then 1001; pushes from now on are Gone.
                gateway.registry.unregister(&entry.meta.connection_id);
                entry.close(CloseFrame {
                    code: CloseCode::Away,
                    reason: "Going away".into(),
                });
                closing = true;
                closing_code = 1001;
                deadlines.close = Some(Instant::now() + CLOSE_WAIT);
                arm_if_earlier(timer.as_mut(), deadlines.earliest());
            }
            _ = &mut timer => {
                let now = Instant::now();
                if now >= deadlines.expiry {
                    break Exit::going_away();
                }
                if deadlines.close.is_some_and(|at| now >= at) {
                    tracing::debug!(connection_id = %entry.meta.connection_id, "client did not take its close frame in time");
                    break Exit::Gone(Ending::new(closing_code, ""));
                }
                if deadlines.write.is_some_and(|at| now >= at) {
                    tracing::debug!(connection_id = %entry.meta.connection_id, "client stopped reading; disconnecting");
                    break Exit::Gone(Ending::new(1006, ""));
                }
                // Fired for a deadline that has since moved later: the next one.
                timer.as_mut().reset(deadlines.earliest());
            }
            _ = entry.close_requested(), if !closing => {
                closing = true;
                deadlines.close = Some(Instant::now() + CLOSE_WAIT);
                arm_if_earlier(timer.as_mut(), deadlines.earliest());
            }
            // A reply comes back here rather than through `outbound`: a
            // task that wakes itself is rescheduled and wakes an idle
            // worker thread, a futex call per message.
            Some(reply) = next_reply(&mut in_flight), if handling > 0 => {
                if let Some(reply) = reply {
                    while let Ok(push) = outbound.try_recv() {
                        queued.push_back(push);
                    }
                    queued.push_back(reply);
                }
            }
            // Reading and writing share one branch (one borrow of the
            // socket), so the timers, shutdown and DeleteConnection are
            // heard while a write waits for the client.
            io = poll_io(&mut socket, writing.is_some(), reading), if writing.is_some() || reading => {
                let frame = match io {
                    Io::Flushed(Ok(())) => {
                        entry.written(writing.take().unwrap_or_default());
                        // A message that reached the client is activity,
                        // as on API Gateway: services built on it keep
                        // connections open by pushing every 9.5 minutes.
                        deadlines.write = None;
                        deadlines.expiry = expiry_after(Instant::now());
                        arm_if_earlier(timer.as_mut(), deadlines.earliest());
                        continue;
                    }
                    Io::Flushed(Err(_)) => break Exit::Gone(Ending::new(1006, "")),
                    Io::Frame(frame) => frame,
                };
                let now = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        deadlines.expiry = expiry_after(now);
                        arm_if_earlier(timer.as_mut(), deadlines.earliest());
                        entry.received(chrono::Utc::now().timestamp_millis());
                        let handled = handle_message(gateway, entry, text.to_string(), false);
                        in_flight.get_or_insert_with(FuturesUnordered::new).push(Box::pin(handled));
                    }
                    Some(Ok(Message::Binary(data))) => match gateway.binary {
                        BinaryMode::Reject => {
                            break Exit::Close(CloseCode::Unsupported, "Binary frames are not supported".into());
                        }
                        BinaryMode::Base64 => {
                            deadlines.expiry = expiry_after(now);
                            arm_if_earlier(timer.as_mut(), deadlines.earliest());
                            entry.received(chrono::Utc::now().timestamp_millis());
                            let handled = handle_message(gateway, entry, BASE64.encode(&data), true);
                            in_flight.get_or_insert_with(FuturesUnordered::new).push(Box::pin(handled));
                        }
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        // tungstenite answers pings itself.
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break Exit::ClientClosed(match frame {
                            Some(f) => Ending::new(u16::from(f.code), &f.reason),
                            None => Ending::new(1005, ""),
                        });
                    }
                    Some(Err(error)) => break Exit::for_error(error),
                    None => break Exit::Gone(Ending::new(1006, "")),
                }
            }
            // Written at the top of the loop, as replies are. After the
            // socket: a flood of pushes cannot keep the client's frames unread.
            Some(push) = outbound.next(), if writing.is_none() && queued.is_empty() => {
                queued.push_back(push);
            }
        }
    };
    // Unregister before the close handshake: from here on a push is Gone
    // rather than queued for a socket that will never write it, and
    // replies still waiting for room give up.
    gateway.registry.unregister(&entry.meta.connection_id);
    entry.end();
    // Messages still being handled finish on their own, as they would on
    // API Gateway: `$disconnect` does not wait for them.
    if let Some(mut in_flight) = in_flight.filter(|set| !set.is_empty()) {
        gateway
            .tasks
            .spawn(async move { while in_flight.next().await.is_some() {} });
    }
    match exit {
        Exit::Close(code, reason) => close(&mut socket, code, &reason).await,
        Exit::ClientClosed(ending) => {
            // tungstenite has queued the close reply; drive it out.
            drain(&mut socket).await;
            ending
        }
        Exit::Gone(ending) => ending,
    }
}

/// When the connection ends unless something happens first.
struct Deadlines {
    /// The idle and the duration limit, whichever comes first (both end
    /// the connection with 1001).
    expiry: Instant,
    /// Set while a frame is being written: a client that stops reading
    /// cannot hold the connection (or shutdown) hostage.
    write: Option<Instant>,
    /// Set by DeleteConnection or shutdown: what was queued before it,
    /// and the close frame, have until then to reach the client.
    close: Option<Instant>,
}

impl Deadlines {
    fn earliest(&self) -> Instant {
        [self.write, self.close]
            .into_iter()
            .flatten()
            .fold(self.expiry, Instant::min)
    }
}

/// Moves the timer to `earliest` when that comes before it. A deadline
/// that moved later (activity, a write done) waits for the timer to fire
/// and look: resetting it takes the timer wheel's lock, which every
/// message would otherwise do three times.
fn arm_if_earlier(timer: Pin<&mut Sleep>, earliest: Instant) {
    if earliest < timer.deadline() {
        timer.reset(earliest);
    }
}

/// The messages of a connection being handled; each gives the frame to
/// send back, if any.
type InFlight = FuturesUnordered<BoxFuture<'static, Option<Outbound>>>;

/// The next handled message's reply (`None` when none is in flight).
async fn next_reply(in_flight: &mut Option<InFlight>) -> Option<Option<Outbound>> {
    in_flight.as_mut()?.next().await
}

/// Starts writing a queued frame; the budget it holds, or why to stop.
fn begin_write<S>(socket: &mut WebSocketStream<S>, item: Outbound) -> Result<u32, Exit>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match item {
        Outbound::Message(message, charge) => match Pin::new(socket).start_send(message) {
            Ok(()) => Ok(charge),
            Err(_) => Err(Exit::Gone(Ending::new(1006, ""))),
        },
        Outbound::Close(frame) => Err(Exit::Close(frame.code, frame.reason.to_string())),
    }
}

/// What the socket did: finished a write, or gave a frame.
enum Io {
    Flushed(Result<(), WsError>),
    Frame(Option<Result<Message, WsError>>),
}

/// Drives the pending write (when `writing`) and reads the next frame
/// (when `reading`), whichever is ready first.
fn poll_io<S>(
    socket: &mut WebSocketStream<S>,
    writing: bool,
    reading: bool,
) -> impl std::future::Future<Output = Io> + '_
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    poll_fn(move |cx| {
        if writing && let Poll::Ready(result) = Pin::new(&mut *socket).poll_flush(cx) {
            return Poll::Ready(Io::Flushed(result));
        }
        if reading && let Poll::Ready(frame) = socket.poll_next_unpin(cx) {
            return Poll::Ready(Io::Frame(frame));
        }
        Poll::Pending
    })
}

/// Why the read loop stopped.
enum Exit {
    /// The gateway closes: send this close frame.
    Close(CloseCode, String),
    /// The client sent a close frame.
    ClientClosed(Ending),
    /// The socket is gone; no handshake is possible.
    Gone(Ending),
}

impl Exit {
    fn going_away() -> Exit {
        Exit::Close(CloseCode::Away, "Going away".into())
    }

    /// Maps a read error to the close code RFC 6455 and API Gateway use.
    fn for_error(error: WsError) -> Exit {
        tracing::debug!(%error, "closing connection after a read error");
        match error {
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                Exit::Gone(Ending::new(1006, ""))
            }
            WsError::Capacity(_) => Exit::Close(CloseCode::Size, "Message too big".into()),
            WsError::Utf8(_) => {
                Exit::Close(CloseCode::Invalid, "Invalid frame payload data".into())
            }
            WsError::Protocol(_) => Exit::Close(CloseCode::Protocol, "Protocol error".into()),
            _ => Exit::Gone(Ending::new(1006, "")),
        }
    }
}

/// Handles one message: routes it, invokes the integration, and gives
/// back the frame to send its client (a two-way reply or an error), with
/// its share of the connection's budget held. A panic in it fails that
/// message alone, not the connection.
fn handle_message(
    gateway: &Arc<Gateway>,
    entry: &Arc<ConnectionEntry>,
    body: String,
    is_base64_encoded: bool,
) -> impl Future<Output = Option<Outbound>> + Send + 'static {
    let gateway = Arc::clone(gateway);
    let entry = Arc::clone(entry);
    async move {
        let handled = AssertUnwindSafe(route_message(&gateway, &entry, body, is_base64_encoded));
        match handled.catch_unwind().await {
            Ok(Some(reply)) => entry.reserve(reply).await,
            Ok(None) => None,
            Err(_) => {
                tracing::error!(connection_id = %entry.meta.connection_id, "handling a message panicked");
                None
            }
        }
    }
}

async fn route_message(
    gateway: &Gateway,
    entry: &ConnectionEntry,
    body: String,
    is_base64_encoded: bool,
) -> Option<Message> {
    let meta = &entry.meta;
    let request_id = new_shared_id();
    let selection_input = (!is_base64_encoded).then_some(body.as_str());
    let routing = gateway.routing();
    let route = routing.select_route(selection_input);
    let route_key = route.map_or_else(|| "$default".into(), |r| Arc::clone(&r.key));
    let event = Event::message(
        &gateway.api,
        meta,
        route_key,
        Arc::clone(&request_id),
        new_id(),
        body,
        is_base64_encoded,
    );
    let mut reply = None;
    let (status, failure, integration) = match route {
        _ if !gateway.admit() => (429, Some("Too many requests"), None),
        None => (403, Some("Forbidden"), None),
        Some(route) => match gateway.invoke(route, &event).await {
            (Ok(response), integration) => {
                if route.return_response {
                    reply = reply_message(response.body, response.is_base64_encoded);
                }
                (200, None, Some(integration))
            }
            (Err(InvokeError::Failed(_)), integration) => {
                (500, Some("Internal server error"), Some(integration))
            }
            (Err(InvokeError::TimedOut(_)), integration) => {
                (504, Some("Endpoint request timed out"), Some(integration))
            }
        },
    };
    if let Some(failure) = failure {
        let error = error_message(failure, &meta.connection_id, &request_id);
        reply = Some(Message::text(error));
    }
    gateway.log(|| Record {
        integration,
        error_message: failure,
        ..Record::for_event(&event, status)
    });
    reply
}

/// A two-way route's reply body as a frame; empty bodies send nothing.
fn reply_message(body: Option<String>, is_base64_encoded: bool) -> Option<Message> {
    let body = body.filter(|b| !b.is_empty())?;
    if is_base64_encoded && let Ok(bytes) = BASE64.decode(&body) {
        return Some(Message::Binary(bytes.into()));
    }
    Some(Message::text(body))
}

/// Sends a close frame and waits briefly for the client's reply; a client
/// that does not read gets neither (both steps have a deadline), and the
/// ending is the code the gateway chose.
async fn close<S>(socket: &mut WebSocketStream<S>, code: CloseCode, reason: &str) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let sent = tokio::time::timeout(CLOSE_WAIT, socket.send(Message::Close(Some(frame)))).await;
    if matches!(sent, Ok(Ok(()))) {
        drain(socket).await;
    }
    Ending::new(u16::from(code), reason)
}

/// Reads (and drops) frames until the close handshake ends or times out.
async fn drain<S>(socket: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}
