//! The reaper: a small process, forked once, that outlives wsgate by a
//! moment. wsgate tells it, through a pipe, which process groups its child
//! trees lead; when the pipe's last writer is gone (wsgate exited in any
//! way, `kill -9` included), it kills those groups and wsgate's cgroup,
//! then exits. Nothing a handler started survives wsgate.
//!
//! It is forked without `exec` from a process that may have other
//! threads, so after the fork it only makes raw system calls (no
//! allocation, no locks) on memory it owns.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// Process groups the reaper can hold at once; past that, the cgroup
/// (where there is one) still covers the rest.
const SLOTS: usize = 1 << 14;

/// The write end of the pipe to the reaper; `None` if it could not start.
fn pipe() -> Option<&'static OwnedFd> {
    static WRITER: OnceLock<Option<OwnedFd>> = OnceLock::new();
    WRITER.get_or_init(start).as_ref()
}

/// Starts the reaper if it is not running yet. Starting it early (before
/// the process grows) keeps what the fork shares small.
pub fn ensure_started() {
    let _ = pipe();
}

/// Process group `pgid` is to be killed if wsgate dies.
pub fn register(pgid: i32) {
    send(pgid);
}

/// Process group `pgid` is gone; forget it (its id may be reused).
pub fn unregister(pgid: i32) {
    send(-pgid);
}

fn send(record: i32) {
    if let Some(fd) = pipe() {
        // A 4-byte write to a pipe is atomic, whichever thread makes it.
        // SAFETY: writes 4 bytes from a local to our own pipe.
        unsafe {
            libc::write(fd.as_raw_fd(), record.to_ne_bytes().as_ptr().cast(), 4);
        }
    }
}

fn start() -> Option<OwnedFd> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two descriptors; both close on exec, so no
    // child process ever holds the write end open.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot start the reaper");
        return None;
    }
    let (read, write) = (fds[0], fds[1]);
    // The cgroup need not exist yet: it is made when the first tree is.
    let cgroup = super::cgroup::base_path()
        .and_then(|base| CString::new(base.as_os_str().as_encoded_bytes()).ok());
    let cgroup_kill = super::cgroup::base_path().and_then(|base| {
        CString::new(
            base.join("cgroup.kill")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .ok()
    });
    // SAFETY: in the child only `reap` runs, which makes raw system calls
    // on memory prepared before the fork and never returns.
    match unsafe { libc::fork() } {
        0 => unsafe { reap(read, write, cgroup.as_ref(), cgroup_kill.as_ref()) },
        -1 => {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot start the reaper");
            unsafe {
                libc::close(read);
                libc::close(write);
            }
            None
        }
        _ => {
            // SAFETY: both descriptors are ours; the child has its copies.
            unsafe {
                libc::close(read);
                Some(OwnedFd::from_raw_fd(write))
            }
        }
    }
}

/// The reaper's whole life, in the forked child.
///
/// # Safety
/// Only to be called in a freshly forked child; never returns.
unsafe fn reap(
    read: i32,
    write: i32,
    cgroup: Option<&CString>,
    cgroup_kill: Option<&CString>,
) -> ! {
    static mut GROUPS: [i32; SLOTS] = [0; SLOTS];
    unsafe {
        libc::close(write);
        // Out of the terminal's process group: Ctrl-C is for wsgate.
        libc::setsid();
        for signal in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            let mut ignore: libc::sigaction = std::mem::zeroed();
            ignore.sa_sigaction = libc::SIG_IGN;
            libc::sigaction(signal, &ignore, std::ptr::null_mut());
        }
        // Hold nothing of wsgate's open: not its sockets, and not the
        // stdout a parent may be reading to its end.
        close_all_but(read);
        let groups = &mut *std::ptr::addr_of_mut!(GROUPS);
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::read(read, buf.as_mut_ptr().cast(), buf.len());
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            for record in buf[..n as usize].chunks_exact(4) {
                let value = i32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
                if value > 0 {
                    if let Some(slot) = groups.iter_mut().find(|g| **g == 0) {
                        *slot = value;
                    }
                } else if let Some(slot) = groups.iter_mut().find(|g| **g == -value) {
                    *slot = 0;
                }
            }
        }
        // wsgate is gone.
        for &group in groups.iter().filter(|g| **g > 0) {
            libc::kill(-group, libc::SIGKILL);
        }
        if let Some(path) = cgroup_kill {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, b"1".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
        if let Some(dir) = cgroup {
            remove_cgroup(dir);
        }
        libc::_exit(0)
    }
}

/// Removes wsgate's cgroup and its leaves once their killed processes are
/// gone (about two seconds at most), with raw system calls only.
unsafe fn remove_cgroup(dir: &CString) {
    unsafe {
        for _ in 0..100 {
            let fd = libc::open(
                dir.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return;
            }
            let mut entries = [0u8; 4096];
            loop {
                let n = libc::syscall(
                    libc::SYS_getdents64,
                    fd,
                    entries.as_mut_ptr(),
                    entries.len(),
                );
                if n <= 0 {
                    break;
                }
                let mut offset = 0usize;
                while offset < n as usize {
                    // struct linux_dirent64: ino (8), off (8), reclen (2),
                    // type (1), then the NUL-terminated name.
                    let reclen =
                        u16::from_ne_bytes([entries[offset + 16], entries[offset + 17]]) as usize;
                    let kind = entries[offset + 18];
                    let name = entries.as_ptr().add(offset + 19).cast::<libc::c_char>();
                    if kind == libc::DT_DIR && *name != b'.' as libc::c_char {
                        libc::unlinkat(fd, name, libc::AT_REMOVEDIR);
                    }
                    offset += reclen;
                }
            }
            libc::close(fd);
            if libc::rmdir(dir.as_ptr()) == 0 {
                return;
            }
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
}

/// Closes every descriptor but `keep` (close_range, Linux 5.9; else one
/// at a time).
unsafe fn close_all_but(keep: i32) {
    unsafe {
        let below =
            keep == 0 || libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32) == 0;
        let above = libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32) == 0;
        if !(below && above) {
            for fd in (0..65_536).filter(|&fd| fd != keep) {
                libc::close(fd);
            }
        }
    }
}
