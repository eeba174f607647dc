// Module hooks for evaluating an SST app's config in Node.js: TypeScript
// is compiled file by file with esbuild (the tool SST builds with), and
// resolution does what SST's bundling does on top of Node's: tsconfig
// `paths`, `.js` specifiers that name `.ts` files, extensionless and
// directory imports, JSON without import attributes. Pulumi's modules are
// wsgate's stand-ins. Node resolves everything else itself, so dynamic
// `import()` with paths built at runtime works like any other.

import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

let esbuildPath;
let esbuild;
let shims;
let port;

export function initialize(data) {
  esbuildPath = data.esbuild;
  shims = data.shims;
  port = data.port;
}

const TS_EXTENSIONS = [".ts", ".tsx", ".mts", ".cts"];
const TRY_EXTENSIONS = [".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".json"];
const JS_TO_TS = { ".js": [".ts", ".tsx"], ".jsx": [".tsx"], ".mjs": [".mts"], ".cjs": [".cts"] };

function isFile(path) {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/// The file a path names, as a bundler finds it.
function findFile(path) {
  if (isFile(path)) return path;
  const ext = extname(path);
  for (const replacement of JS_TO_TS[ext] ?? []) {
    const candidate = path.slice(0, -ext.length) + replacement;
    if (isFile(candidate)) return candidate;
  }
  for (const extension of TRY_EXTENSIONS) {
    if (isFile(path + extension)) return path + extension;
  }
  for (const extension of TRY_EXTENSIONS) {
    const index = join(path, `index${extension}`);
    if (isFile(index)) return index;
  }
  return undefined;
}

// tsconfig.json files by folder (JSON with comments and trailing commas).
const tsconfigs = new Map();

function parseJsonc(text) {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      i += 2;
      while (i < text.length && !(text[i] === "*" && text[i + 1] === "/")) i++;
      i++;
    } else {
      out += c;
    }
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, "$1"));
}

