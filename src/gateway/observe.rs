//! What the data plane tells whoever watches it (the web console), through
//! a seam the data plane owns: it publishes to an `Observer`, if one is
//! installed, and never names the console. The console installs itself
//! (admin points down at the gateway; nothing here points up at it).

use crate::access_log::{Record, Trace};
use std::sync::{Arc, OnceLock};

/// Receives what happens, as it happens; must not block.
pub trait Observer: Send + Sync + 'static {
    /// One CONNECT, MESSAGE or DISCONNECT of `api`, as its access log
    /// describes it, with what its handler got and answered.
    fn event(
        &self,
        api: &Arc<String>,
        record: &Record<'_>,
        trace: Option<Box<Trace>>,
        access_log_line: Option<String>,
    );

    /// A line a function instance printed.
    fn log_line(&self, route: &str, instance: u64, stream: &'static str, text: &str);
}

static OBSERVER: OnceLock<&'static dyn Observer> = OnceLock::new();

/// Installs the observer (the first one stays).
pub fn install(observer: &'static dyn Observer) {
    let _ = OBSERVER.set(observer);
}

/// The observer, if one watches: the data plane's hooks are one load.
pub fn get() -> Option<&'static dyn Observer> {
    OBSERVER.get().copied()
}
