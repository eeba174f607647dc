//! `.wsgate/`, an app's local state beside its config: secrets in plain
//! text, the local CA's private key, generated credentials, data. It is
//! created with a `.gitignore` of `*`, so none of it is committed by
//! accident.

use std::path::{Path, PathBuf};

/// The folder's name in the app's folder.
pub const NAME: &str = ".wsgate";

/// `<app>/.wsgate`, created (with its `.gitignore`) if it is not there.
pub fn create(app_dir: &Path) -> Result<PathBuf, String> {
    let dir = app_dir.join(NAME);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "*\n")
            .map_err(|e| format!("cannot write {}: {e}", ignore.display()))?;
    }
    Ok(dir)
}

/// Writes `path` whole or not at all, with `mode`: a temporary file beside
/// it, renamed over it.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}: {e}", path.display())
    })
}

/// An exclusive lock (`flock`) on a file, held until dropped: one process
/// at a time reads, changes and writes what it guards.
pub struct Lock {
    _held: std::fs::File,
}

impl Lock {
    /// Takes the lock on `path` (created if missing), waiting for it.
    pub fn take(path: &Path) -> Result<Lock, String> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Lock { _held: file })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_folder_ignores_itself() {
        let app = tempfile::tempdir().unwrap();
        let dir = super::create(app.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(".gitignore")).unwrap(),
            "*\n"
        );
        // A user's own .gitignore there is left as it is.
        std::fs::write(dir.join(".gitignore"), "secrets\n").unwrap();
        super::create(app.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(".gitignore")).unwrap(),
            "secrets\n"
        );
    }
}
