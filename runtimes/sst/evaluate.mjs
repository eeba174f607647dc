// Evaluates an SST app's sst.config.ts as SST does (app(), then run(),
// with SST's globals), with wsgate's components, and hands wsgate the app
// definition as JSON. Started by wsgate with:
//   WSGATE_SST_CONFIG   the config file
//   WSGATE_STAGE        the stage
//   WSGATE_DEV          "1" when serving ($dev)
//   WSGATE_ESBUILD_JS   esbuild's JavaScript API (lib/main.js)
// Talks to wsgate on stdout (lines starting "@@wsgate@@", JSON) and stdin
// (wsgate's answers); the app's own output goes to stderr.

import { createRequire, register } from "node:module";
import { MessageChannel } from "node:worker_threads";
import { createInterface } from "node:readline";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const configFile = process.env.WSGATE_SST_CONFIG;
const appDir = dirname(configFile);

// The protocol owns stdout; everything the app prints goes to stderr.
const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
function send(message) {
  protocolWrite(`@@wsgate@@${JSON.stringify(message)}\n`);
}

// Module loads in flight, reported by the hooks' thread: a dynamic import
// nobody awaited still counts until it is loaded.
let loading = 0;
const { port1, port2 } = new MessageChannel();
port1.on("message", (delta) => {
  loading += delta;
});
port1.unref();
register(pathToFileURL(`${here}/hooks.mjs`).href, {
  data: {
    esbuild: process.env.WSGATE_ESBUILD_JS,
    port: port2,
    shims: {
      pulumi: pathToFileURL(`${here}/pulumi.mjs`).href,
      components: pathToFileURL(`${here}/components.mjs`).href,
      provider: pathToFileURL(`${here}/provider.mjs`).href,
    },
  },
  transferList: [port2],
});

const pulumi = await import("./pulumi.mjs");
const components = await import("./components.mjs");
const { registry, linkOf, isLinkable, NotSupported, withSite } = components;

// Answers from wsgate, by request.
const answers = new Map();
createInterface({ input: process.stdin }).on("line", (line) => {
  const message = JSON.parse(line);
  answers.get(message.id)?.(message);
  answers.delete(message.id);
  if (answers.size === 0) process.stdin.unref?.();
});
// stdin keeps the event loop alive only while an answer is awaited, so
// that the loop goes idle when the config's own work is done.
process.stdin.unref?.();
let nextRequest = 1;
function ask(request) {
  const id = nextRequest++;
  process.stdin.ref?.();
  return new Promise((resolve, reject) => {
    answers.set(id, (answer) => (answer.error ? reject(new Error(answer.error)) : resolve(answer)));
    send({ ...request, id });
  });
}
components.setListenerSource((api) => ask({ type: "listen", api }));

/// Where an error happened in the app's own files: "infra/api.ts:12:5".
function appLocation(error) {
  for (const line of String(error?.stack ?? "").split("\n")) {
    const match = /\(?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (!match) continue;
    const file = match[1].startsWith("file:") ? fileURLToPath(match[1]) : match[1];
    if (file.startsWith(here) || file.includes(`${sep}node_modules${sep}`) || !file.startsWith(appDir)) continue;
    return `${relative(appDir, file)}:${match[2]}:${match[3]}`;
  }
  return null;
}

/// A missing secret's message names every secret that has no value, so
/// they are all set in one go rather than one per run.
function failureMessage(error) {
  if (!error?.secretName) return error?.message ?? String(error);
  const missing = registry.secrets
    .filter((s) => process.env[`SST_SECRET_${s._name}`] === undefined && s._placeholder === undefined)
    .map((s) => s._name);
  if (missing.length <= 1) return error.message;
  return `${error.message}\nThese have no value either: ${missing.filter((n) => n !== error.secretName).join(", ")}; set each with \`wsgate secret set <Name> <value>\``;
}

function fail(error) {
  send({
    type: "error",
    kind: error?.name ?? "Error",
    message: failureMessage(error),
    location: appLocation(error) ?? appLocation({ stack: error?.__wsgateSite }),
    stack: String(error?.stack ?? ""),
    secret: error?.secretName ?? null,
  });
  finished = true;
  exit(1);
}
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);
// A config that calls process.exit() ends before it was evaluated: say
// so (a pipe's write is synchronous on Linux, so this reaches wsgate).
let finished = false;
let exitSite = "";
const exit = process.exit.bind(process);
process.exit = (code) => {
  exitSite = new Error().stack;
  return exit(code);
};
process.on("exit", (code) => {
  if (finished) return;
  send({
    type: "error",
    kind: "Error",
    message: `the config called process.exit(${code ?? ""}) before run() finished: there is nothing to serve (SST would stop there too)`,
    location: appLocation({ stack: exitSite }),
    stack: exitSite,
    secret: null,
  });
});

