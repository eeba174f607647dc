//! Call slots shared fairly among callers (client connections). When every
//! slot is taken, the next one freed goes to the next caller in turn, not
//! to whoever asked first: a connection with a backlog of slow calls
//! cannot make another connection's single call wait behind all of it, as
//! API Gateway runs each message's integration on its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub struct FairSlots {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    free: usize,
    /// Each waiting caller's waiters, oldest first.
    waiting: HashMap<Arc<str>, VecDeque<oneshot::Sender<Slot>>>,
    /// Callers with waiters, in turn.
    turns: VecDeque<Arc<str>>,
}

/// A slot held; freed (or handed to the next caller in turn) on drop.
pub struct Slot {
    state: Option<Arc<Mutex<State>>>,
}

impl FairSlots {
    pub fn new(slots: usize) -> FairSlots {
        FairSlots {
            state: Arc::new(Mutex::new(State {
                free: slots,
                ..State::default()
            })),
        }
    }

    /// A slot for `caller`: at once when one is free and nobody waits,
    /// else when its turn comes.
    pub async fn acquire(&self, caller: &str) -> Slot {
        let waiter = {
            let mut state = self.state.lock().expect("lock poisoned");
            if state.free > 0 && state.turns.is_empty() {
                state.free -= 1;
                return Slot {
                    state: Some(Arc::clone(&self.state)),
                };
            }
            let (tx, rx) = oneshot::channel();
            let caller: Arc<str> = caller.into();
            let queue = state.waiting.entry(Arc::clone(&caller)).or_default();
            if queue.is_empty() {
                state.turns.push_back(Arc::clone(&caller));
            }
            state
                .waiting
                .get_mut(&caller)
                .expect("just inserted")
                .push_back(tx);
            rx
        };
        // A slot is sent only while this waits; a waiter dropped after it
        // was sent drops the slot, which frees it again.
        waiter
            .await
            .expect("a waiter's sender lives in the state until it is sent")
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        loop {
            let next = {
                let mut locked = state.lock().expect("lock poisoned");
                match next_waiter(&mut locked) {
                    Some(waiter) => waiter,
                    None => {
                        locked.free += 1;
                        return;
                    }
                }
            };
            let handed = Slot {
                state: Some(Arc::clone(&state)),
            };
            match next.send(handed) {
                Ok(()) => return,
                // That waiter gave up: the next one, without recursing.
                Err(mut unwanted) => {
                    unwanted.state = None;
                }
            }
        }
    }
}

/// The first waiter of the caller whose turn it is; the caller goes to
/// the back of the turns if it has more.
fn next_waiter(state: &mut State) -> Option<oneshot::Sender<Slot>> {
    while let Some(caller) = state.turns.pop_front() {
        let Some(queue) = state.waiting.get_mut(&caller) else {
            continue;
        };
        let waiter = queue.pop_front();
        if queue.is_empty() {
            state.waiting.remove(&caller);
        } else {
            state.turns.push_back(caller);
        }
        if let Some(waiter) = waiter {
            return Some(waiter);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One caller with a backlog, another with one call: the second is
    /// served at the first slot freed, not after the backlog.
    #[tokio::test]
    async fn a_backlog_does_not_starve_another_caller() {
        let slots = Arc::new(FairSlots::new(1));
        let held = slots.acquire("busy").await;
        let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..10 {
            let (slots, order_tx) = (Arc::clone(&slots), order_tx.clone());
            tokio::spawn(async move {
                let _slot = slots.acquire("busy").await;
                order_tx.send(format!("busy{i}")).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (slots2, order_tx2) = (Arc::clone(&slots), order_tx.clone());
        tokio::spawn(async move {
            let _slot = slots2.acquire("fresh").await;
            order_tx2.send("fresh".to_string()).unwrap();
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        let first = order.recv().await.unwrap();
        let second = order.recv().await.unwrap();
        // Turns alternate: one of the backlog (it asked first), then the
        // fresh caller, long before the backlog is done.
        assert_eq!((first.as_str(), second.as_str()), ("busy0", "fresh"));
    }

    /// A waiter that gives up hands its turn on; nothing leaks.
    #[tokio::test]
    async fn waiters_that_give_up_leave_the_slots_whole() {
        let slots = Arc::new(FairSlots::new(2));
        let a = slots.acquire("a").await;
        let b = slots.acquire("b").await;
        for _ in 0..5 {
            let waiting = slots.acquire("c");
            assert!(
                tokio::time::timeout(Duration::from_millis(5), waiting)
                    .await
                    .is_err()
            );
        }
        drop(a);
        drop(b);
        let _one = slots.acquire("d").await;
        let _two = slots.acquire("e").await;
        assert_eq!(slots.state.lock().unwrap().free, 0);
    }
}
