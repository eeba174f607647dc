//! A node's slot: a number unique among the live nodes of one API stage's
//! cluster, held as a JetStream key-value lease.
//!
//! - Claiming is a KV create, which fails when the key exists, so two
//!   nodes starting at the same instant never share a slot.
//! - The lease is renewed by updates naming the revision the node last
//!   wrote (compare-and-set); the bucket's max age is its time to live.
//! - A node counts its lease as held only until `TTL - MARGIN` after it
//!   last *sent* a renewal that succeeded: the key cannot have expired on
//!   the server before then, so no other node can hold the slot while
//!   this one thinks it does. Without it, the node takes no new
//!   connections and answers only for the connections it has.
//! - A node that finds its slot taken (it was cut off longer than the
//!   lease) gives its connections up and claims a new slot.

use async_nats::jetstream::kv::{CreateErrorKind, Operation, Store};
use bytes::Bytes;
use rand::seq::SliceRandom;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The KV bucket every API's slots live in.
pub const BUCKET: &str = "wsgate_slots";
/// How long a lease lives without renewal. A killed node is noticed at
/// once by its missing subscription, not by this: it only says how long
/// a node may be cut off from NATS and still take new connections.
pub const TTL: Duration = Duration::from_secs(30);
/// How often it is renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How much earlier than the server the node gives its lease up: covers
/// the time between sending a renewal and the server writing it.
const MARGIN: Duration = Duration::from_secs(2);
/// How long one KV operation may take.
const KV_TIMEOUT: Duration = Duration::from_secs(2);
/// Slots are 1..=MAX_SLOT (ids carry 12 bits of it).
pub const MAX_SLOT: u16 = 4095;

/// The lease as the rest of the node sees it.
pub struct Lease {
    /// The slot now; 0 while the node has none.
    slot: AtomicU16,
    slot_changes: watch::Sender<u16>,
    /// Milliseconds after `epoch` when the last successful renewal was
    /// sent (0: not held).
    renewed_at: AtomicU64,
    epoch: Instant,
    /// Live nodes of this API stage (slots in the bucket), recently.
    live_nodes: AtomicU32,
    /// Woken when another node answered 410 for this node's connections
    /// (it could not reach this node): they must go, so that what the
    /// other node said stays true.
    pub declared_gone: tokio::sync::Notify,
}

impl Lease {
    fn new(slot: u16, sent: Instant) -> Lease {
        let epoch = sent - Duration::from_millis(1);
        let lease = Lease {
            slot: AtomicU16::new(slot),
            slot_changes: watch::channel(slot).0,
            renewed_at: AtomicU64::new(0),
            epoch,
            live_nodes: AtomicU32::new(1),
            declared_gone: tokio::sync::Notify::new(),
        };
        lease.renewed(sent);
        lease
    }

    /// The slot now (0: none).
    pub fn slot(&self) -> u16 {
        self.slot.load(Ordering::Relaxed)
    }

    /// Whether the slot is surely this node's now.
    pub fn held(&self) -> bool {
        let renewed_at = self.renewed_at.load(Ordering::Relaxed);
        renewed_at != 0
            && self.slot() != 0
            && (self.epoch.elapsed().as_millis() as u64)
                < renewed_at + (TTL - MARGIN).as_millis() as u64
    }

    pub fn live_nodes(&self) -> u32 {
        self.live_nodes.load(Ordering::Relaxed).max(1)
    }

    /// Sees each change of slot (0 while the node has none).
    pub fn watch_slot(&self) -> watch::Receiver<u16> {
        self.slot_changes.subscribe()
    }

    fn renewed(&self, sent: Instant) {
        let at = sent.saturating_duration_since(self.epoch).as_millis() as u64;
        self.renewed_at.store(at.max(1), Ordering::Relaxed);
    }

    fn set_slot(&self, slot: u16) {
        self.slot.store(slot, Ordering::Relaxed);
        if slot == 0 {
            self.renewed_at.store(0, Ordering::Relaxed);
        }
        self.slot_changes.send_replace(slot);
    }
}

/// The slots bucket, created if it does not exist.
pub async fn bucket(
    jetstream: &async_nats::jetstream::Context,
    replicas: usize,
) -> Result<Store, String> {
    super::kv_bucket(
        jetstream,
        BUCKET,
        "wsgate cluster nodes' slots",
        TTL,
        replicas,
    )
    .await
}

/// Where the slots of one API stage live, and who this node is.
pub struct Holder {
    pub jetstream: async_nats::jetstream::Context,
    pub replicas: usize,
    /// `<api>_<stage>`: keys are `<prefix>.<slot>`.
    pub prefix: String,
    /// The value this node writes: its name and a nonce, so a restarted
    /// node of the same name is not taken for this one.
    pub token: String,
}