// SST's globals.
const stage = process.env.WSGATE_STAGE;
const providers = {};
function providerGlobal(name) {
  providers[name] ??= components.provider(name);
  return providers[name];
}
Object.assign(globalThis, {
  $config: (input) => input,
  $dev: process.env.WSGATE_DEV === "1",
  $util: pulumi,
  $output: pulumi.output,
  $resolve: (value) => pulumi.output(value),
  $interpolate: pulumi.interpolate,
  $concat: pulumi.concat,
  $jsonParse: pulumi.jsonParse,
  $jsonStringify: pulumi.jsonStringify,
  $transform: components.$transform,
  $linkable: components.linkable,
  $asset: (path) => new pulumi.asset.FileAsset(path),
  $cli: {
    command: process.env.WSGATE_DEV === "1" ? "dev" : "deploy",
    rpc: "",
    paths: { home: appDir, root: appDir, work: `${appDir}/.sst`, platform: `${appDir}/.sst/platform` },
    state: { version: {} },
  },
  sst: components.sst,
});
// Provider globals (`aws`, `cloudflare`, ...): inert stand-ins.
for (const name of ["aws", "cloudflare", "vercel", "random", "tls", "command", "docker", "github", "planetscale", "neon", "supabase", "upstash", "auth0", "stripe", "aiven", "kubernetes"]) {
  Object.defineProperty(globalThis, name, { configurable: true, get: () => providerGlobal(name) });
}

// SST bundles the config and everything it imports into one ESM file,
// `.sst/platform/sst.config.<ms>.mjs`, with a banner that defines
// `require`, `__filename` and `__dirname` for that file (pkg/js/js.go).
// wsgate loads the files one by one, so the same three are globals with
// the same values: any module's own declaration still shadows them, as
// the bundler's renaming lets it do there.
const platformDir = join(appDir, ".sst", "platform");
const bundleFile = join(platformDir, `sst.config.${Date.now()}.mjs`);
Object.assign(globalThis, {
  require: createRequire(bundleFile),
  __filename: bundleFile,
  __dirname: platformDir,
});

const loaded = await import(pathToFileURL(configFile).href);
const config = loaded.default;
if (!config || typeof config.app !== "function" || typeof config.run !== "function") {
  throw new Error(`${relative(appDir, configFile)} must export default $config({ app(input) {...}, async run() {...} })`);
}
const app = await config.app({ stage });
if (!app?.name) throw new Error("app() must return a name");
globalThis.$app = Object.freeze({
  name: app.name,
  stage,
  removal: app.removal ?? "retain",
  providers: app.providers ?? {},
  protect: app.protect ?? false,
});
for (const name of Object.keys(app.providers ?? {})) providerGlobal(name);

const returned = await config.run();

// Wait for work the config started but did not await: components built
// once an Output resolves, and dynamic imports nobody awaited.
async function settle() {
  let quiet = 0;
  let seen = -1;
  while (quiet < 5) {
    await Promise.all([...registry.pending]);
    await new Promise((r) => setTimeout(r, 10));
    const count = registry.components.length;
    if (registry.pending.size === 0 && loading === 0 && count === seen) quiet++;
    else quiet = 0;
    seen = count;
  }
  if (registry.failure) throw registry.failure;
}
await settle();

// Pulumi's Node.js runtime ends a program when its event loop has nothing
// left to do, so work `run()` started without awaiting it (an `import()`
// whose module then awaits something, a timer) still counts. Wait for
// Node's "beforeExit" (the loop is idle), or, for a config that keeps a
// handle open (a socket, an interval), a bounded time after it settled.
const IDLE_BOUND_MS = 2000;
await new Promise((resolve) => {
  process.once("beforeExit", resolve);
  setTimeout(resolve, IDLE_BOUND_MS).unref();
});
await settle();

/// A component's description; an error in it names where the app made it.
async function describe(component) {
  try {
    return await component.describe();
  } catch (error) {
    throw withSite(error, component.__site);
  }
}

/// The definition wsgate serves.
const apis = [];
for (const api of registry.apis) apis.push(await describe(api));
const tables = [];
for (const table of registry.tables) tables.push(await describe(table));

