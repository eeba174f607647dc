//! wsgate as a cluster on NATS. Each node holds a slot (`lease`), and the
//! connection ids it gives out carry it, so any node knows a connection's
//! owner from its id alone: `@connections` calls (and in-process
//! `Connections`) for another node's connection go to that node by NATS
//! request/reply on its own subject (`wire`), and "no responders" means the
//! owner is gone: 410 at once. There is no shared registry to go stale;
//! local calls never touch NATS. The gateway sees only a `Registry`.

pub mod lease;
pub mod wire;

use crate::auth::keyring::{Credentials, Keyring};
use crate::auth::policy::Policy;
pub use crate::config::ClusterSettings;
use crate::gateway::registry::{
    ConnectionEntry, ConnectionInfo, InMemoryRegistry, PushError, Registry,
};
use async_trait::async_trait;
use lease::Lease;

/// The bucket of generated management keys, one per API stage.
const KEYS_BUCKET: &str = "wsgate_keys";
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

/// How often one node records that a slot's connections were declared
/// gone.
const DECLARE_EVERY: Duration = Duration::from_secs(2);
/// How long a slot found gone is answered 410 at once when nobody answers
/// for it, without the retries: its node, if it comes back, learns it was
/// declared gone and closes those connections, so the answer stays true;
/// a node that takes the slot again answers for its own ids.
const GONE_REMEMBERED: Duration = lease::TTL;

/// How long "no responders" is retried before it is taken to mean the
/// owner is gone: long enough for a node to reconnect after its NATS
/// server went away (its subscription is missing meanwhile), short enough
/// that a killed node's connections answer 410 within a second.
const NO_RESPONDERS_RETRIES: [Duration; 4] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
];

/// The longest a call that timed out waits to learn whether its owner's
/// slot was given back: one NATS round trip, unless NATS itself is slow.
const RELEASED_CHECK: Duration = Duration::from_millis(500);

/// Connects to NATS with the settings' credentials, failing at once when
/// it cannot be reached.
pub async fn connect(settings: &ClusterSettings, name: &str) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(3))
        .request_timeout(Some(wire::REMOTE_TIMEOUT))
        // A dead connection to NATS is seen within seconds, and a NATS
        // that comes back is found again within half a second.
        .ping_interval(Duration::from_secs(5))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100 * (attempts.saturating_sub(1) as u64).min(5))
        });
    if let Some(path) = &settings.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| format!("cannot use the NATS credentials in {}: {e}", path.display()))?;
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    if let Some(ca) = &settings.tls_ca {
        options = options.require_tls(true).add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        options = options
            .require_tls(true)
            .add_client_certificate(cert.clone(), key.clone());
    }
    let urls: Vec<&str> = settings.nats.split(',').map(str::trim).collect();
    // The first connection must happen now: an unreachable NATS at start
    // is an error, not a wait.
    let connecting = options.connect(urls.as_slice());
    let client = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| format!("cannot reach NATS at {} within 10 s", settings.nats))?
        .map_err(|e| format!("cannot connect to NATS at {}: {e}", settings.nats))?;
    Ok(client)
}

/// The registry of a clustered node: its own connections in memory, the
/// others' through NATS.
pub struct ClusterRegistry {
    local: Arc<InMemoryRegistry>,
    client: async_nats::Client,
    lease: Arc<Lease>,
    /// `wsgate.<api>.<stage>`: a node's subject is this `.<slot>`.
    subject: String,
    node: String,
    stop: CancellationToken,
    /// Answering calls, and renewing the lease: on leaving, the first
    /// answers what was already routed here, the second gives the slot
    /// back.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    replicas: usize,
    api_stage: String,
    /// When this node last declared each slot's connections gone.
    declared: std::sync::Mutex<std::collections::HashMap<u16, std::time::Instant>>,
    /// Since when calls have found NATS disconnected.
    outage: wire::Outage,
}

