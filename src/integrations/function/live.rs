//! Live code, as `sst dev` gives it: the files a handler is built from
//! are watched; when one changes, the handler is rebuilt and the warm
//! instances are retired once their current invocation ends, so the next
//! invocation runs the new code. Connections are never touched. A build
//! that fails is logged with its file:line and the last good code keeps
//! serving.

use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long changes are gathered before rebuilding once (an editor's save
/// is often several events).
const SETTLE: Duration = Duration::from_millis(50);

/// Watches a handler's files while it is alive; dropping it stops.
pub struct LiveCode {
    stop: Arc<AtomicBool>,
}

impl Drop for LiveCode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Live code that watches nothing (a handler whose files another one
/// watches).
pub fn idle() -> LiveCode {
    LiveCode {
        stop: Arc::new(AtomicBool::new(true)),
    }
}

/// What live code does with a handler.
pub struct Reload {
    pub label: String,
    /// Rebuilds the handler; the files it is now made of.
    pub rebuild: Box<dyn Fn() -> Result<Vec<PathBuf>, String> + Send>,
    /// The new code is in place: retire the warm instances.
    pub on_new_code: Box<dyn Fn() + Send>,
}

/// Starts watching `inputs` (files outside `node_modules`; packages are
/// not app code) on a thread of its own.
pub fn watch(inputs: Vec<PathBuf>, reload: Reload) -> Result<LiveCode, String> {
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(tx)
        .map_err(|e| format!("cannot watch {}'s files: {e}", reload.label))?;
    let mut files = app_files(inputs);
    let mut dirs = BTreeSet::new();
    watch_dirs(&mut watcher, &files, &mut dirs);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let label = reload.label.clone();
    std::thread::Builder::new()
        .name(format!("wsgate-live-{label}"))
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let first = match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(event) => event,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                if !touches(&first, &files) {
                    continue;
                }
                // Gather the rest of this save.
                let until = Instant::now() + SETTLE;
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    if rx.recv_timeout(left).is_err() {
                        break;
                    }
                }
                let started = Instant::now();
                match (reload.rebuild)() {
                    Ok(inputs) => {
                        files = app_files(inputs);
                        watch_dirs(&mut watcher, &files, &mut dirs);
                        (reload.on_new_code)();
                        tracing::info!(
                            route = %reload.label,
                            ms = started.elapsed().as_millis() as u64,
                            "code changed: rebuilt; the next invocation runs it"
                        );
                    }
                    Err(error) => tracing::error!(
                        route = %reload.label,
                        "code changed but does not build; the last good code keeps serving:\n{error}"
                    ),
                }
            }
        })
        .map_err(|e| format!("cannot watch {label}'s files: {e}"))?;
    Ok(LiveCode { stop })
}

fn app_files(inputs: Vec<PathBuf>) -> BTreeSet<PathBuf> {
    inputs
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "node_modules"))
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect()
}

fn watch_dirs(
    watcher: &mut notify::RecommendedWatcher,
    files: &BTreeSet<PathBuf>,
    dirs: &mut BTreeSet<PathBuf>,
) {
    for dir in files.iter().filter_map(|f| f.parent()) {
        if !dirs.contains(dir) && watcher.watch(dir, RecursiveMode::NonRecursive).is_ok() {
            dirs.insert(dir.to_path_buf());
        }
    }
}

/// Whether an event changes one of `files` (written, created or renamed
/// over, as editors save).
fn touches(event: &notify::Result<notify::Event>, files: &BTreeSet<PathBuf>) -> bool {
    let Ok(event) = event else {
        return false;
    };
    matches!(
        event.kind,
        EventKind::Modify(_) | EventKind::Create(_) | EventKind::Remove(_)
    ) && event.paths.iter().any(|p| is_one_of(p, files))
}

fn is_one_of(path: &Path, files: &BTreeSet<PathBuf>) -> bool {
    files.contains(path) || std::fs::canonicalize(path).is_ok_and(|real| files.contains(&real))
}
