//! One handler file as every route that names it uses it: built once (a
//! Node.js bundle, as SST bundles; a Python module as it is), watched once
//! for live code, and on a change rebuilt once, with the warm instances of
//! every function using it retired together.

use super::live::{self, LiveCode};
use super::pool::Pool;
use super::resolve::{self, BuildOptions, Resolved, Runtime};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

/// A built handler file, shared.
pub struct Bundle {
    pub resolved: Resolved,
    /// The pools running this code: retired when it changes.
    pools: Arc<Mutex<Vec<Weak<Pool>>>>,
    _live: LiveCode,
}

impl Bundle {
    /// Runs `pool`'s instances on this code (and retires them when it
    /// changes).
    pub fn serve(&self, pool: &Arc<Pool>) {
        self.pools
            .lock()
            .expect("lock poisoned")
            .push(Arc::downgrade(pool));
    }
}

type Key = (PathBuf, String);

/// The bundle for `handler` in `dir` with SST's build options: the one
/// already built in this process, or a new one.
pub fn bundle(
    dir: &Path,
    state_dir: &Path,
    handler: &str,
    build: &BuildOptions,
) -> Result<Arc<Bundle>, String> {
    static BUNDLES: Mutex<Option<HashMap<Key, Weak<Bundle>>>> = Mutex::new(None);
    let (runtime, source, export) = resolve::find(dir, handler)?;
    let options = build.key();
    let key = (source.clone(), options.clone());
    // One at a time: the second route naming a file waits for the first's
    // build and shares it.
    let mut bundles = BUNDLES.lock().unwrap_or_else(|e| e.into_inner());
    let bundles = bundles.get_or_insert_with(HashMap::new);
    bundles.retain(|_, bundle| bundle.strong_count() > 0);
    if let Some(bundle) = bundles.get(&key).and_then(Weak::upgrade) {
        if bundle.resolved.export != export {
            // The same file, another export: same build, own record.
            return Ok(Arc::new(with_export(&bundle, export)));
        }
        return Ok(bundle);
    }
    let out = state_dir
        .join("build")
        .join(build_name(&source, &options))
        .join(build.bundle_file());
    let (entry, inputs) = match runtime {
        Runtime::Node => {
            let inputs = resolve::build(dir, state_dir, &source, &out, build)?;
            (out.clone(), inputs)
        }
        Runtime::Python => (source.clone(), resolve::python_inputs(&source)),
    };
    let pools: Arc<Mutex<Vec<Weak<Pool>>>> = Arc::new(Mutex::new(Vec::new()));
    let live = watch(
        runtime,
        dir,
        state_dir,
        &source,
        &entry,
        build,
        inputs.clone(),
        &pools,
    )?;
    let bundle = Arc::new(Bundle {
        resolved: Resolved {
            runtime,
            source,
            entry,
            export,
            inputs,
        },
        pools,
        _live: live,
    });
    bundles.insert(key, Arc::downgrade(&bundle));
    Ok(bundle)
}

/// A bundle record for another export of the same built file: it shares
/// the build and the list of pools (so a change retires them all), and
/// its own watcher is a no-op.
fn with_export(bundle: &Arc<Bundle>, export: String) -> Bundle {
    let mut resolved = bundle.resolved.clone();
    resolved.export = export;
    Bundle {
        resolved,
        pools: Arc::clone(&bundle.pools),
        _live: live::idle(),
    }
}

/// A folder name for a build: the source file's, and a hash of its path
/// and options (two files may share a name).
fn build_name(source: &Path, options: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut hasher);
    options.hash(&mut hasher);
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("handler")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>();
    format!("{stem}-{:016x}", hasher.finish())
}

#[allow(clippy::too_many_arguments)]
fn watch(
    runtime: Runtime,
    dir: &Path,
    state_dir: &Path,
    source: &Path,
    entry: &Path,
    build: &BuildOptions,
    inputs: Vec<PathBuf>,
    pools: &Arc<Mutex<Vec<Weak<Pool>>>>,
) -> Result<LiveCode, String> {
    let (dir, state_dir, source, entry) = (
        dir.to_path_buf(),
        state_dir.to_path_buf(),
        source.to_path_buf(),
        entry.to_path_buf(),
    );
    let build = build.clone();
    let label = source
        .strip_prefix(&dir)
        .unwrap_or(&source)
        .display()
        .to_string();
    let rebuild: Box<dyn Fn() -> Result<Vec<PathBuf>, String> + Send> = match runtime {
        // Built beside, then moved over (its source map first): an
        // instance starting meanwhile never loads a half-written file.
        Runtime::Node => Box::new(move || {
            let file = build.bundle_file();
            let next = entry
                .parent()
                .unwrap_or(Path::new("."))
                .join("next")
                .join(file);
            let inputs = resolve::build(&dir, &state_dir, &source, &next, &build)?;
            let map = next.with_file_name(format!("{file}.map"));
            if map.exists() {
                std::fs::rename(&map, entry.with_file_name(format!("{file}.map")))
                    .map_err(|e| format!("cannot replace {}'s source map: {e}", entry.display()))?;
            }
            std::fs::rename(&next, &entry)
                .map_err(|e| format!("cannot replace {}: {e}", entry.display()))?;
            Ok(inputs)
        }),
        Runtime::Python => Box::new(move || Ok(resolve::python_inputs(&source))),
    };
    let pools = Arc::clone(pools);
    live::watch(
        inputs,
        live::Reload {
            label,
            rebuild,
            on_new_code: Box::new(move || {
                for pool in pools.lock().expect("lock poisoned").iter() {
                    if let Some(pool) = pool.upgrade() {
                        pool.retire();
                    }
                }
            }),
        },
    )
}