impl ClusterRegistry {
    /// Joins the cluster of `api_id`/`stage`: claims a slot and serves the
    /// calls other nodes make for this node's connections.
    pub async fn join(
        settings: &ClusterSettings,
        api_id: &str,
        stage: &str,
        max_payload: usize,
    ) -> Result<Arc<ClusterRegistry>, String> {
        let node = settings.node.clone().unwrap_or_else(default_node_name);
        let client = connect(settings, &format!("wsgate {node}")).await?;
        // A push to a connection on another node travels as one NATS
        // message: a limit NATS cannot carry would fail such pushes only.
        let nats_max = client.server_info().max_payload;
        if max_payload + wire::CALL_OVERHEAD > nats_max {
            return Err(format!(
                "max_message_size ({max_payload} bytes) is more than the NATS server carries in one message (max_payload {nats_max} bytes, less {} for a call's headers): raise max_payload in nats-server's config (at most 64 MB) or lower max_message_size",
                wire::CALL_OVERHEAD
            ));
        }
        let stage_key = safe(stage);
        let stop = CancellationToken::new();
        let nonce = crate::ids::new_id();
        let (lease, renewing) = lease::claim(
            lease::Holder {
                jetstream: async_nats::jetstream::new(client.clone()),
                replicas: settings.replicas,
                prefix: format!("{api_id}_{stage_key}"),
                token: format!("{node} {nonce}"),
            },
            stop.clone(),
        )
        .await?;
        let local = Arc::new(InMemoryRegistry::default());
        let subject = format!("wsgate.{api_id}.{stage_key}");
        let serving = wire::serve(
            client.clone(),
            subject.clone(),
            Arc::clone(&local),
            Arc::clone(&lease),
            max_payload,
            stop.clone(),
        )
        .await?;
        tokio::spawn(give_up_on_loss(
            Arc::clone(&local),
            Arc::clone(&lease),
            stop.clone(),
        ));
        Ok(Arc::new(ClusterRegistry {
            local,
            client,
            lease,
            subject,
            node,
            stop,
            tasks: std::sync::Mutex::new(vec![serving, renewing]),
            replicas: settings.replicas,
            api_stage: format!("{api_id}_{stage_key}"),
            declared: std::sync::Mutex::new(std::collections::HashMap::new()),
            outage: wire::Outage::default(),
        }))
    }