/// The compiler options a file gets: its nearest tsconfig.json, with
/// `extends` (relative paths) followed.
function tsconfigFor(file) {
  let dir = dirname(file);
  for (;;) {
    if (tsconfigs.has(dir)) return tsconfigs.get(dir);
    const path = join(dir, "tsconfig.json");
    if (existsSync(path)) {
      const config = loadTsconfig(path, 0);
      tsconfigs.set(dir, config);
      return config;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function loadTsconfig(path, depth) {
  let raw;
  try {
    raw = parseJsonc(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
  let base = { compilerOptions: {} };
  const parents = Array.isArray(raw.extends) ? raw.extends : raw.extends ? [raw.extends] : [];
  for (const parent of parents) {
    if (depth < 5 && (parent.startsWith(".") || isAbsolute(parent))) {
      let parentPath = resolvePath(dirname(path), parent);
      if (!parentPath.endsWith(".json")) parentPath += ".json";
      const loaded = loadTsconfig(parentPath, depth + 1);
      if (loaded) base = { compilerOptions: { ...base.compilerOptions, ...loaded.compilerOptions } };
    }
  }
  const options = { ...base.compilerOptions, ...(raw.compilerOptions ?? {}) };
  // `paths` are relative to `baseUrl`, or to the file that set them.
  const pathsBase = options.baseUrl
    ? resolvePath(dirname(path), raw.compilerOptions?.baseUrl ?? options.baseUrl)
    : base.compilerOptions.__pathsBase ?? dirname(path);
  options.__pathsBase = raw.compilerOptions?.paths || raw.compilerOptions?.baseUrl ? pathsBase : base.compilerOptions.__pathsBase ?? pathsBase;
  return { compilerOptions: options };
}

/// `paths` aliases: `@core/*` → `["libs/core/src/*"]`.
function viaPaths(specifier, parentFile) {
  const config = tsconfigFor(parentFile);
  const paths = config?.compilerOptions?.paths;
  if (!paths) return undefined;
  const base = config.compilerOptions.__pathsBase;
  for (const [pattern, targets] of Object.entries(paths)) {
    const star = pattern.indexOf("*");
    let captured;
    if (star === -1) {
      if (specifier !== pattern) continue;
      captured = "";
    } else {
      const prefix = pattern.slice(0, star);
      const suffix = pattern.slice(star + 1);
      if (!specifier.startsWith(prefix) || !specifier.endsWith(suffix)) continue;
      captured = specifier.slice(prefix.length, specifier.length - suffix.length);
    }
    for (const target of targets) {
      const found = findFile(resolvePath(base, target.replace("*", captured)));
      if (found) return found;
    }
  }
  return undefined;
}

/// Resolves a specifier; in flight counts as loading (see `load`).
export async function resolve(specifier, context, next) {
  port?.postMessage(1);
  try {
    return await resolveModule(specifier, context, next);
  } finally {
    port?.postMessage(-1);
  }
}

async function resolveModule(specifier, context, next) {
  if (specifier === "@pulumi/pulumi" || specifier.startsWith("@pulumi/pulumi/")) {
    return { url: shims.pulumi, shortCircuit: true };
  }
  const provider = /^@(?:pulumi|sst-provider)\/([a-z0-9-]+)$/.exec(specifier) ?? /^@([a-z0-9-]+)\/pulumi$/.exec(specifier);
  if (provider) {
    return { url: `${shims.provider}?name=${provider[1]}`, shortCircuit: true };
  }
  const parentFile = context.parentURL?.startsWith("file:") ? fileURLToPath(context.parentURL) : undefined;
  if (parentFile && (specifier.startsWith("./") || specifier.startsWith("../") || specifier === "." || specifier === "..")) {
    const found = findFile(resolvePath(dirname(parentFile), specifier));
    if (found) return { url: pathToFileURL(found).href, shortCircuit: true };
  } else if (specifier.startsWith("/")) {
    const found = findFile(specifier);
    if (found) return { url: pathToFileURL(found).href, shortCircuit: true };
  } else if (specifier.startsWith("file:")) {
    const found = findFile(fileURLToPath(specifier));
    if (found) return { url: pathToFileURL(found).href, shortCircuit: true };
  } else if (parentFile && !specifier.startsWith("node:")) {
    const aliased = viaPaths(specifier, parentFile);
    if (aliased) return { url: pathToFileURL(aliased).href, shortCircuit: true };
  }
  return next(specifier, context);
}

/// Loads a module, telling the main thread while it is in flight.
export async function load(url, context, next) {
  port?.postMessage(1);
  try {
    return await loadModule(url, context, next);
  } finally {
    port?.postMessage(-1);
  }
}

async function loadModule(url, context, next) {
  if (url.startsWith(shims.provider)) {
    const name = new URL(url).searchParams.get("name");
    return {
      format: "module",
      shortCircuit: true,
      source: `import { provider } from ${JSON.stringify(shims.components)};\nconst module = provider(${JSON.stringify(name)});\nexport default module;\n${PROVIDER_MODULES.map((m) => `export const ${m} = module.${m};`).join("\n")}\n`,
    };
  }
  if (!url.startsWith("file:")) return next(url, context);
  const file = fileURLToPath(url);
  const ext = extname(file);
  if (ext === ".json" && !context.importAttributes?.type) {
    return { format: "module", shortCircuit: true, source: `export default ${readFileSync(file, "utf8")};` };
  }
  if (!TS_EXTENSIONS.includes(ext) && ext !== ".jsx") return next(url, context);
  const source = readFileSync(file, "utf8");
  const options = tsconfigFor(file)?.compilerOptions ?? {};
  esbuild ??= await import(pathToFileURL(esbuildPath).href);
  const result = await esbuild.transform(source, {
    loader: ext === ".tsx" || ext === ".jsx" ? (ext === ".tsx" ? "tsx" : "jsx") : "ts",
    format: ext === ".cts" ? "cjs" : "esm",
    sourcemap: "inline",
    sourcefile: file,
    target: "node20",
    platform: "node",
    tsconfigRaw: {
      compilerOptions: {
        experimentalDecorators: options.experimentalDecorators,
        useDefineForClassFields: options.useDefineForClassFields,
        verbatimModuleSyntax: options.verbatimModuleSyntax,
        jsx: options.jsx,
        jsxFactory: options.jsxFactory,
        jsxFragmentFactory: options.jsxFragmentFactory,
        jsxImportSource: options.jsxImportSource,
      },
    },
  });
  return { format: ext === ".cts" ? "commonjs" : "module", shortCircuit: true, source: result.code };
}

// The top-level modules of @pulumi/aws and the other providers apps
// import by name (`import { s3 } from "@pulumi/aws"`); each is a stand-in.
const PROVIDER_MODULES = [
  "Provider", "acm", "acmpca", "amp", "apigateway", "apigatewayv2", "appautoscaling", "appconfig", "apprunner",
  "appsync", "athena", "autoscaling", "backup", "batch", "bedrock", "budgets", "cfg", "cloud9", "cloudcontrol",
  "cloudformation", "cloudfront", "cloudtrail", "cloudwatch", "codeartifact", "codebuild", "codecommit",
  "codedeploy", "codepipeline", "cognito", "config", "datasync", "dax", "directoryservice", "dms", "docdb",
  "dynamodb", "ebs", "ec2", "ecr", "ecrpublic", "ecs", "efs", "eks", "elasticache", "elasticbeanstalk",
  "elasticsearch", "elb", "emr", "events", "firehose", "fsx", "glue", "guardduty", "iam", "inspector",
  "iot", "kinesis", "kms", "lambda", "lb", "lightsail", "location", "memorydb", "mq", "msk", "neptune",
  "networkfirewall", "opensearch", "organizations", "pinpoint", "pipes", "rds", "redshift", "resourcegroups",
  "route53", "s3", "sagemaker", "scheduler", "secretsmanager", "securityhub", "servicediscovery", "ses",
  "sesv2", "sfn", "shield", "signer", "sns", "sqs", "ssm", "ssoadmin", "transfer", "types", "vpc", "waf",
  "wafv2", "xray", "getCallerIdentity", "getCallerIdentityOutput", "getRegion", "getRegionOutput",
  "getPartition", "getPartitionOutput", "getAvailabilityZones", "getAvailabilityZonesOutput",
  "getZone", "getZoneOutput", "Record", "DnsRecord", "WorkersScript", "RandomId", "RandomPassword",
  "RandomString", "RandomInteger", "RandomUuid", "PrivateKey", "local",
];
