//! Stage throttling as API Gateway applies it: a token bucket per API that
//! refills at `rate` requests per second and holds at most `burst`.

use std::sync::Mutex;
use std::time::Instant;

/// `[transform.stage] throttling_burst_limit / throttling_rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    pub burst_limit: u32,
    pub rate_limit: f64,
}

#[derive(Debug)]
pub struct TokenBucket {
    settings: ThrottleSettings,
    /// Tokens left, and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(settings: ThrottleSettings) -> TokenBucket {
        TokenBucket {
            settings,
            state: Mutex::new((f64::from(settings.burst_limit), Instant::now())),
        }
    }

    /// Takes one token; false when the request is over the limit.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now(), 1)
    }

    /// Takes one token of a bucket shared by `nodes` nodes, each holding
    /// an equal share of its rate and burst (at least one request).
    pub fn try_acquire_share(&self, nodes: u32) -> bool {
        self.try_acquire_at(Instant::now(), nodes.max(1))
    }

    fn try_acquire_at(&self, now: Instant, nodes: u32) -> bool {
        let nodes = f64::from(nodes);
        let burst = f64::from(self.settings.burst_limit);
        let burst = if burst > 0.0 {
            (burst / nodes).max(1.0)
        } else {
            0.0
        };
        let rate = self.settings.rate_limit / nodes;
        let mut state = self.state.lock().expect("throttle lock poisoned");
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let refilled = (tokens + elapsed * rate).min(burst);
        if refilled >= 1.0 {
            *state = (refilled - 1.0, now);
            true
        } else {
            *state = (refilled, now);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let bucket = TokenBucket::new(ThrottleSettings {
            burst_limit: 3,
            rate_limit: 10.0,
        });
        let start = Instant::now();
        assert!((0..3).all(|_| bucket.try_acquire_at(start, 1)));
        assert!(!bucket.try_acquire_at(start, 1));
        // 10 per second: one more token after 100 ms, not before.
        assert!(!bucket.try_acquire_at(start + Duration::from_millis(50), 1));
        assert!(bucket.try_acquire_at(start + Duration::from_millis(120), 1));
        assert!(!bucket.try_acquire_at(start + Duration::from_millis(120), 1));
        // Never more than the burst, however long it waits.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_acquire_at(later, 1)));
        assert!(!bucket.try_acquire_at(later, 1));
    }

    #[test]
    fn a_node_of_a_cluster_keeps_its_share() {
        let bucket = TokenBucket::new(ThrottleSettings {
            burst_limit: 9,
            rate_limit: 30.0,
        });
        let start = Instant::now();
        // Three nodes: a burst of 3 here, and 10 per second.
        assert_eq!(
            (0..9).filter(|_| bucket.try_acquire_at(start, 3)).count(),
            3
        );
        assert!(!bucket.try_acquire_at(start + Duration::from_millis(50), 3));
        assert!(bucket.try_acquire_at(start + Duration::from_millis(120), 3));
        // A share is never below one request.
        let tiny = TokenBucket::new(ThrottleSettings {
            burst_limit: 1,
            rate_limit: 1.0,
        });
        assert!(tiny.try_acquire_at(start, 5));
    }

    #[test]
    fn zero_burst_refuses_everything() {
        let bucket = TokenBucket::new(ThrottleSettings {
            burst_limit: 0,
            rate_limit: 100.0,
        });
        assert!(!bucket.try_acquire());
    }
}
