//! A cgroup (v2) of wsgate's own, where the system has a writable one:
//! each child process tree gets a leaf under it, so ending the tree kills
//! everything in it, even descendants that left its process group.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// `<cgroup2 mount><wsgate's cgroup>/wsgate-<pid>`: where wsgate's cgroup
/// would be; `None` where there is no cgroup v2, or `WSGATE_CGROUPS=off`.
/// Finding it also clears what a killed wsgate left behind.
pub fn base_path() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| {
        if std::env::var("WSGATE_CGROUPS").is_ok_and(|v| v == "off") {
            return None;
        }
        let parent = own_cgroup_dir()?;
        sweep_stale(&parent);
        Some(parent.join(format!("wsgate-{}", std::process::id())))
    })
    .as_deref()
}

/// wsgate's cgroup, created on first use; `None` where it cannot be.
pub fn base() -> Option<&'static Path> {
    static CREATED: OnceLock<bool> = OnceLock::new();
    let base = base_path()?;
    let created = *CREATED.get_or_init(|| match std::fs::create_dir(base) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
        Err(error) => {
            tracing::debug!(%error, dir = %base.display(), "no cgroup of our own; process groups only");
            false
        }
    });
    created.then_some(base)
}

/// A new, empty leaf cgroup for one process tree.
pub fn new_leaf() -> Option<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let leaf = base()?.join(format!("tree-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir(&leaf).ok()?;
    Some(leaf)
}

/// True when `pid` is in the cgroup `dir`.
pub fn contains(dir: &Path, pid: u32) -> bool {
    let Some(relative) = mount_point().and_then(|m| dir.strip_prefix(m).ok()) else {
        return false;
    };
    let expected = format!("0::/{}", relative.display());
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|text| text.lines().any(|line| line == expected))
}

/// The processes in the cgroup `dir` now.
pub fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills every process in the cgroup `dir` (and its descendants'
/// cgroups): `cgroup.kill` where the kernel has it (5.14), else one by one.
pub fn kill_all(dir: &Path) {
    let killed = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut file| file.write_all(b"1"));
    if killed.is_err() {
        for pid in pids(dir) {
            // SAFETY: kill(2) with a pid read from the cgroup.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// Removes the (empty) cgroup `dir`, waiting briefly for killed processes
/// to be gone.
pub fn remove(dir: &Path) {
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tracing::debug!(dir = %dir.display(), "cgroup still busy; left behind");
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `.../unified` on
/// hybrid systems).
fn mount_point() -> Option<&'static Path> {
    static MOUNT: OnceLock<Option<PathBuf>> = OnceLock::new();
    MOUNT
        .get_or_init(|| {
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            mounts.lines().find_map(|line| {
                // ... <mount point> <options> - <fs type> <source> ...
                let (before, after) = line.split_once(" - ")?;
                if after.split_whitespace().next()? != "cgroup2" {
                    return None;
                }
                before.split_whitespace().nth(4).map(PathBuf::from)
            })
        })
        .as_deref()
}

/// The folder of the cgroup wsgate runs in.
fn own_cgroup_dir() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = mount_point()?.join(own.trim_start_matches('/'));
    dir.is_dir().then_some(dir)
}

/// Removes what an earlier wsgate that was killed left behind: its
/// processes and its cgroups.
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("wsgate-")) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if alive {
            continue;
        }
        let dir = entry.path();
        kill_all(&dir);
        if let Ok(leaves) = std::fs::read_dir(&dir) {
            for leaf in leaves.flatten().filter(|l| l.path().is_dir()) {
                remove(&leaf.path());
            }
        }
        remove(&dir);
    }
}