    pub fn lease(&self) -> &Arc<Lease> {
        &self.lease
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// This node's name (logs, access-log folder).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A sender whose lines are published on `<subject>.log` with this
    /// node's name, for `wsgate logs --follow`; bounded, so a slow NATS
    /// drops copies rather than holding memory.
    pub fn publish_access_log(&self) -> tokio::sync::mpsc::Sender<String> {
        let (lines, mut receiver) = tokio::sync::mpsc::channel::<String>(4096);
        let client = self.client.clone();
        let subject = log_subject(&self.subject);
        let node = self.node.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    _ = stop.cancelled() => return,
                    line = receiver.recv() => match line {
                        Some(line) => line,
                        None => return,
                    },
                };
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(NODE_HEADER, node.as_str());
                let _ = client
                    .publish_with_headers(subject.clone(), headers, line.into())
                    .await;
            }
        });
        lines
    }

    /// Leaves the cluster: stops answering and gives the slot back, so
    /// calls for this node's ids meet "no responders" (410) at once.
    pub async fn leave(&self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock poisoned"));
        let ended = futures_util::future::join_all(tasks);
        let _ = tokio::time::timeout(Duration::from_secs(3), ended).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
    }

    /// The management key of a cluster whose config names none: the
    /// first node generates it and keeps it in NATS (bucket `wsgate_keys`),
    /// every node accepts it. NATS carries every message anyway: it is
    /// the cluster's trusted backbone.
    pub async fn shared_key(&self, keyring: &Keyring) -> Result<Credentials, String> {
        let jetstream = async_nats::jetstream::new(self.client.clone());
        let store = kv_bucket(
            &jetstream,
            KEYS_BUCKET,
            "wsgate clusters' generated management keys",
            Duration::ZERO,
            self.replicas,
        )
        .await?;
        let candidate = Keyring::default().generate_user("wsgate");
        let text = format!(
            "{} {}",
            candidate.access_key_id, candidate.secret_access_key
        );
        // Whoever creates it first wins; everyone then reads the winner's.
        let _ = store.create(&self.api_stage, text.into()).await;
        let value = store
            .get(&self.api_stage)
            .await
            .map_err(|e| format!("cannot read the cluster's management key: {e}"))?
            .ok_or("the cluster's management key vanished from NATS")?;
        let value = String::from_utf8_lossy(&value).to_string();
        let (id, secret) = value
            .split_once(' ')
            .ok_or("the cluster's management key in NATS is malformed")?;
        keyring.insert_user(id, secret, "wsgate", Policy::allow_all());
        Ok(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: None,
        })
    }

    /// Records (at most every few seconds per slot) that this node told
    /// a caller `slot`'s connections are gone, for that node to find if
    /// it is alive after all.
    fn declare_gone(&self, slot: u16) {
        let now = std::time::Instant::now();
        {
            let mut declared = self.declared.lock().expect("declared lock poisoned");
            if declared
                .get(&slot)
                .is_some_and(|at| now.duration_since(*at) < DECLARE_EVERY)
            {
                return;
            }
            declared.retain(|_, at| now.duration_since(*at) < GONE_REMEMBERED);
            declared.insert(slot, now);
        }
        let jetstream = async_nats::jetstream::new(self.client.clone());
        let prefix = self.api_stage.clone();
        tokio::spawn(async move {
            if let Ok(store) = jetstream.get_key_value(lease::BUCKET).await {
                lease::declare_gone(&store, &prefix, slot).await;
            }
        });
    }

    /// Whether NATS says no node holds `slot` now (false when it cannot
    /// say in time).
    async fn slot_released(&self, slot: u16) -> bool {
        let jetstream = async_nats::jetstream::new(self.client.clone());
        let prefix = self.api_stage.clone();
        let look = async move {
            let store = jetstream.get_key_value(lease::BUCKET).await.ok()?;
            lease::is_free(&store, &prefix, slot).await
        };
        tokio::time::timeout(RELEASED_CHECK, look)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Whether this node found `slot`'s connections gone lately.
    fn found_gone(&self, slot: u16) -> bool {
        let declared = self.declared.lock().expect("declared lock poisoned");
        declared
            .get(&slot)
            .is_some_and(|at| at.elapsed() < GONE_REMEMBERED)
    }

    async fn remote(
        &self,
        connection_id: &str,
        call: wire::Call,
    ) -> Result<wire::Answer, PushError> {
        // An id that names no slot, or this node's own, is not open here:
        // gone, without asking anyone.
        let Some(slot) = crate::ids::slot_of(connection_id) else {
            return Err(PushError::Gone);
        };
        if slot == self.lease.slot() {
            return Err(PushError::Gone);
        }
        let subject = format!("{}.{slot}", self.subject);
        let mut retries = NO_RESPONDERS_RETRIES.iter();
        loop {
            match wire::call(
                &self.client,
                &self.outage,
                &subject,
                connection_id,
                call.clone(),
            )
            .await
            {
                Ok(answer) => return Ok(answer),
                Err(wire::CallError::Failed(error)) => return Err(error),
                // A node leaving drops the calls that reach it as it
                // unsubscribes (async-nats forgets a drained subscription
                // before the server has seen the unsubscribe). It gave its
                // slot back after closing every connection: a slot nobody
                // holds now has none.
                Err(wire::CallError::TimedOut(error)) => {
                    if self.slot_released(slot).await {
                        return Err(PushError::Gone);
                    }
                    return Err(error);
                }
                // Found gone lately: still gone.
                Err(wire::CallError::NoResponders) if self.found_gone(slot) => {
                    return Err(PushError::Gone);
                }
                // The owner is gone, or reconnecting to NATS: look again.
                Err(wire::CallError::NoResponders) => {}
            }
            match retries.next() {
                Some(pause) => tokio::time::sleep(*pause).await,
                None => {
                    self.declare_gone(slot);
                    return Err(PushError::Gone);
                }
            }
        }
    }
}

/// The header naming the node an access-log line came from.
pub const NODE_HEADER: &str = "Wsgate-Node";

/// Where a cluster's nodes publish their access-log lines.
fn log_subject(prefix: &str) -> String {
    format!("{prefix}.log")
}

/// Follows every node's access-log lines through NATS, calling `line`
/// with the node's name and the line until it returns false.
pub async fn follow_access_log(
    settings: &ClusterSettings,
    api_id: &str,
    stage: &str,
    mut line: impl FnMut(&str, &str) -> bool,
) -> Result<(), String> {
    use futures_util::StreamExt;
    let client = connect(settings, "wsgate logs").await?;
    let subject = log_subject(&format!("wsgate.{api_id}.{}", safe(stage)));
    let mut lines = client
        .subscribe(subject)
        .await
        .map_err(|e| format!("cannot follow the cluster's access log: {e}"))?;
    while let Some(message) = lines.next().await {
        let node = message
            .headers
            .as_ref()
            .and_then(|h| h.get(NODE_HEADER))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        if !line(&node, &String::from_utf8_lossy(&message.payload)) {
            break;
        }
    }
    Ok(())
}