/// Claims a free slot and keeps it renewed (or replaced) until `stop`,
/// when the slot is given back.
pub async fn claim(
    holder: Holder,
    stop: CancellationToken,
) -> Result<(Arc<Lease>, tokio::task::JoinHandle<()>), String> {
    let store = bucket(&holder.jetstream, holder.replicas).await?;
    let sent = Instant::now();
    let (slot, revision) = claim_any(&store, &holder).await?;
    let lease = Arc::new(Lease::new(slot, sent));
    tracing::info!(slot, node = %holder.token, "cluster: slot claimed");
    let renewing = tokio::spawn(renew(holder, store, Arc::clone(&lease), revision, stop));
    Ok((lease, renewing))
}

async fn claim_any(store: &Store, holder: &Holder) -> Result<(u16, u64), String> {
    let mut slots: Vec<u16> = (1..=MAX_SLOT).collect();
    slots.shuffle(&mut rand::rng());
    for slot in slots {
        let create = store.create(key(&holder.prefix, slot), token(holder));
        match tokio::time::timeout(KV_TIMEOUT, create).await {
            Ok(Ok(revision)) => return Ok((slot, revision)),
            Ok(Err(e)) if e.kind() == CreateErrorKind::AlreadyExists => continue,
            Ok(Err(e)) => return Err(format!("cannot claim a cluster slot: {e}")),
            Err(_) => return Err("cannot claim a cluster slot: NATS did not answer".into()),
        }
    }
    Err(format!(
        "every one of the {MAX_SLOT} cluster slots is taken"
    ))
}

/// Whether no node holds `slot` (`None` when NATS cannot say).
pub async fn is_free(store: &Store, prefix: &str, slot: u16) -> Option<bool> {
    store
        .get(key(prefix, slot))
        .await
        .ok()
        .map(|entry| entry.is_none())
}

fn key(prefix: &str, slot: u16) -> String {
    format!("{prefix}.{slot}")
}

/// Where a node that answered 410 for `slot`'s connections, because no
/// node answered for them, says so.
pub fn gone_key(prefix: &str, slot: u16) -> String {
    format!("{prefix}_gone.{slot}")
}

/// Records that `slot`'s connections were answered 410 because nobody
/// answered for them: if the slot's node is in fact alive (cut off from
/// NATS), it finds this at its next renewal and closes them.
pub async fn declare_gone(store: &Store, prefix: &str, slot: u16) {
    let put = store.put(gone_key(prefix, slot), Bytes::from_static(b"gone"));
    let _ = tokio::time::timeout(KV_TIMEOUT, put).await;
}

fn token(holder: &Holder) -> Bytes {
    Bytes::from(holder.token.clone())
}

/// What a renewal found.
enum Renewal {
    Renewed(u64),
    /// Another node holds the slot.
    Taken,
    /// NATS could not say.
    Unknown(String),
}

async fn renew(
    holder: Holder,
    mut store: Store,
    lease: Arc<Lease>,
    mut revision: u64,
    stop: CancellationToken,
) {
    let mut timer = tokio::time::interval(RENEW_EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds: u32 = 0;
    let mut unreachable_logged = false;
    // Declarations older than this node's claim are a previous holder's.
    let mut claimed_at = revision;
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                // Leaving: the slot is free at once for the next node.
                let slot = lease.slot();
                if slot != 0 && lease.held() {
                    let _ = tokio::time::timeout(KV_TIMEOUT, store.delete(key(&holder.prefix, slot))).await;
                }
                return;
            }
            _ = timer.tick() => {}
        }
        rounds = rounds.wrapping_add(1);
        let slot = lease.slot();
        if slot == 0 {
            // Lost earlier: find a new one.
            let sent = Instant::now();
            if let Ok((slot, next)) = claim_any(&store, &holder).await {
                revision = next;
                claimed_at = next;
                lease.renewed(sent);
                lease.set_slot(slot);
                tracing::warn!(
                    slot,
                    "cluster: new slot claimed; accepting connections again"
                );
            }
            continue;
        }
        let sent = Instant::now();
        match renew_once(&store, &holder, slot, revision).await {
            Renewal::Renewed(next) => {
                revision = next;
                check_declared_gone(&store, &holder.prefix, slot, claimed_at, &lease).await;
                let was_held = lease.held();
                lease.renewed(sent);
                if unreachable_logged || !was_held {
                    tracing::info!(slot, "cluster: lease renewed");
                    unreachable_logged = false;
                }
                if rounds % 3 == 1
                    && let Some(count) = live_nodes(&store, &holder.prefix).await
                {
                    lease.live_nodes.store(count, Ordering::Relaxed);
                }
            }
            Renewal::Taken => {
                tracing::error!(
                    slot,
                    "cluster: another node holds this node's slot (this node was cut off from NATS longer than the lease); closing this node's connections and claiming a new slot"
                );
                lease.set_slot(0);
            }
            Renewal::Unknown(why) => {
                if !unreachable_logged {
                    tracing::warn!(slot, error = %why, "cluster: cannot renew the slot lease; new connections stop {} s after the last renewal", (TTL - MARGIN).as_secs());
                    unreachable_logged = true;
                }
                // The bucket itself may be gone (a NATS that lost its
                // storage): make it again.
                if let Ok(again) = bucket(&holder.jetstream, holder.replicas).await {
                    store = again;
                }
            }
        }
    }
}