// The functions wsgate runs: those the APIs route to (or authorize with),
// and the sst.aws.Functions they link (invoked through the Lambda API).
const routed = new Set(apis.flatMap((api) => [...api.routes.map((r) => r.function), ...api.authorizers.map((a) => a.function)]));
const links = {};
const functions = [];
const queue = registry.functions.filter((f) => routed.has(f.__name));
const seen = new Set(queue);
while (queue.length > 0) {
  const fn = queue.shift();
  const args = fn._args;
  const resolved = await pulumi.resolveDeep({ ...args, link: undefined, transform: undefined });
  const linkTargets = (await pulumi.promiseOf(args.link ?? [])).flat().filter((l) => {
    if (l === undefined || l === null) throw new Error(`An undefined link was passed into a \`link\` array of "${fn.__name}".`);
    return isLinkable(l);
  });
  const linkNames = [];
  const environment = { ...(resolved.environment ?? {}) };
  // The role's statements, as SST's Function builds its policy
  // (function.ts): `permissions`, then the links' `aws.permission` items.
  const permissions = [...(resolved.permissions ?? [])].map((p) => statement(fn.__name, p)).filter(Boolean);
  const own = permissions.length;
  for (const target of linkTargets) {
    const link = (links[target.__name] ??= await linkOf(target));
    linkNames.push(target.__name);
    for (const item of link.include) {
      if (item.type === "environment") Object.assign(environment, item.env);
      if (item.type === "aws.permission") permissions.push(...[statement(fn.__name, item)].filter(Boolean));
    }
    if (target instanceof components.Function && !seen.has(target)) {
      seen.add(target);
      queue.push(target);
    }
  }
  // Noted for the app's own `permissions` only: what links grant is
  // theirs to grant (a linked table's `dynamodb:*`).
  const unenforced = [...new Set(permissions.slice(0, own).flatMap((p) => p.actions).filter((a) => !enforcedLocally(a)))];
  if (unenforced.length > 0) {
    registry.notices.push(`function ${fn.__name}: permissions for ${unenforced.join(", ")} are accepted, not enforced locally (wsgate enforces execute-api and lambda:InvokeFunction)`);
  }
  if (args.transform?.function) {
    registry.notices.push(`function ${fn.__name}: transform.function applies to the Lambda resource on AWS only`);
  }
  functions.push({
    name: fn.__name,
    // Where the app made it, for what wsgate refuses of it.
    location: appLocation({ stack: fn.__site }),
    physicalName: fn._physical,
    routed: routed.has(fn.__name),
    handler: resolved.handler,
    runtime: resolved.runtime ?? null,
    permissions,
    timeout: resolved.timeout ?? "20 seconds",
    memory: resolved.memory ?? "1024 MB",
    environment,
    links: linkNames,
    concurrency: resolved.concurrency?.reserved ?? null,
    bundle: resolved.bundle ?? null,
    nodejs: resolved.nodejs ?? null,
    dev: resolved.dev ?? null,
    python: resolved.python ?? null,
  });
}

/// A permission as IAM reads it: `{ actions, resources, effect }`.
function statement(fnName, permission) {
  const list = (value, what) => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      throw new Error(`function ${fnName}: permissions[].${what} must be a list of strings, not ${JSON.stringify(value)}`);
    }
    return value;
  };
  const effect = String(permission.effect ?? "allow").toLowerCase();
  if (effect !== "allow" && effect !== "deny") throw new Error(`function ${fnName}: permission effect "${permission.effect}" is not allow or deny`);
  // IAM condition keys are not evaluated locally: on the safe side, an
  // Allow with conditions grants nothing and a Deny denies regardless.
  if ((permission.conditions ?? []).length > 0) {
    registry.notices.push(`function ${fnName}: a permission with conditions ${effect === "allow" ? "grants nothing" : "denies unconditionally"} locally (conditions are not evaluated)`);
    if (effect === "allow") return null;
  }
  return { effect: effect === "deny" ? "Deny" : "Allow", actions: list(permission.actions, "actions"), resources: list(permission.resources, "resources") };
}

/// Whether wsgate checks an action locally: the management API's
/// (execute-api), the local Lambda API's, and those matching them by
/// wildcard.
function enforcedLocally(action) {
  const escaped = action.replace(/[.+^$(){}|[\]\\]/g, "\\$&");
  const pattern = new RegExp("^" + escaped.replaceAll("*", ".*").replaceAll("?", ".") + "$", "i");
  return ["execute-api:ManageConnections", "execute-api:Invoke", "lambda:InvokeFunction"].some((a) => pattern.test(a));
}

function printable(value) {
  return JSON.parse(
    JSON.stringify(value ?? {}, (_, v) => {
      // A stand-in's value (`pool.addClient("Web").id`): its name.
      if (v != null && (typeof v === "object" || typeof v === "function") && typeof v[components.INERT] === "string") {
        return typeof v.__name === "string" ? `[${String(v.__pulumiType).replaceAll(":", ".")} ${v.__name}]` : `[stand-in ${v[components.INERT]}]`;
      }
      if (typeof v === "function") return v.__name ? `[${String(v.__pulumiType ?? "").replaceAll(":", ".")} ${v.__name}]` : undefined;
      if (v && typeof v === "object" && v.__pulumiType) return `[${v.__pulumiType.replaceAll(":", ".")} ${v.__name}]`;
      return v;
    }),
  );
}

send({
  type: "result",
  definition: {
    app: { name: $app.name, stage, home: app.home ?? null, providers: Object.keys(app.providers ?? {}) },
    apis,
    functions,
    tables,
    links,
    secrets: registry.secrets.map((s) => ({ name: s._name, set: process.env[`SST_SECRET_${s._name}`] !== undefined, placeholder: s._placeholder !== undefined })),
    standIns: registry.standIns,
    notices: registry.notices,
    outputs: printable(await pulumi.resolveDeep(returned ?? {})),
  },
});
finished = true;
exit(0);
