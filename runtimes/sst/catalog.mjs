// What SST's platform exports, read from its own source: each namespace's
// (`sst.aws`, `sst.cloudflare`, `sst.vercel`, `sst.x`) component classes
// with their public static members (`StepFunctions.lambdaInvoke`,
// `Dynamo.get`, ...) and its functions (`sst.aws.dns`, ...). The evaluator
// reads the app's own `.sst/platform` (what `sst install` writes) when it
// has one; otherwise `catalog.json`, made by `scripts/sst-catalog` from
// SST's repository at a recorded commit.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/// The catalog of a platform folder (`.sst/platform`), or null.
export function scanPlatform(platformDir) {
  const root = join(platformDir, "src", "components");
  if (!existsSync(join(root, "index.ts"))) return null;
  const catalog = { version: platformVersion(platformDir), namespaces: {} };
  const top = readFileSync(join(root, "index.ts"), "utf8");
  for (const [, namespace, from] of top.matchAll(/export \* as (\w+) from "([^"]+)"/g)) {
    catalog.namespaces[namespace] = scanNamespace(moduleFile(root, from));
  }
  // `sst.cloudflare.x`: a namespace inside one.
  for (const [name, entry] of Object.entries(catalog.namespaces)) {
    for (const [inner, file] of Object.entries(entry.namespaceFiles)) {
      catalog.namespaces[`${name}.${inner}`] = scanNamespace(file);
    }
  }
  for (const entry of Object.values(catalog.namespaces)) delete entry.namespaceFiles;
  return catalog;
}

function platformVersion(platformDir) {
  try {
    return JSON.parse(readFileSync(join(platformDir, "package.json"), "utf8")).version ?? null;
  } catch {
    return null;
  }
}

/// `./bucket.js` → the `.ts` file it names.
function moduleFile(fromDir, specifier) {
  const base = resolve(fromDir, specifier.replace(/\.js$/, ""));
  for (const candidate of [`${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/// A namespace's index: what it re-exports, followed one level into each
/// module (SST's index files only re-export).
function scanNamespace(indexFile) {
  const entry = { classes: {}, functions: [], namespaceFiles: {} };
  if (!indexFile) return entry;
  const dir = dirname(indexFile);
  const text = readFileSync(indexFile, "utf8");
  for (const [, from] of text.matchAll(/^export \* from "([^"]+)"/gm)) {
    const file = moduleFile(dir, from);
    if (file) addModule(entry, readFileSync(file, "utf8"), null);
  }
  for (const [, names, from] of text.matchAll(/^export \{([^}]+)\} from "([^"]+)"/gm)) {
    const file = moduleFile(dir, from);
    if (!file) continue;
    const wanted = new Map(
      names.split(",").map((n) => n.trim().split(/\s+as\s+/)).filter(([n]) => n).map(([n, as]) => [n, as ?? n]),
    );
    addModule(entry, readFileSync(file, "utf8"), wanted);
  }
  for (const [, name, from] of text.matchAll(/^export \* as (\w+) from "([^"]+)"/gm)) {
    entry.namespaceFiles[name] = moduleFile(dir, from);
  }
  addModule(entry, text, null);
  entry.functions = [...new Set(entry.functions)].sort();
  return entry;
}

/// A module's exported classes (with their public statics) and functions;
/// `wanted` (name → exported name) limits them to a named re-export.
function addModule(entry, text, wanted) {
  const exported = (name) => (wanted ? wanted.get(name) : name);
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const cls = /^export (?:abstract )?class (\w+)/.exec(line);
    if (cls && exported(cls[1])) {
      const statics = new Set();
      for (let j = i + 1; j < lines.length && !/^(?:export |})/.test(lines[j]); j++) {
        const member = /^ {2}(?:public )?static (?:async )?(?:get )?(\w+)\s*[(<]/.exec(lines[j]);
        if (member) statics.add(member[1]);
      }
      entry.classes[exported(cls[1])] = [...statics].sort();
      continue;
    }
    const fn = /^export (?:async )?function (\w+)/.exec(line) ?? /^export const (\w+)\s*=/.exec(line);
    if (fn && exported(fn[1]) && /^[a-z]/.test(fn[1])) entry.functions.push(exported(fn[1]));
  }
  // `export const linkable = Link.linkable;` style aliases re-exported by name.
  if (wanted) {
    for (const [name, as] of wanted) {
      if (!entry.classes[as] && !entry.functions.includes(as) && new RegExp(`(?:function|const|let) ${name}\\b`).test(text)) {
        entry.functions.push(as);
      }
    }
  }
}
