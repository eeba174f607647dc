//! The connection registry: connection id → the connection's outbound
//! queue. Everything that pushes to clients (the management API, in-process
//! handlers) goes through the `Registry` trait, so a shared backend can
//! replace the in-memory one without touching the data plane.

use crate::events::ConnectionMeta;
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use futures_channel::mpsc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use tokio::sync::{Notify, Semaphore, TryAcquireError};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Bytes a connection may have queued for its client beyond what the
/// socket took, at least: pushes past it fail at once (the client is not
/// reading fast enough) instead of growing memory without bound.
pub const OUTBOUND_BYTES: usize = 1024 * 1024;
/// What each queued message costs besides its payload, so a flood of
/// empty messages is bounded too.
const MESSAGE_OVERHEAD: usize = 64;

/// The receiving end of a connection's outbound queue. futures' channel
/// rather than tokio's: tokio's allocates a block of 32 slots (~2 KiB) up
/// front, which every idle connection would keep; this one allocates per
/// message.
pub type OutboundReceiver = mpsc::UnboundedReceiver<Outbound>;

/// What a connection task is asked to do.
#[derive(Debug)]
pub enum Outbound {
    /// A frame, and the bytes of the connection's budget it holds until
    /// the socket took it.
    Message(Message, u32),
    Close(CloseFrame),
}

/// One live connection as the registry sees it.
pub struct ConnectionEntry {
    pub meta: Arc<ConnectionMeta>,
    last_active_ms: AtomicI64,
    /// Messages from and to the client, for the console.
    messages_in: AtomicU32,
    messages_out: AtomicU32,
    outbound: mpsc::UnboundedSender<Outbound>,
    /// The connection's outbound byte budget: queued frames hold permits
    /// until written; closed when the connection ends.
    budget: Semaphore,
    /// Woken by DeleteConnection, so the close is heard even while a
    /// write to a client that stopped reading is pending.
    closing: Notify,
}

impl ConnectionEntry {
    /// A new entry and the receiving end of its queue; `max_message`
    /// sizes the byte budget so at least two of the largest messages fit.
    pub fn new(
        meta: Arc<ConnectionMeta>,
        max_message: usize,
    ) -> (ConnectionEntry, OutboundReceiver) {
        let (outbound, receiver) = mpsc::unbounded();
        let budget = OUTBOUND_BYTES.max(2 * (max_message + MESSAGE_OVERHEAD));
        let entry = ConnectionEntry {
            last_active_ms: AtomicI64::new(meta.connected_at),
            messages_in: AtomicU32::new(0),
            messages_out: AtomicU32::new(0),
            meta,
            outbound,
            budget: Semaphore::new(budget.min(Semaphore::MAX_PERMITS)),
            closing: Notify::new(),
        };
        (entry, receiver)
    }

    /// Queues a push if the budget has room for it; fails at once when
    /// it has not (the client stopped reading) or the connection ended.
    pub fn push(&self, message: Message) -> Result<(), PushError> {
        let charge = charge(&message);
        match self.budget.try_acquire_many(charge) {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => return Err(PushError::QueueFull),
            Err(TryAcquireError::Closed) => return Err(PushError::Gone),
        }
        self.outbound
            .unbounded_send(Outbound::Message(message, charge))
            .map_err(|_| PushError::Gone)
    }

    /// Takes a reply's share of the budget, waiting for room, for the
    /// connection task to write; `None` once the connection has ended
    /// (its client can no longer receive anything).
    pub async fn reserve(&self, message: Message) -> Option<Outbound> {
        let charge = charge(&message);
        let permit = self.budget.acquire_many(charge).await.ok()?;
        permit.forget();
        Some(Outbound::Message(message, charge))
    }

    /// Asks the connection task to close with `frame`, after what is
    /// already queued.
    pub fn close(&self, frame: CloseFrame) {
        let _ = self.outbound.unbounded_send(Outbound::Close(frame));
        self.closing.notify_one();
    }

    /// Completes once a close was asked for.
    pub async fn close_requested(&self) {
        self.closing.notified().await;
    }

    /// A frame reached the client: gives back the budget it held.
    pub fn written(&self, charge: u32) {
        self.budget.add_permits(charge as usize);
        self.messages_out.fetch_add(1, Ordering::Relaxed);
    }

    /// The connection is over: pushes and waiting replies fail from now on.
    pub fn end(&self) {
        self.budget.close();
    }

    /// Records a message from the client (for `lastActiveAt`).
    pub fn received(&self, now_ms: i64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
        self.messages_in.fetch_add(1, Ordering::Relaxed);
    }

