// Bundles one Node.js handler as SST does: esbuild, everything bundled
// (packages too) but `nodejs.install` and pg-native, ESM with SST's
// banner (so bundled CommonJS can still `require`), a source map beside.
// Usage: node build.mjs '<json>' with {esbuild, entry, outfile, nodejs}.
// Prints {"inputs": [...absolute paths]} on success; on failure, each
// error as "file:line:column: message" on stderr, and exits 1.

import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const options = JSON.parse(process.argv[2]);
const esbuild = await import(pathToFileURL(options.esbuild).href);
const nodejs = options.nodejs ?? {};
const format = nodejs.format ?? "esm";
const banner = [
  format === "esm"
    ? [
        "import { createRequire as topLevelCreateRequire } from 'module';",
        "const require = topLevelCreateRequire(import.meta.url);",
        "import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from 'url';",
        "const __filename = topLevelFileUrlToPath(import.meta.url);",
        "const __dirname = topLevelFileUrlToPath(new topLevelURL('.', import.meta.url));",
      ].join("\n")
    : "",
  nodejs.banner ?? "",
].filter(Boolean).join("\n");
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
    target: "node20",
    format,
    mainFields: format === "esm" ? ["module", "main"] : undefined,
    // Beside the bundle: an instance parses only the code it runs.
    sourcemap: nodejs.sourcemap === false ? false : "linked",
    minify: nodejs.minify ?? false,
    external: ["pg-native", ...(nodejs.install ?? [])],
    loader: nodejs.loader,
    banner: banner ? { js: banner } : undefined,
    plugins,
    metafile: true,
    logLevel: "silent",
    absWorkingDir: options.cwd,
    ...(nodejs.esbuild ?? {}),
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