/// A JetStream key-value bucket, created if it does not exist. The stream
/// is made as the KV clients make one (one value per key, rollups, direct
/// get), without the account query async-nats's own `create_key_value`
/// starts with, whose answer NATS 2.9 (Debian's) words differently.
pub async fn kv_bucket(
    jetstream: &async_nats::jetstream::Context,
    bucket: &str,
    description: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<async_nats::jetstream::kv::Store, String> {
    use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
    if let Ok(store) = jetstream.get_key_value(bucket).await {
        return Ok(store);
    }
    let config = Config {
        name: format!("KV_{bucket}"),
        description: Some(description.to_string()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        // Deduplication is not used; a window longer than the age is refused.
        duplicate_window: if max_age.is_zero() {
            Duration::from_secs(120)
        } else {
            max_age.min(Duration::from_secs(120))
        },
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas.max(1),
        discard: DiscardPolicy::New,
        ..Default::default()
    };
    if let Err(e) = jetstream.create_stream(config).await {
        // Another node may have made it meanwhile.
        if let Ok(store) = jetstream.get_key_value(bucket).await {
            return Ok(store);
        }
        return Err(format!(
            "cannot create the {bucket} key-value bucket (does nats-server run with JetStream, -js?): {e}"
        ));
    }
    jetstream
        .get_key_value(bucket)
        .await
        .map_err(|e| format!("cannot open the {bucket} key-value bucket: {e}"))
}

impl Drop for ClusterRegistry {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// When the slot is lost, this node's connections carry ids that now name
/// another node; when other nodes answered 410 for them, they are gone as
/// far as every backend knows. Either way they are closed (1012, service
/// restart: clients reconnect, `$connect` registers them again), each
/// `$disconnect` runs.
async fn give_up_on_loss(local: Arc<InMemoryRegistry>, lease: Arc<Lease>, stop: CancellationToken) {
    let mut slots = lease.watch_slot();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = lease.declared_gone.notified() => local.close_all(CloseCode::Restart, ""),
            changed = slots.changed() => {
                if changed.is_err() {
                    return;
                }
                if *slots.borrow_and_update() == 0 {
                    local.close_all(CloseCode::Restart, "");
                }
            }
        }
    }
}

#[async_trait]
impl Registry for ClusterRegistry {
    fn register(&self, entry: Arc<ConnectionEntry>) {
        self.local.register(entry);
    }

    fn unregister(&self, connection_id: &str) {
        self.local.unregister(connection_id);
    }

    async fn post(&self, connection_id: &str, message: Message) -> Result<(), PushError> {
        if self.local.holds(connection_id) {
            return self.local.post(connection_id, message).await;
        }
        let call = match message {
            Message::Text(text) => wire::Call::Post {
                data: bytes::Bytes::from(text),
                binary: false,
            },
            Message::Binary(data) => wire::Call::Post { data, binary: true },
            _ => return Err(PushError::Gone),
        };
        self.remote(connection_id, call).await.map(|_| ())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), PushError> {
        if self.local.holds(connection_id) {
            return self.local.delete(connection_id).await;
        }
        self.remote(connection_id, wire::Call::Delete)
            .await
            .map(|_| ())
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        if self.local.holds(connection_id) {
            return self.local.info(connection_id).await;
        }
        match self.remote(connection_id, wire::Call::Get).await? {
            wire::Answer::Info(info) => Ok(info),
            wire::Answer::Done => Err(PushError::Unavailable(
                "the owner node answered GetConnection without the connection".into(),
            )),
        }
    }

    fn count(&self) -> usize {
        self.local.count()
    }

    fn ids(&self) -> Vec<String> {
        self.local.ids()
    }

    fn local_connections(&self) -> Vec<Arc<ConnectionEntry>> {
        self.local.local_connections()
    }

    fn new_connection_id(&self) -> String {
        crate::ids::new_id_in_slot(self.lease.slot())
    }

    fn accepting(&self) -> bool {
        self.lease.held()
    }

    fn live_nodes(&self) -> u32 {
        self.lease.live_nodes()
    }

    fn node(&self) -> Option<(&str, u16)> {
        Some((&self.node, self.lease.slot()))
    }

    async fn nodes(&self) -> Vec<(u16, String)> {
        let jetstream = async_nats::jetstream::new(self.client.clone());
        let Ok(store) = jetstream.get_key_value(lease::BUCKET).await else {
            return Vec::new();
        };
        lease::holders(&store, &self.api_stage)
            .await
            .unwrap_or_default()
    }
}

/// `host-pid`: the default node name.
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", std::process::id())
}

/// A stage as a subject token and KV key part (`$default` → `_default`).
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