/// Whether another node declared this node's connections gone since it
/// claimed its slot; if so they are closed and the declaration cleared.
async fn check_declared_gone(
    store: &Store,
    prefix: &str,
    slot: u16,
    claimed_at: u64,
    lease: &Lease,
) {
    let key = gone_key(prefix, slot);
    let Ok(Ok(Some(entry))) = tokio::time::timeout(KV_TIMEOUT, store.entry(&key)).await else {
        return;
    };
    if entry.operation == Operation::Put && entry.revision > claimed_at {
        tracing::warn!(
            slot,
            "cluster: other nodes answered 410 for this node's connections while it was cut off from NATS; closing them so their clients reconnect"
        );
        lease.declared_gone.notify_one();
        let _ = tokio::time::timeout(KV_TIMEOUT, store.purge(&key)).await;
    }
}

async fn renew_once(store: &Store, holder: &Holder, slot: u16, revision: u64) -> Renewal {
    let key = key(&holder.prefix, slot);
    let update = store.update(&key, token(holder), revision);
    match tokio::time::timeout(KV_TIMEOUT, update).await {
        Ok(Ok(next)) => return Renewal::Renewed(next),
        Err(_) => return Renewal::Unknown("NATS did not answer".into()),
        Ok(Err(_)) => {}
    }
    // The revision did not match, or the update failed: look at the key.
    let entry = match tokio::time::timeout(KV_TIMEOUT, store.entry(&key)).await {
        Ok(Ok(entry)) => entry,
        Ok(Err(e)) => return Renewal::Unknown(e.to_string()),
        Err(_) => return Renewal::Unknown("NATS did not answer".into()),
    };
    match entry {
        Some(entry) if entry.operation == Operation::Put => {
            if entry.value == token(holder) {
                // Ours, at a revision we did not see (an answer lost).
                match store.update(&key, token(holder), entry.revision).await {
                    Ok(next) => Renewal::Renewed(next),
                    Err(e) => Renewal::Unknown(e.to_string()),
                }
            } else {
                Renewal::Taken
            }
        }
        // Expired or deleted while we were away: ours again if nobody
        // takes it first.
        _ => match store.create(&key, token(holder)).await {
            Ok(next) => Renewal::Renewed(next),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Renewal::Taken,
            Err(e) => Renewal::Unknown(e.to_string()),
        },
    }
}

/// The nodes holding a slot of `prefix`: (slot, node name), by slot.
pub async fn holders(store: &Store, prefix: &str) -> Option<Vec<(u16, String)>> {
    use futures_util::StreamExt;
    let listing = async {
        let wanted = format!("{prefix}.");
        let keys: Vec<String> = store
            .keys()
            .await
            .ok()?
            .filter_map(|k| async move { k.ok() })
            .filter(|k| std::future::ready(k.starts_with(&wanted)))
            .collect()
            .await;
        let mut holders = Vec::new();
        for key in keys {
            let Ok(slot) = key[wanted.len()..].parse::<u16>() else {
                continue;
            };
            // A token is "<node> <nonce>"; a node name has no spaces.
            if let Ok(Some(token)) = store.get(&key).await {
                let token = String::from_utf8_lossy(&token).into_owned();
                let node = token.split(' ').next().unwrap_or_default().to_string();
                holders.push((slot, node));
            }
        }
        holders.sort();
        Some(holders)
    };
    tokio::time::timeout(KV_TIMEOUT, listing)
        .await
        .ok()
        .flatten()
}

/// How many slots of `prefix` are held.
async fn live_nodes(store: &Store, prefix: &str) -> Option<u32> {
    use futures_util::StreamExt;
    let listing = async {
        let keys = store.keys().await.ok()?;
        let wanted = format!("{prefix}.");
        let count = keys
            .filter_map(|k| async move { k.ok() })
            .filter(|k| std::future::ready(k.starts_with(&wanted)))
            .count()
            .await;
        Some(count as u32)
    };
    tokio::time::timeout(KV_TIMEOUT, listing)
        .await
        .ok()
        .flatten()
}
