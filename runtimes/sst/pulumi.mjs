// Pulumi's Output, as SST configs use it (`$util`, `$interpolate`,
// `$resolve`, `.apply()`), for values known locally: every Output wraps a
// promise of a plain value, and property access on an Output lifts, as
// Pulumi's does (`bucket.nodes.bucket.arn`).

const IS_OUTPUT = Symbol.for("wsgate.output");
const PROMISE = Symbol("promise");
const SECRET = Symbol("secret");

export class Output {
  constructor(promise, secret = false) {
    this[IS_OUTPUT] = true;
    this[PROMISE] = Promise.resolve(promise).then(resolveDeep);
    // Nobody may be left with an unhandled rejection: it surfaces where
    // the value is used.
    this[PROMISE].catch(() => {});
    this[SECRET] = secret;
    return new Proxy(this, {
      get(target, prop, receiver) {
        if (prop in target || typeof prop === "symbol") return Reflect.get(target, prop, receiver);
        // Not a thenable: awaiting an Output gives the Output, as Pulumi's.
        if (prop === "then") return undefined;
        return target.apply((value) => (value == null ? undefined : value[prop]));
      },
    });
  }

  apply(fn) {
    return new Output(this[PROMISE].then((value) => fn(value)), this[SECRET]);
  }

  get(...args) {
    return this.apply((value) => value?.get?.(...args));
  }

  toString() {
    return "Calling [toString] on an [Output<T>] is not supported.\n\nTo get the value of an Output<T> as an Output<string> consider either:\n1: o.apply(v => `prefix${v}suffix`)\n2: pulumi.interpolate `prefix${v}suffix`\n\nSee https://www.pulumi.com/docs/concepts/inputs-outputs for more details.";
  }

  toJSON() {
    return this.toString();
  }

  static isInstance(value) {
    return isOutput(value);
  }

  static create(value) {
    return output(value);
  }
}

export function isOutput(value) {
  return value != null && (typeof value === "object" || typeof value === "function") && value[IS_OUTPUT] === true;
}

export function promiseOf(value) {
  return isOutput(value) ? value[PROMISE] : Promise.resolve(value).then(resolveDeep);
}

function isPlain(value) {
  if (value == null || typeof value !== "object") return false;
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/// Awaits every Output and promise inside plain objects and arrays;
/// anything else (components, class instances) is left as it is.
export async function resolveDeep(value) {
  if (isOutput(value)) return value[PROMISE];
  if (value && typeof value.then === "function") return resolveDeep(await value);
  if (Array.isArray(value)) return Promise.all(value.map(resolveDeep));
  if (isPlain(value)) {
    const entries = await Promise.all(
      Object.entries(value).map(async ([key, inner]) => [key, await resolveDeep(inner)]),
    );
    return Object.fromEntries(entries);
  }
  return value;
}

export function output(value) {
  return isOutput(value) ? value : new Output(value);
}

export function secret(value) {
  return new Output(promiseOf(value), true);
}

export function unsecret(value) {
  return new Output(promiseOf(value), false);
}

export function isSecret(value) {
  return new Output(Promise.resolve(isOutput(value) && value[SECRET] === true));
}

export function all(values) {
  return output(values);
}

export function interpolate(strings, ...values) {
  return new Output(
    Promise.all(values.map(promiseOf)).then((resolved) =>
      strings.reduce((text, part, i) => text + part + (i < resolved.length ? String(resolved[i]) : ""), ""),
    ),
  );
}

export function concat(...parts) {
  return new Output(Promise.all(parts.map(promiseOf)).then((resolved) => resolved.map(String).join("")));
}

export function jsonParse(text, reviver) {
  return output(text).apply((value) => JSON.parse(value, reviver));
}

export function jsonStringify(value, replacer, space) {
  return output(value).apply((resolved) => JSON.stringify(resolved, replacer, space));
}

export function getProject() {
  return globalThis.$app?.name ?? "";
}

export function getStack() {
  return globalThis.$app?.stage ?? "";
}

export function getOrganization() {
  return "organization";
}

/// Pulumi's stack-level Config: reads `PULUMI_CONFIG`-style values from
/// the environment only; nothing is set locally.
export class Config {
  constructor(name) {
    this.name = name ?? getProject();
  }
  get(key) {
    return process.env[`${this.name}:${key}`];
  }
  require(key) {
    const value = this.get(key);
    if (value === undefined) throw new Error(`Missing required configuration variable '${this.name}:${key}'`);
    return value;
  }
  getBoolean(key) {
    const value = this.get(key);
    return value === undefined ? undefined : value === "true";
  }
  getNumber(key) {
    const value = this.get(key);
    return value === undefined ? undefined : Number(value);
  }
  getObject(key) {
    const value = this.get(key);
    return value === undefined ? undefined : JSON.parse(value);
  }
  getSecret(key) {
    const value = this.get(key);
    return value === undefined ? undefined : secret(value);
  }
  requireSecret(key) {
    return secret(this.require(key));
  }
}

/// The base Pulumi resource classes, for apps that extend them.
export class Resource {
  constructor(type, name, args = {}, opts = {}) {
    this.__pulumiType = type;
    this.__name = name;
    this.urn = output(`urn:pulumi:${getStack()}::${getProject()}::${type}::${name}`);
  }
}
export class CustomResource extends Resource {
  constructor(type, name, args, opts) {
    super(type, name, args, opts);
    this.id = output(`${name}-id`);
  }
}
export class ComponentResource extends Resource {
  registerOutputs() {}
}
export class StackReference extends CustomResource {
  constructor(name, args) {
    super("pulumi:pulumi:StackReference", name, args);
  }
  getOutput(name) {
    return output(`placeholder-${name}`);
  }
  requireOutput(name) {
    return this.getOutput(name);
  }
}

export const runtime = {
  registerStackTransformation() {},
  registerResourceTransform() {},
  isDryRun: () => false,
};

export const asset = {
  FileAsset: class FileAsset {
    constructor(path) {
      this.path = path;
    }
  },
  FileArchive: class FileArchive {
    constructor(path) {
      this.path = path;
    }
  },
  StringAsset: class StringAsset {
    constructor(text) {
      this.text = text;
    }
  },
  AssetArchive: class AssetArchive {
    constructor(assets) {
      this.assets = assets;
    }
  },
};

export const log = {
  info: (message) => console.error(message),
  warn: (message) => console.error(message),
  error: (message) => console.error(message),
  debug: () => {},
};
