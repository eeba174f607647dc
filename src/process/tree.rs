//! A child process and everything it starts, as one unit that ends
//! together.
//!
//! The child leads a process group of its own, is a child subreaper (so
//! descendants that daemonize stay in its tree instead of going to init),
//! is killed if the thread that started it exits (`PR_SET_PDEATHSIG`), and
//! lives in a cgroup of its own where the system has a writable cgroup v2.
//! Ending the tree kills the group, the cgroup and every descendant; the
//! reaper does the same if wsgate dies without ending it.

use super::{cgroup, reaper};
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// A command set up to start a tree; `started` once it has a pid.
pub struct Prepared {
    cgroup: Option<PathBuf>,
}

/// Sets `command` up to start its process as the root of a tree.
pub fn prepare(command: &mut std::process::Command) -> Prepared {
    reaper::ensure_started();
    let cgroup = cgroup::new_leaf();
    let procs = cgroup.as_ref().and_then(|dir| {
        CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .ok()
    });
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // wsgate died before the line above took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
            if let Some(procs) = &procs {
                // "0" moves the writing process; best effort: without it
                // the process group and descendants still bound the tree.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                }
            }
            Ok(())
        });
    }
    Prepared { cgroup }
}

impl Prepared {
    /// The tree whose root is `pid`, the process just spawned.
    pub fn started(self, pid: u32) -> ProcessTree {
        let cgroup = match self.cgroup {
            Some(dir) if cgroup::contains(&dir, pid) => Some(dir),
            Some(dir) => {
                cgroup::remove(&dir);
                None
            }
            None => None,
        };
        reaper::register(pid as i32);
        ProcessTree { root: pid, cgroup }
    }

    /// The spawn failed: nothing to track.
    pub fn abandon(self) {
        if let Some(dir) = self.cgroup {
            cgroup::remove(&dir);
        }
    }
}

/// A running tree; dropping it kills everything in it.
#[derive(Debug)]
pub struct ProcessTree {
    root: u32,
    cgroup: Option<PathBuf>,
}

impl ProcessTree {
    pub fn root(&self) -> u32 {
        self.root
    }

    /// Every process in the tree now.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = match &self.cgroup {
            Some(dir) => cgroup::pids(dir),
            None => Vec::new(),
        };
        for pid in std::iter::once(self.root).chain(descendants(self.root)) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Kills every process in the tree (SIGKILL).
    pub fn kill(&self) {
        // Descendants first found, then killed: once the root dies its
        // children would be handed to init and lost from view.
        let descendants = descendants(self.root);
        // SAFETY: kill(2) on our own child's group and descendants.
        unsafe {
            libc::kill(-(self.root as i32), libc::SIGKILL);
            for pid in descendants {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        if let Some(dir) = &self.cgroup {
            cgroup::kill_all(dir);
        }
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        self.kill();
        reaper::unregister(self.root as i32);
        if let Some(dir) = self.cgroup.take() {
            // The killed processes take a moment to be gone; the folder is
            // removed off the async workers.
            std::thread::spawn(move || cgroup::remove(&dir));
        }
    }
}

/// The descendants of `pid` (children of every thread, recursively).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if !found.contains(&child) && child != pid {
                    found.push(child);
                    queue.push(child);
                }
            }
        }
    }
    found
}

/// Resident memory of every process in `pids`, in bytes.
pub fn resident_bytes(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                })
                .map_or(0, |kib| kib * 1024)
        })
        .sum()
}
