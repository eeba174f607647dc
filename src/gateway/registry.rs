//! The connection registry: connection id → the connection's outbound
//! queue. Everything that pushes to clients (the management API, in-process
//! handlers) goes through the `Registry` trait, so a shared backend can
//! replace the in-memory one without touching the data plane.

use crate::events::ConnectionMeta;
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How long a push waits for room in a connection's queue before failing
/// (a client that stopped reading).
const PUSH_WAIT: Duration = Duration::from_secs(5);

/// What a connection task is asked to do.
#[derive(Debug)]
pub enum Outbound {
    Message(Message),
    Close(CloseFrame),
}

/// One live connection as the registry sees it.
pub struct ConnectionEntry {
    pub meta: Arc<ConnectionMeta>,
    last_active_ms: AtomicI64,
    outbound: mpsc::Sender<Outbound>,
}

impl ConnectionEntry {
    pub fn new(meta: Arc<ConnectionMeta>, outbound: mpsc::Sender<Outbound>) -> ConnectionEntry {
        ConnectionEntry {
            last_active_ms: AtomicI64::new(meta.connected_at),
            meta,
            outbound,
        }
    }

    /// Queues a reply to this connection's client; a connection that is
    /// already gone drops it (its client can no longer receive anything).
    pub async fn reply(&self, message: Message) {
        let _ = self.outbound.send(Outbound::Message(message)).await;
    }

    /// Records client activity (for `lastActiveAt`).
    pub fn touch(&self, now_ms: i64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }
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
    #[error("payload of {size} bytes is larger than the {limit}-byte limit")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("the client is not reading; its queue stayed full for {0:?}")]
    Stalled(Duration),
}

#[async_trait]
pub trait Registry: Send + Sync + 'static {
    fn register(&self, entry: Arc<ConnectionEntry>);
    fn unregister(&self, connection_id: &str);
    async fn send(&self, connection_id: &str, outbound: Outbound) -> Result<(), PushError>;
    async fn info(&self, connection_id: &str) -> Option<ConnectionInfo>;
    fn count(&self) -> usize;
    fn ids(&self) -> Vec<String>;
}

/// The registry of a single gateway process.
#[derive(Default)]
pub struct InMemoryRegistry {
    connections: DashMap<String, Arc<ConnectionEntry>>,
}

impl InMemoryRegistry {
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
            .insert(entry.meta.connection_id.clone(), entry);
    }

    fn unregister(&self, connection_id: &str) {
        self.connections.remove(connection_id);
    }

    async fn send(&self, connection_id: &str, outbound: Outbound) -> Result<(), PushError> {
        let entry = self.get(connection_id).ok_or(PushError::Gone)?;
        match entry.outbound.send_timeout(outbound, PUSH_WAIT).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(PushError::Gone),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(PushError::Stalled(PUSH_WAIT)),
        }
    }

    async fn info(&self, connection_id: &str) -> Option<ConnectionInfo> {
        let entry = self.get(connection_id)?;
        Some(ConnectionInfo {
            connected_at: entry.meta.connected_at,
            last_active_at: entry.last_active_ms.load(Ordering::Relaxed),
            source_ip: entry.meta.source_ip.clone(),
            user_agent: entry.meta.user_agent.clone(),
        })
    }

    fn count(&self) -> usize {
        self.connections.len()
    }

    fn ids(&self) -> Vec<String> {
        self.connections.iter().map(|e| e.key().clone()).collect()
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

    /// PostToConnection: UTF-8 data goes out as a text frame, anything
    /// else as a binary frame.
    pub async fn post(&self, connection_id: &str, data: impl Into<Bytes>) -> Result<(), PushError> {
        let data: Bytes = data.into();
        if data.len() > self.max_payload {
            return Err(PushError::PayloadTooLarge {
                size: data.len(),
                limit: self.max_payload,
            });
        }
        let message = match std::str::from_utf8(&data) {
            Ok(_) => Message::Text(data.try_into().expect("checked as UTF-8 just above")),
            Err(_) => Message::Binary(data),
        };
        self.registry
            .send(connection_id, Outbound::Message(message))
            .await
    }

    /// GetConnection.
    pub async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        self.registry
            .info(connection_id)
            .await
            .ok_or(PushError::Gone)
    }

    /// DeleteConnection: the client is closed with 1000 and `$disconnect` runs.
    pub async fn delete(&self, connection_id: &str) -> Result<(), PushError> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        self.registry
            .send(connection_id, Outbound::Close(frame))
            .await
    }

    /// Ids of the connections open now.
    pub fn ids(&self) -> Vec<String> {
        self.registry.ids()
    }

    pub fn count(&self) -> usize {
        self.registry.count()
    }
}