    pub fn last_active_at(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    /// Messages received from and written to the client so far.
    pub fn message_counts(&self) -> (u32, u32) {
        (
            self.messages_in.load(Ordering::Relaxed),
            self.messages_out.load(Ordering::Relaxed),
        )
    }
}

/// What a message costs of its connection's budget.
fn charge(message: &Message) -> u32 {
    let bytes = message.len() + MESSAGE_OVERHEAD;
    u32::try_from(bytes.min(Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX)
}

/// What GetConnection returns.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub connected_at: i64,
    pub last_active_at: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    #[error("no connection with that id (gone)")]
    Gone,
    /// `size` is `None` for a chunked body, whose size is never known.
    #[error("{}", match size {
        Some(size) => format!("payload of {size} bytes is larger than the {limit}-byte limit"),
        None => format!("payload is larger than the {limit}-byte limit"),
    })]
    PayloadTooLarge { size: Option<usize>, limit: usize },
    #[error("the client is not reading fast enough: its outbound queue is full")]
    QueueFull,
    /// The node that owns the connection cannot be reached now (a
    /// cluster whose NATS is down or partitioned).
    #[error("the connection's node cannot be reached: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Registry: Send + Sync + 'static {
    fn register(&self, entry: Arc<ConnectionEntry>);
    fn unregister(&self, connection_id: &str);
    /// Queues a message for the connection's client.
    async fn post(&self, connection_id: &str, message: Message) -> Result<(), PushError>;
    /// Takes the connection out of the registry at once (later calls for
    /// its id are Gone) and has it closed with 1000.
    async fn delete(&self, connection_id: &str) -> Result<(), PushError>;
    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError>;
    fn count(&self) -> usize;
    fn ids(&self) -> Vec<String>;
    /// The connections open on this node.
    fn local_connections(&self) -> Vec<Arc<ConnectionEntry>>;
    /// A fresh id for a connection being accepted here.
    fn new_connection_id(&self) -> String {
        crate::ids::new_id()
    }
    /// False while this node may not take new connections (a cluster
    /// node that cannot show its slot is its own).
    fn accepting(&self) -> bool {
        true
    }
    /// The nodes sharing the stage's throttle (this one included).
    fn live_nodes(&self) -> u32 {
        1
    }
    /// This node's name and slot, in a cluster.
    fn node(&self) -> Option<(&str, u16)> {
        None
    }
    /// The live nodes of the cluster, by slot (empty outside one, or when
    /// NATS cannot say).
    async fn nodes(&self) -> Vec<(u16, String)> {
        Vec::new()
    }
}

/// The registry of a single gateway process.
#[derive(Default)]
pub struct InMemoryRegistry {
    /// Keyed by the id the entry's metadata holds (shared, not copied).
    connections: DashMap<Arc<str>, Arc<ConnectionEntry>>,
}

impl InMemoryRegistry {
    /// Whether the connection is open on this node.
    pub fn holds(&self, connection_id: &str) -> bool {
        self.connections.contains_key(connection_id)
    }

    /// Takes every connection out and has each closed with `code`: their
    /// ids answer Gone from now on and each `$disconnect` runs.
    pub fn close_all(&self, code: CloseCode, reason: &str) {
        for id in self.ids() {
            if let Some((_, entry)) = self.connections.remove(id.as_str()) {
                entry.close(CloseFrame {
                    code,
                    reason: reason.to_string().into(),
                });
            }
        }
    }

    fn get(&self, connection_id: &str) -> Option<Arc<ConnectionEntry>> {
        // Clone out of the map: no shard lock is held across an await.
        self.connections
            .get(connection_id)
            .map(|e| Arc::clone(e.value()))
    }
}

#[async_trait]
impl Registry for InMemoryRegistry {
    fn register(&self, entry: Arc<ConnectionEntry>) {
        self.connections
            .insert(Arc::clone(&entry.meta.connection_id), entry);
    }

    fn unregister(&self, connection_id: &str) {
        self.connections.remove(connection_id);
    }

    async fn post(&self, connection_id: &str, message: Message) -> Result<(), PushError> {
        self.get(connection_id)
            .ok_or(PushError::Gone)?
            .push(message)
    }

    async fn delete(&self, connection_id: &str) -> Result<(), PushError> {
        // Only the call that removes the entry closes it: a second
        // DeleteConnection is Gone, as on API Gateway.
        let (_, entry) = self
            .connections
            .remove(connection_id)
            .ok_or(PushError::Gone)?;
        entry.close(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        });
        Ok(())
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        let entry = self.get(connection_id).ok_or(PushError::Gone)?;
        Ok(ConnectionInfo {
            connected_at: entry.meta.connected_at,
            last_active_at: entry.last_active_at(),
            source_ip: entry.meta.source_ip.to_string(),
            user_agent: entry.meta.user_agent.as_deref().map(str::to_string),
        })
    }

    fn count(&self) -> usize {
        self.connections.len()
    }

    fn ids(&self) -> Vec<String> {
        self.connections
            .iter()
            .map(|e| e.key().to_string())
            .collect()
    }

    fn local_connections(&self) -> Vec<Arc<ConnectionEntry>> {
        self.connections
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect()
    }
}

/// The `@connections` operations, in process: what the management API and
/// in-process handlers both call.
#[derive(Clone)]
pub struct Connections {
    registry: Arc<dyn Registry>,
    max_payload: usize,
}

impl Connections {
    pub fn new(registry: Arc<dyn Registry>, max_payload: usize) -> Connections {
        Connections {
            registry,
            max_payload,
        }
    }

    /// The largest payload PostToConnection takes.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// PostToConnection: UTF-8 data goes out as a text frame, anything
    /// else as a binary frame.
    pub async fn post(&self, connection_id: &str, data: impl Into<Bytes>) -> Result<(), PushError> {
        let data: Bytes = data.into();
        if data.len() > self.max_payload {
            return Err(PushError::PayloadTooLarge {
                size: Some(data.len()),
                limit: self.max_payload,
            });
        }
        let message = match std::str::from_utf8(&data) {
            Ok(_) => Message::Text(data.try_into().expect("checked as UTF-8 just above")),
            Err(_) => Message::Binary(data),
        };
        self.registry.post(connection_id, message).await
    }

    /// GetConnection.
    pub async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        self.registry.info(connection_id).await
    }

    /// DeleteConnection: the client is closed with 1000 and `$disconnect` runs.
    pub async fn delete(&self, connection_id: &str) -> Result<(), PushError> {
        self.registry.delete(connection_id).await
    }

    /// Ids of the connections open now.
    pub fn ids(&self) -> Vec<String> {
        self.registry.ids()
    }

    pub fn count(&self) -> usize {
        self.registry.count()
    }
}
