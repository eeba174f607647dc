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
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("throttle lock poisoned");
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let refilled =
            (tokens + elapsed * self.settings.rate_limit).min(f64::from(self.settings.burst_limit));
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
        assert!((0..3).all(|_| bucket.try_acquire_at(start)));
        assert!(!bucket.try_acquire_at(start));
        // 10 per second: one more token after 100 ms, not before.
        assert!(!bucket.try_acquire_at(start + Duration::from_millis(50)));
        assert!(bucket.try_acquire_at(start + Duration::from_millis(120)));
        assert!(!bucket.try_acquire_at(start + Duration::from_millis(120)));
        // Never more than the burst, however long it waits.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_acquire_at(later)));
        assert!(!bucket.try_acquire_at(later));
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
