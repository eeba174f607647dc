//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps what a burst freed (18,000 connections closed:
//! 193 MiB kept; a flood of unsigned requests: the same) in its arenas
//! for reuse, so RSS stays at the peak. `malloc_trim` returns the free
//! pages; a thread of its own calls it every few seconds, off the async
//! workers. Other allocators (musl, or an embedder's global allocator)
//! manage this themselves, so this is only for the `wsgate` binary on
//! glibc.

use std::time::Duration;

/// How often freed memory is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Starts the trimming thread (once per process).
pub fn return_freed_memory_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("wsgate-trim".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(TRIM_EVERY);
                        // SAFETY: malloc_trim only walks the allocator's own
                        // free lists under its locks; any thread may call it.
                        unsafe {
                            libc::malloc_trim(0);
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the memory trimming thread");
            }
        });
    }
}
