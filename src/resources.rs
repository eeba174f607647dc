//! The process's file descriptor budget: raised to what the system allows
//! at start, and shared out so integrations can never take the sockets
//! clients need.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a server holding
/// 100k sockets needs far more than the usual 1,024) and returns the
/// limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// The soft `RLIMIT_NOFILE` in force.
pub fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur
}

/// How many connections one API's HTTP integrations may hold open at
/// once: a quarter of the descriptors (256 of 1,024), between 32 and
/// 16,384, so a slow backend can never take the sockets new clients need;
/// client connections take turns for them (`integrations::http::fair`).
pub fn integration_connections(open_files: u64) -> usize {
    (open_files / 4).clamp(32, 16_384) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrations_get_a_bounded_share() {
        assert_eq!(integration_connections(64), 32);
        assert_eq!(integration_connections(1024), 256);
        assert_eq!(integration_connections(20_000), 5_000);
        assert_eq!(integration_connections(1 << 20), 16_384);
    }

    #[test]
    fn the_limit_is_raised_to_the_hard_limit() {
        let raised = raise_open_files_limit();
        assert_eq!(raised, open_files_limit());
    }
}
