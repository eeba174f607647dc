//! API Gateway's WebSocket quotas, each configurable.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest message (all frames together); larger closes with 1009.
    /// Also the largest management API payload (413 above it).
    pub max_message_size: usize,
    /// Largest single frame payload; larger closes with 1009.
    pub max_frame_size: usize,
    /// A connection with no client message for this long is closed with 1001.
    pub idle_timeout: Duration,
    /// A connection is closed with 1001 after this long, whatever it does.
    pub max_duration: Duration,
    /// Integration timeout for routes that set none.
    pub integration_timeout: Duration,
    /// The longest one write to a client may take; a client that does not
    /// read for this long is disconnected (it cannot take a close frame).
    pub write_timeout: Duration,
    /// Messages of one connection being handled at once; past this the
    /// gateway stops reading that socket until one finishes (backpressure).
    pub max_in_flight_per_connection: usize,
    /// Stage throttling for the whole API; `None`: unthrottled.
    pub throttle: Option<super::throttle::ThrottleSettings>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 128 * 1024,
            max_frame_size: 32 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_duration: Duration::from_secs(2 * 60 * 60),
            integration_timeout: Duration::from_secs(29),
            write_timeout: Duration::from_secs(10),
            max_in_flight_per_connection: 64,
            throttle: None,
        }
    }
}
