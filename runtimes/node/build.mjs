// Bundles one Node.js handler with the options SST's function builder
// gives esbuild (sst pkg/runtime/node/build.go and node.go), as `sst dev`
// builds it: everything bundled but `sharp`, `pg-native`, the
// `nodejs.install` packages and `nodejs.esbuild.external`; `keepNames`
// unless turned off; ESM with SST's banner (so bundled CommonJS can still
// `require`) unless `nodejs.format` is "cjs"; the target by runtime; a
// linked source map; no minifying (dev builds are not minified).
// Usage: node build.mjs '<json>' with {esbuild, entry, outfile, cwd,
// runtime, nodejs, nodePaths}. Prints {"inputs": [...absolute paths]} on
// success; on failure, each error as "file:line:column: message" on
// stderr, and exits 1.

import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const options = JSON.parse(process.argv[2]);
const esbuild = await import(pathToFileURL(options.esbuild).href);
const nodejs = options.nodejs ?? {};
// Only these of `nodejs.esbuild` are read, as SST's ESBuildOptions.
const overrides = nodejs.esbuild ?? {};

// SST's targetMap: the ECMAScript version each Lambda runtime runs.
const TARGETS = {
  "nodejs24.x": "es2024",
  "nodejs22.x": "es2023",
  "nodejs20.x": "es2023",
  "nodejs18.x": "es2022",
  "nodejs16.x": "es2021",
  "nodejs14.x": "es2020",
  "nodejs12.x": "es2019",
};
const TARGET_NAMES = new Set(["esnext", "es5", "es6", "es2015", "es2016", "es2017", "es2018", "es2019", "es2020", "es2021", "es2022", "es2023", "es2024"]);
const SOURCEMAPS = { inline: "inline", linked: "linked", external: "external", both: "both" };
const LOADERS = new Set(["js", "jsx", "ts", "tsx", "css", "json", "text", "base64", "file", "dataurl", "binary"]);

const SST_BANNER = [
  "import { createRequire as topLevelCreateRequire } from 'module';",
  "const require = topLevelCreateRequire(import.meta.url);",
  'import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"',
  "const __filename = topLevelFileUrlToPath(import.meta.url)",
  'const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))',
];

function target() {
  const given = String(overrides.target ?? "").toLowerCase();
  if (given === "es6") return "es2015";
  if (TARGET_NAMES.has(given)) return given;
  return TARGETS[options.runtime ?? "nodejs20.x"] ?? "esnext";
}

function sourcemap() {
  const given = overrides.sourcemap;
  if (typeof given === "string") return SOURCEMAPS[given.toLowerCase()] ?? "linked";
  if (typeof given === "boolean") return given ? "linked" : false;
  return "linked";
}

/// `nodejs.install`: a list of names, or (newer SST) names to versions.
function installed() {
  const install = nodejs.install ?? [];
  return Array.isArray(install) ? install : Object.keys(install);
}

const esm = nodejs.format !== "cjs";
const loader = Object.fromEntries(Object.entries(nodejs.loader ?? {}).filter(([, v]) => LOADERS.has(v)));
let plugins = [];
if (nodejs.plugins) {
  const module = await import(pathToFileURL(resolve(options.cwd, nodejs.plugins)).href);
  plugins = module.default ?? module.plugins ?? [];
}
try {
  const result = await esbuild.build({
    entryPoints: [options.entry],
    outfile: options.outfile,
    bundle: true,
    platform: "node",
    format: esm ? "esm" : "cjs",
    target: target(),
    keepNames: overrides.keepNames ?? true,
    mainFields: overrides.mainFields?.length ? overrides.mainFields : esm ? ["module", "main"] : ["main"],
    conditions: overrides.conditions?.length ? overrides.conditions : undefined,
    sourcemap: sourcemap(),
    external: ["sharp", "pg-native", ...installed(), ...(overrides.external ?? [])],
    loader,
    banner: { js: (esm ? [...SST_BANNER, nodejs.banner ?? ""] : [nodejs.banner ?? ""]).join("\n") },
    define: overrides.define,
    // The app's own nodePaths, then the SDK Lambda's runtime provides
    // (after the app's node_modules, as on Lambda).
    nodePaths: [...(overrides.nodePaths ?? []), ...(options.nodePaths ?? [])],
    plugins,
    metafile: true,
    logLevel: "silent",
    absWorkingDir: options.cwd,
  });
  const inputs = Object.keys(result.metafile.inputs)
    .filter((input) => !input.includes(":"))
    .map((input) => resolve(options.cwd, input));
  process.stdout.write(JSON.stringify({ inputs }));
} catch (error) {
  for (const e of error.errors ?? [{ text: error.message }]) {
    const where = e.location ? `${e.location.file}:${e.location.line}:${e.location.column + 1}: ` : "";
    process.stderr.write(`${where}${e.text}\n`);
  }
  process.exit(1);
}
