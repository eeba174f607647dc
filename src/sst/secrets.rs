//! `sst.Secret` values, as `wsgate secret set` stores them: one JSON file,
//! `.wsgate/secrets` (mode 0600), by stage, with SST's `--fallback` for
//! stages that set none.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

/// The stage key fallback values are kept under.
const FALLBACK: &str = "";

type Store = BTreeMap<String, BTreeMap<String, String>>;

pub fn file(app_dir: &Path) -> PathBuf {
    app_dir.join(".wsgate").join("secrets")
}

fn read(app_dir: &Path) -> Result<Store, String> {
    let path = file(app_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a secrets file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes the store whole (a temporary file renamed over it), mode 0600.
fn write(app_dir: &Path, store: &Store) -> Result<(), String> {
    crate::state_dir::create(app_dir)?;
    let text = serde_json::to_string_pretty(store).expect("strings serialize") + "\n";
    crate::state_dir::replace(&file(app_dir), text.as_bytes(), 0o600)
}

/// Held while a change reads, edits and writes the store: concurrent
/// `secret set`s each keep their write.
fn lock(app_dir: &Path) -> Result<crate::state_dir::Lock, String> {
    crate::state_dir::create(app_dir)?;
    crate::state_dir::Lock::take(&file(app_dir).with_extension("lock"))
}

/// Checks a secret's name as `sst secret set` does: `^[A-Z][a-zA-Z0-9_]*$`
/// (sst/sst cmd/sst/secret.go). The `sst.Secret` component itself checks
/// no name (platform/src/components/secret.ts).
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    if chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a secret name: start with a capital letter, then letters, numbers and _ only"
        ))
    }
}

/// Sets `name` for `stage` (or as the fallback for every stage).
pub fn set(app_dir: &Path, stage: Option<&str>, name: &str, value: &str) -> Result<(), String> {
    check_name(name)?;
    let _lock = lock(app_dir)?;
    let mut store = read(app_dir)?;
    store
        .entry(stage.unwrap_or(FALLBACK).to_string())
        .or_default()
        .insert(name.to_string(), value.to_string());
    write(app_dir, &store)
}

/// Removes `name` for `stage` (or the fallback); true if it was set.
pub fn remove(app_dir: &Path, stage: Option<&str>, name: &str) -> Result<bool, String> {
    let _lock = lock(app_dir)?;
    let mut store = read(app_dir)?;
    let removed = store
        .get_mut(stage.unwrap_or(FALLBACK))
        .is_some_and(|values| values.remove(name).is_some());
    if removed {
        write(app_dir, &store)?;
    }
    Ok(removed)
}

/// The values a stage sees: its own over the fallbacks.
pub fn for_stage(app_dir: &Path, stage: &str) -> Result<BTreeMap<String, String>, String> {
    let store = read(app_dir)?;
    let mut values = store.get(FALLBACK).cloned().unwrap_or_default();
    if let Some(own) = store.get(stage) {
        values.extend(own.clone());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn set_list_fallback_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        set(dir.path(), Some("dev"), "ApiKey", "dev-key").unwrap();
        set(dir.path(), None, "ApiKey", "fallback-key").unwrap();
        set(dir.path(), None, "Other", "o").unwrap();
        assert_eq!(for_stage(dir.path(), "dev").unwrap()["ApiKey"], "dev-key");
        assert_eq!(
            for_stage(dir.path(), "prod").unwrap()["ApiKey"],
            "fallback-key"
        );
        assert_eq!(for_stage(dir.path(), "dev").unwrap()["Other"], "o");
        let mode = std::fs::metadata(file(dir.path()))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(remove(dir.path(), Some("dev"), "ApiKey").unwrap());
        assert_eq!(
            for_stage(dir.path(), "dev").unwrap()["ApiKey"],
            "fallback-key"
        );
        assert!(set(dir.path(), None, "lower", "x").is_err());
    }

    #[test]
    fn parallel_sets_each_keep_their_write() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..30)
            .map(|i| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || set(&dir, Some("dev"), &format!("S{i}"), "v").unwrap())
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(for_stage(dir.path(), "dev").unwrap().len(), 30);
    }
}
