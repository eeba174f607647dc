// SST's components as wsgate evaluates them: the ones wsgate runs
// (ApiGatewayWebSocket, Function, Dynamo, Secret, Linkable) record what
// they describe; every other SST component, and every Pulumi provider
// resource, is an inert stand-in with placeholder outputs. A name SST does
// not have is an error ("not supported by wsgate").

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { scanPlatform } from "./catalog.mjs";
import { Output, all, interpolate, isOutput, output, promiseOf, resolveDeep, secret } from "./pulumi.mjs";

/// The app's folder: the config's.
const APP_DIR = dirname(process.env.WSGATE_SST_CONFIG ?? ".");

/// Everything the config created, in order.
export const registry = {
  components: [],
  apis: [],
  functions: [],
  tables: [],
  secrets: [],
  standIns: [],
  notices: [],
  // Work started by components (e.g. a route's function, built once its
  // handler is known): the evaluation waits for all of it.
  pending: new Set(),
};

function track(promise) {
  // Where in the app this work was started: an error in it (often inside
  // wsgate's own code, after an await) still names the user's line.
  const site = new Error().stack;
  const tracked = Promise.resolve(promise).catch((error) => {
    registry.failure ??= withSite(error, site);
  });
  registry.pending.add(tracked);
  tracked.finally(() => registry.pending.delete(tracked));
  return promise;
}

/// Marks an error with the stack of the app's call that led to it, for
/// errors whose own stack holds only wsgate's frames.
export function withSite(error, site) {
  if (error && typeof error === "object" && error.__wsgateSite === undefined) {
    try {
      error.__wsgateSite = site;
    } catch {}
  }
  return error;
}

export class NotSupported extends Error {
  constructor(what) {
    super(`not supported by wsgate: ${what}`);
    this.name = "NotSupported";
  }
}

/// SST's `transform`: an object is merged over the args, shallow, its keys
/// winning; a function is called with the args (and mutates them).
export function transform(transformer, name, args, opts = {}) {
  if (typeof transformer === "function") {
    transformer(args, opts, name);
    return [name, args, opts];
  }
  return [name, { ...args, ...(transformer ?? {}) }, opts];
}

// `$transform(Component, cb)`: callbacks by Pulumi type.
const componentTransforms = new Map();

export function $transform(resource, cb) {
  const type = resource?.__pulumiType;
  if (!type) throw new NotSupported(`$transform of ${resource?.name ?? String(resource)}`);
  if (!componentTransforms.has(type)) componentTransforms.set(type, []);
  componentTransforms.get(type).push(cb);
}

const app = () => globalThis.$app ?? { name: "app", stage: "dev" };
const region = () => process.env.WSGATE_REGION ?? "us-east-1";
const ACCOUNT = "000000000000";

/// The base of every component: SST's name rules, `$transform`, the urn.
export class Component {
  constructor(type, name, args = {}, opts = {}) {
    if (typeof name !== "string" || name.length === 0) {
      throw new Error(`A ${type.replaceAll(":", ".")} needs a name`);
    }
    // SST checks nothing more of a name (platform/src/components/
    // component.ts): "pointing-poker-ws-api" is a name, and the link key
    // (`Resource["pointing-poker-ws-api"]`) is the name as it is (link.ts).
    for (const cb of componentTransforms.get(type) ?? []) cb(args, opts, name);
    this.__pulumiType = type;
    this.__name = name;
    this.__args = args;
    this.__site = new Error().stack;
    this.urn = output(`urn:pulumi:${app().stage}::${app().name}::${type}::${name}`);
    registry.components.push(this);
  }
}

/// `sst.aws.permission(...)`: recorded, not enforced locally.
export function permission(args) {
  return { type: "aws.permission", ...args };
}

// ---------------------------------------------------------------------------
// Secret and Linkable

export class Secret extends Component {
  constructor(name, placeholder) {
    super("sst:sst:Secret", name, { placeholder });
    // SST's Secret component checks no name (platform/src/components/
    // secret.ts); only `sst secret set` does, as `wsgate secret set` does.
    this._name = name;
    this._placeholder = placeholder !== undefined ? output(placeholder) : undefined;
    const set = process.env[`SST_SECRET_${name}`];
    this._value = output(set ?? this._placeholder).apply((value) => {
      if (typeof value !== "string") {
        throw new SecretMissing(name);
      }
      return value;
    });
    registry.secrets.push(this);
  }
  get name() {
    return output(this._name);
  }
  get value() {
    return secret(this._value);
  }
  get placeholder() {
    return this._placeholder;
  }
  getSSTLink() {
    return { properties: { value: this.value } };
  }
}
Secret.__pulumiType = "sst:sst:Secret";

export class SecretMissing extends Error {
  constructor(name) {
    super(`Set a value for ${name} with \`wsgate secret set ${name} <value>\` (or SST_SECRET_${name} in the environment)`);
    this.name = "SecretMissing";
    this.secretName = name;
  }
}

export class Linkable extends Component {
  static wrappedResources = new Set();
  constructor(name, definition) {
    super("sst:sst:Linkable", name, definition);
    if (!definition || typeof definition !== "object" || !("properties" in definition)) {
      throw new Error(`sst.Linkable "${name}" needs { properties }`);
    }
    this._name = name;
    this._definition = definition;
  }
  get name() {
    return output(this._name);
  }
  get properties() {
    return this._definition.properties;
  }
  getSSTLink() {
    return this._definition;
  }
  static wrap(cls, cb) {
    if (cls?.__pulumiType) Linkable.wrappedResources.add(cls.__pulumiType);
    cls.prototype.getSSTLink = function () {
      return cb(this);
    };
  }
}
Linkable.__pulumiType = "sst:sst:Linkable";

/// The deprecated `sst.Resource`.
export class Resource extends Component {
  constructor(name, properties) {
    super("sst:sst:Resource", name, { properties });
    console.warn("Resource is deprecated. Use sst.Linkable instead.");
    this._properties = properties;
  }
  get properties() {
    return this._properties;
  }
  getSSTLink() {
    return { properties: this._properties };
  }
}
Resource.__pulumiType = "sst:sst:Resource";

/// `sst.linkable` / `$linkable` (older name for Linkable.wrap).
export function linkable(cls, cb) {
  Linkable.wrap(cls, cb);
}

export function isLinkable(value) {
  return value != null && (typeof value === "object" || typeof value === "function") && typeof value.getSSTLink === "function";
}

// ---------------------------------------------------------------------------
// Function

const RETENTION = {
  "1 day": 1, "3 days": 3, "5 days": 5, "1 week": 7, "2 weeks": 14, "1 month": 30,
  "2 months": 60, "3 months": 90, "4 months": 120, "5 months": 150, "6 months": 180,
  "1 year": 365, "13 months": 400, "18 months": 545, "2 years": 731, "3 years": 1096,
  "5 years": 1827, "6 years": 2192, "7 years": 2557, "8 years": 2922, "9 years": 3288,
  "10 years": 3653, forever: 0,
};

/// `accessLog.retention`'s default in the `sst` the app has installed:
/// "forever" before 3.2.49, "1 month" since (sst commit b548333c5,
/// "Components: set default log retention to 1 month", first in v3.2.49);
/// "1 month" when no `sst` package is found.
export const DEFAULT_RETENTION = (() => {
  const version = installedSstVersion();
  if (!version) return "1 month";
  const [major, minor, patch] = version.split(/[.-]/).map(Number);
  const before = major < 3 || (major === 3 && (minor < 2 || (minor === 2 && patch < 49)));
  return before ? "forever" : "1 month";
})();

/// The version of the `sst` package the app's folder resolves, if any.
function installedSstVersion() {
  let dir = APP_DIR;
  for (;;) {
    try {
      const version = JSON.parse(readFileSync(join(dir, "node_modules", "sst", "package.json"), "utf8")).version;
      if (typeof version === "string") return version;
    } catch {}
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export class Function extends Component {
  constructor(name, args, opts = {}) {
    super("sst:aws:Function", name, args, opts);
    if (!args || args.handler === undefined) throw new Error(`sst.aws.Function "${name}" needs a handler`);
    this._name = name;
    this._physical = `${app().name}-${app().stage}-${name}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64);
    this._args = args;
    registry.functions.push(this);
  }
  get name() {
    return output(this._physical);
  }
  get arn() {
    return output(`arn:aws:lambda:${region()}:${ACCOUNT}:function:${this._physical}`);
  }
  get url() {
    return output(undefined);
  }
  get nodes() {
    const self = this;
    return {
      get function() {
        return standInResource("aws:lambda/function:Function", self._name, {
          name: self.name,
          arn: self.arn,
          invokeArn: self.arn.apply((arn) => `arn:aws:apigateway:${region()}:lambda:path/2015-03-31/functions/${arn}/invocations`),
        });
      },
      role: standInResource("aws:iam/role:Role", `${self._name}Role`),
      logGroup: output(standInResource("aws:cloudwatch/logGroup:LogGroup", `${self._name}LogGroup`)),
    };
  }
  addEnvironment(environment) {
    this._args = { ...this._args, environment: all([this._args.environment, environment]).apply(([a, b]) => ({ ...(a ?? {}), ...(b ?? {}) })) };
  }
  getSSTLink() {
    return {
      properties: { name: this.name, url: this.url },
      include: [permission({ actions: ["lambda:InvokeFunction"], resources: [this.arn] })],
    };
  }
  static fromDefinition(name, definition, override = {}) {
    return output(definition).apply((definition) => {
      if (typeof definition === "string") return new Function(name, { handler: definition, ...override });
      if (definition.handler) return new Function(name, { ...override, ...definition });
      throw new Error(`Invalid function definition for the "${name}" Function`);
    });
  }
}
Function.__pulumiType = "sst:aws:Function";

/// SST's functionBuilder: a handler string, an ARN of a Function of this
/// app, or FunctionArgs, with the route's transform applied.
function functionBuilder(name, definition, defaultArgs, argsTransform) {
  // The app's call that asked for the function (the function itself is
  // made later, once the definition is known): where it is reported.
  const site = new Error().stack;
  return output(definition).apply((definition) => {
    const byArn = typeof definition === "string" && definition.startsWith("arn:");
    const fn = buildFunction(name, definition, defaultArgs, argsTransform);
    // Made here, it is reported at the app's call; one the app made
    // itself (named by its ARN) keeps its own line.
    if (!byArn) fn.__site = site;
    return fn;
  });
}

function buildFunction(name, definition, defaultArgs, argsTransform) {
  if (typeof definition === "string") {
    if (definition.startsWith("arn:")) {
      const fn = registry.functions.find((f) => `arn:aws:lambda:${region()}:${ACCOUNT}:function:${f._physical}` === definition);
      if (!fn) {
        throw new NotSupported(`a route handler that is the ARN of a function this app does not define (${definition})`);
      }
      return fn;
    }
    return new Function(...transform(argsTransform, name, { handler: definition, ...defaultArgs }));
  }
  if (definition && definition.handler) {
    return new Function(
      ...transform(argsTransform, name, {
        ...defaultArgs,
        ...definition,
        link: all([defaultArgs.link, definition.link]).apply(([a, b]) => [...(a ?? []), ...(b ?? [])]),
        environment: all([defaultArgs.environment, definition.environment]).apply(([a, b]) => ({ ...(a ?? {}), ...(b ?? {}) })),
        permissions: all([defaultArgs.permissions, definition.permissions]).apply(([a, b]) => [...(a ?? []), ...(b ?? [])]),
      }),
    );
  }
  throw new Error(`Invalid function definition for "${name}": give a handler string, FunctionArgs with a handler, or a Function's ARN`);
}

// ---------------------------------------------------------------------------
// ApiGatewayWebSocket

const SST_ACCESS_LOG_FORMAT = JSON.stringify({
  requestTime: `"$context.requestTime"`,
  requestId: `"$context.requestId"`,
  eventType: `"$context.eventType"`,
  routeKey: `"$context.routeKey"`,
  status: `$context.status`,
  integrationRequestId: `"$context.awsEndpointRequestId"`,
  integrationStatus: `"$context.integrationStatus"`,
  integrationLatency: `"$context.integrationLatency"`,
  integrationServiceStatus: `"$context.integration.integrationStatus"`,
  ip: `"$context.identity.sourceIp"`,
  userAgent: `"$context.identity.userAgent"`,
  connectedAt: `"$context.connectedAt"`,
  connectionId: `"$context.connectionId"`,
});

/// Asks wsgate for the address this API is served on.
let askListener = () => Promise.reject(new Error("no listener available"));
export function setListenerSource(fn) {
  askListener = fn;
}

export class ApiGatewayWebSocket extends Component {
  constructor(name, args = {}, opts = {}) {
    super("sst:aws:ApiGatewayWebSocket", name, args, opts);
    this._name = name;
    this._args = args;
    this._routes = [];
    this._authorizers = [];
    const id = apiId(name);
    this._apiId = id;
    // The API resource's outputs that permissions are written with
    // (`${api.nodes.api.executionArn}/*`): the same id wsgate serves.
    this._api = standInResource("aws:apigatewayv2/api:Api", `${name}Api`, {
      id: output(id),
      arn: output(`arn:aws:apigateway:${region()}::/apis/${id}`),
      executionArn: output(`arn:aws:execute-api:${region()}:${ACCOUNT}:${id}`),
      apiEndpoint: output(`wss://${id}.execute-api.${region()}.amazonaws.com`),
    });
    const [, apiArgs] = transform(args.transform?.api, `${name}Api`, {
      protocolType: "WEBSOCKET",
      routeSelectionExpression: "$request.body.action",
    });
    const accessLog = output(args.accessLog).apply((accessLog) => ({
      ...(accessLog ?? {}),
      retention: accessLog?.retention ?? DEFAULT_RETENTION,
    }));
    const [, logGroupArgs] = transform(args.transform?.accessLog, `${name}AccessLog`, {
      name: `/aws/vendedlogs/apis/${app().name}-${app().stage}-${name}`,
      retentionInDays: accessLog.apply((a) => {
        if (!(a.retention in RETENTION)) throw new Error(`accessLog.retention "${a.retention}" is not one of SST's values`);
        return RETENTION[a.retention];
      }),
    });
    const [, stageArgs] = transform(args.transform?.stage, `${name}Stage`, {
      apiId: id,
      autoDeploy: true,
      name: "$default",
      accessLogSettings: { destinationArn: `arn:aws:logs:${region()}:${ACCOUNT}:log-group:${name}`, format: SST_ACCESS_LOG_FORMAT },
    });
    // SST: `if (!args.domain) return;` (apigateway-websocket.ts), so null
    // (or "") is no domain, as undefined is.
    const domain = !args.domain ? undefined : output(args.domain).apply((domain) => {
      if (typeof domain === "string") return { name: domain };
      if (domain.name && domain.nameId) throw new Error(`Cannot configure both domain "name" and "nameId" for the "${name}" API.`);
      if (!domain.name && !domain.nameId) throw new Error(`Either domain "name" or "nameId" is required for the "${name}" API.`);
      return { name: domain.name ?? domain.nameId, path: domain.path, dnsGiven: domain.dns !== undefined, certGiven: domain.cert !== undefined };
    });
    const [, domainNameArgs] = !args.domain ? [undefined, undefined] : transform(args.transform?.domainName, `${name}DomainName`, {
      domainName: domain.apply((d) => d.name),
      domainNameConfiguration: { endpointType: "REGIONAL", securityPolicy: "TLS_1_2" },
    });
    this._stageName = output(stageArgs.name);
    this._domain = domain;
    this._listener = track(askListener(name));
    registry.apis.push(this);
    this._described = { apiArgs, stageArgs, logGroupArgs, accessLog, domain, domainNameArgs };
  }

  get url() {
    return new Output(
      Promise.all([this._listener, promiseOf(this._stageName), this._domain ? promiseOf(this._domain) : undefined]).then(
        ([listener, stage, domain]) => {
          if (domain) {
            const port = listener.port === 443 ? "" : `:${listener.port}`;
            return domain.path ? `wss://${domain.name}${port}/${domain.path}/` : `wss://${domain.name}${port}`;
          }
          return `${listener.tls ? "wss" : "ws"}://${listener.host}/${stage}`;
        },
      ),
    );
  }

  get managementEndpoint() {
    return new Output(
      Promise.all([this._listener, promiseOf(this._stageName)]).then(
        ([listener, stage]) => `${listener.tls ? "https" : "http"}://${listener.host}/${stage}`,
      ),
    );
  }

  get nodes() {
    const self = this;
    return {
      api: this._api,
      get domainName() {
        if (!self._args.domain) {
          throw new Error(`"nodes.domainName" is not available when domain is not configured for the "${self._name}" API.`);
        }
        return standInResource("aws:apigatewayv2/domainName:DomainName", `${self._name}DomainName`);
      },
      logGroup: standInResource("aws:cloudwatch/logGroup:LogGroup", `${self._name}AccessLog`),
    };
  }

  route(route, handler, args = {}) {
    if (typeof route !== "string" || route.length === 0) throw new Error("route() needs a route key");
    const suffix = ["$connect", "$disconnect", "$default"].includes(route)
      ? route.replace("$", "").replace(/^./, (c) => c.toUpperCase())
      : hash(route);
    const [routeName, routeArgs] = transform(this._args.transform?.route?.args, `${this._name}Route${suffix}`, args);
    const fn = functionBuilder(`${routeName}Handler`, handler, {}, this._args.transform?.route?.handler);
    track(promiseOf(fn));
    const entry = { key: route, fn, args: routeArgs, name: routeName };
    this._routes.push(entry);
    return new ApiGatewayWebSocketRoute(routeName, entry);
  }

  addAuthorizer(name, args) {
    if (typeof name !== "string") {
      // The older form: addAuthorizer({ name, lambda })
      args = name;
      name = args?.name;
    }
    if (!name) throw new Error("addAuthorizer() needs a name");
    if (args?.jwt) throw new NotSupported(`JWT authorizers on a WebSocket API ("${name}"); API Gateway authorizes WebSocket APIs with Lambda REQUEST authorizers`);
    if (!args?.lambda) throw new Error(`Please provide one of "lambda" or "jwt" for the ${name} authorizer.`);
    const lambda = output(args.lambda);
    const fn = functionBuilder(`${this._name}Authorizer${name}Handler`, lambda.apply((l) => l.function), {});
    track(promiseOf(fn));
    const authorizer = {
      name,
      fn,
      identitySources: lambda.apply((l) => l.identitySources ?? ["route.request.header.Authorization"]),
    };
    this._authorizers.push(authorizer);
    return new ApiGatewayV2Authorizer(`${this._name}Authorizer${name}`, authorizer);
  }

  getSSTLink() {
    return {
      properties: { url: this.url, managementEndpoint: this.managementEndpoint },
      // SST's (apigateway-websocket.ts getSSTLink).
      include: [permission({ actions: ["execute-api:ManageConnections"], resources: [interpolate`${this._api.executionArn}/*/*/@connections/*`] })],
    };
  }

  static get(name) {
    throw new NotSupported(`sst.aws.ApiGatewayWebSocket.get("${name}"): wsgate serves the APIs the app defines`);
  }

  /// What wsgate serves, once every Output is known.
  async describe() {
    const d = this._described;
    const [apiArgs, stageArgs, logGroupArgs, domain, domainNameArgs] = await Promise.all([
      resolveDeep(d.apiArgs),
      resolveDeep(d.stageArgs),
      resolveDeep(d.logGroupArgs),
      d.domain ? promiseOf(d.domain) : undefined,
      resolveDeep(d.domainNameArgs),
    ]);
    const routes = [];
    for (const route of this._routes) {
      const fn = await promiseOf(route.fn);
      const args = await resolveDeep(route.args);
      routes.push({ key: route.key, function: fn.__name, auth: normalizeAuth(route.key, args.auth) });
    }
    const authorizers = [];
    for (const authorizer of this._authorizers) {
      const fn = await promiseOf(authorizer.fn);
      authorizers.push({ name: authorizer.name, function: fn.__name, identitySources: await promiseOf(authorizer.identitySources) });
    }
    const settings = stageArgs.defaultRouteSettings ?? {};
    return {
      name: this._name,
      apiId: this._apiId,
      routeSelectionExpression: apiArgs.routeSelectionExpression,
      apiName: apiArgs.name,
      stage: stageArgs.name,
      accessLogFormat: stageArgs.accessLogSettings?.format ?? null,
      accessLogRetentionDays: logGroupArgs.retentionInDays,
      throttlingBurstLimit: settings.throttlingBurstLimit ?? null,
      throttlingRateLimit: settings.throttlingRateLimit ?? null,
      domain: domain ? { name: domainNameArgs?.domainName ?? domain.name, path: domain.path ?? null } : null,
      routes,
      authorizers,
    };
  }
}
ApiGatewayWebSocket.__pulumiType = "sst:aws:ApiGatewayWebSocket";

function normalizeAuth(key, auth) {
  if (auth === undefined || auth === null || auth === false) return null;
  if (auth.jwt) throw new NotSupported(`JWT auth on route ${key} of a WebSocket API`);
  if (auth.iam) return { iam: true };
  if (auth.lambda) return { lambda: auth.lambda };
  return null;
}

export class ApiGatewayWebSocketRoute extends Component {
  constructor(name, entry) {
    super("sst:aws:ApiGatewayWebSocketRoute", name, {});
    this._entry = entry;
  }
  get nodes() {
    const entry = this._entry;
    return {
      get function() {
        return entry.fn;
      },
      permission: standInResource("aws:lambda/permission:Permission", `${entry.name}Permissions`),
      route: standInResource("aws:apigatewayv2/route:Route", `${entry.name}Route`),
      integration: standInResource("aws:apigatewayv2/integration:Integration", `${entry.name}Integration`),
    };
  }
}
ApiGatewayWebSocketRoute.__pulumiType = "sst:aws:ApiGatewayWebSocketRoute";

export class ApiGatewayV2Authorizer extends Component {
  constructor(name, authorizer) {
    super("sst:aws:ApiGatewayV2Authorizer", name, {});
    this._authorizer = authorizer;
  }
  /// What a route's `auth: { lambda }` names.
  get id() {
    return output(this._authorizer.name);
  }
  get nodes() {
    return { authorizer: standInResource("aws:apigatewayv2/authorizer:Authorizer", this.__name) };
  }
}
ApiGatewayV2Authorizer.__pulumiType = "sst:aws:ApiGatewayV2Authorizer";

function apiId(name) {
  return hash(`${app().name}${name}`).toLowerCase().padEnd(10, "0").slice(0, 10);
}

/// A short stable hash, as SST's `hashStringToPrettyString`.
function hash(text) {
  let h = 2166136261;
  for (const ch of text) {
    h ^= ch.codePointAt(0);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h.toString(36).slice(0, 6);
}

// ---------------------------------------------------------------------------
// Dynamo

export class Dynamo extends Component {
  constructor(name, args, opts = {}) {
    super("sst:aws:Dynamo", name, args, opts);
    if (!args?.fields || !args?.primaryIndex) throw new Error(`sst.aws.Dynamo "${name}" needs fields and a primaryIndex`);
    this._name = name;
    this._args = args;
    this._tableName = `${app().name}-${app().stage}-${name}Table`.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 255);
    const [, tableArgs] = transform(args.transform?.table, `${name}Table`, {
      name: this._tableName,
      billingMode: "PAY_PER_REQUEST",
    });
    this._tableArgs = tableArgs;
    if (args.stream !== undefined) registry.notices.push(`Dynamo ${name}: streams are not run locally (no subscribers are invoked)`);
    registry.tables.push(this);
  }
  get name() {
    return output(this._tableArgs.name ?? this._tableName);
  }
  get arn() {
    return this.name.apply((n) => `arn:aws:dynamodb:${region()}:${ACCOUNT}:table/${n}`);
  }
  get nodes() {
    return { table: standInResource("aws:dynamodb/table:Table", `${this._name}Table`, { name: this.name, arn: this.arn }) };
  }
  subscribe() {
    registry.notices.push(`Dynamo ${this._name}.subscribe(): stream subscribers are not run locally`);
    return standIn("sst:aws:DynamoLambdaSubscriber", `${this._name}Subscriber`);
  }
  getSSTLink() {
    return {
      properties: { name: this.name },
      include: [permission({ actions: ["dynamodb:*"], resources: [this.arn, interpolate`${this.arn}/*`] })],
    };
  }
  static get(name, tableName) {
    throw new NotSupported(`sst.aws.Dynamo.get("${name}", "${tableName}"): a table defined outside the app (wsgate runs the app's own tables)`);
  }
  async describe() {
    const args = await resolveDeep(this._args);
    return {
      name: this._name,
      tableName: await promiseOf(this.name),
      fields: args.fields,
      primaryIndex: args.primaryIndex,
      globalIndexes: args.globalIndexes ?? {},
      localIndexes: args.localIndexes ?? {},
      ttl: args.ttl ?? null,
    };
  }
}
Dynamo.__pulumiType = "sst:aws:Dynamo";

// ---------------------------------------------------------------------------
// Stand-ins

/// What SST links each stand-in as: placeholder values of the same shape.
const LINK_PROPERTIES = {
  Bucket: ["name"], Queue: ["url"], SnsTopic: ["arn"], Bus: ["name", "arn"], Realtime: ["endpoint", "authorizer"],
  StaticSite: ["url"], Nextjs: ["url"], Remix: ["url"], Astro: ["url"], SvelteKit: ["url"], SolidStart: ["url"],
  Nuxt: ["url"], React: ["url"], Analog: ["url"], TanStackStart: ["url"], Router: ["url"], ApiGatewayV1: ["url"],
  ApiGatewayV2: ["url"], AppSync: ["url"], Email: ["sender", "configSet"], Auth: ["url"], Service: ["url"],
  Postgres: ["database", "username", "password", "host", "port"], Aurora: ["database", "username", "password", "host", "port"],
  Mysql: ["database", "username", "password", "host", "port"], Redis: ["host", "port", "username", "password"],
  OpenSearch: ["url", "username", "password"], CognitoUserPool: ["id"], CognitoIdentityPool: ["id"],
  KinesisStream: ["name"], StepFunctions: ["arn"], Vector: ["ingestor", "retriever", "remover"], Efs: ["id"],
  Kv: ["namespaceId"], D1: ["databaseId"], Worker: ["url"],
};

function placeholder(name, prop) {
  if (prop === "port") return 0;
  if (prop === "url" || prop === "endpoint") return `https://${name.toLowerCase()}.placeholder.invalid`;
  if (prop === "arn") return `arn:aws:placeholder:${region()}:${ACCOUNT}:${name}`;
  return `placeholder-${name}-${prop}`;
}

/// An inert object that answers any property with another stand-in (or a
/// placeholder Output) and any method call with a stand-in.
export const INERT = Symbol.for("wsgate.inert");

function inert(label, known = {}) {
  const target = function () {};
  return new Proxy(target, {
    get(_, prop) {
      if (prop === INERT) return label;
      // Not a thenable, and JSON sees the stand-in itself (no `toJSON()`).
      if (prop === "then" || prop === "toJSON" || typeof prop === "symbol") return undefined;
      // Own keys only: `toString` is not Object.prototype's.
      if (Object.hasOwn(known, prop)) return known[prop];
      if (prop === "toString") return () => `[stand-in ${label}]`;
      return inert(`${label}.${String(prop)}`);
    },
    apply() {
      return inert(`${label}()`);
    },
    construct() {
      return inert(`new ${label}`);
    },
  });
}

function standInResource(type, name, outputs = {}) {
  return inert(`${type} ${name}`, {
    __pulumiType: type,
    __name: name,
    urn: output(`urn:pulumi:${app().stage}::${app().name}::${type}::${name}`),
    id: output(`${name}-id`),
    arn: output(`arn:aws:placeholder:${region()}:${ACCOUNT}:${name}`),
    name: output(`placeholder-${name}`),
    ...outputs,
  });
}

/// A stand-in for an SST component wsgate does not run; `label` is how the
/// app names it (`sst.x.DevCommand`).
export function standIn(type, name, args = {}, label = type.replaceAll(":", ".")) {
  const short = type.split(":").at(-1);
  registry.standIns.push({ type: label, name });
  for (const cb of componentTransforms.get(type) ?? []) cb(args, {}, name);
  const props = LINK_PROPERTIES[short] ?? ["name"];
  const known = {
    __pulumiType: type,
    __name: name,
    urn: output(`urn:pulumi:${app().stage}::${app().name}::${type}::${name}`),
    getSSTLink: () => ({
      properties: Object.fromEntries(props.map((p) => [p, p === "password" ? secret(placeholder(name, p)) : placeholder(name, p)])),
      standIn: true,
    }),
  };
  for (const p of ["name", "arn", "url", "id", "domain", "endpoint", "host", "port", "database", "username", "password", "sender"]) {
    known[p] = output(placeholder(name, p));
  }
  return inert(`${label} ${name}`, known);
}

/// The class a stand-in is made with: `new sst.aws.Bucket(name, args)`,
/// with the static members SST's class has (`get` gives a stand-in of the
/// component; the others, `StepFunctions.lambdaInvoke(...)` and the like,
/// inert values), and the `v1` variant.
function standInClass(type, label, statics) {
  const make = function (name, args) {
    if (!new.target) throw new TypeError(`Class constructor ${label} cannot be invoked without 'new'`);
    return standIn(type, name, args, label);
  };
  make.__pulumiType = type;
  for (const member of statics) {
    make[member] = member === "get" ? (name) => standIn(type, name, {}, label) : (...args) => inert(`${label}.${member}(${args.length ? "…" : ""})`);
  }
  Object.defineProperty(make, "v1", { get: () => standInClass(type, label, statics) });
  return make;
}

/// SST's namespaces as the app's platform has them: its own
/// `.sst/platform` when `sst install` wrote one, else the catalog made
/// from SST's source (`scripts/sst-catalog`).
export const catalog =
  scanPlatform(join(APP_DIR, ".sst", "platform")) ?? JSON.parse(readFileSync(new URL("./catalog.json", import.meta.url), "utf8"));

/// Pulumi's type of an SST component (`sst:aws:Bucket`); `sst.x`'s are
/// `sst:sst:` as SST types them (experimental/dev-command.ts).
function pulumiType(namespace, name) {
  const provider = namespace.split(".")[0];
  return `sst:${provider === "x" ? "sst" : provider}:${name}`;
}

/// A namespace's members: wsgate's own where it runs them (or has its own
/// version), stand-ins for every other class and function SST exports.
function namespace(label, own) {
  const entry = catalog.namespaces[label.replace(/^sst\./, "")] ?? { classes: {}, functions: [] };
  const members = { ...own };
  for (const [name, statics] of Object.entries(entry.classes)) {
    if (name in members) {
      // A class wsgate runs: SST's statics it does not have stand in.
      for (const member of statics) {
        if (!(member in members[name])) {
          members[name][member] = (...args) => {
            registry.notices.push(`${label}.${name}.${member}(): not run locally`);
            return inert(`${label}.${name}.${member}(${args.length ? "…" : ""})`);
          };
        }
      }
      continue;
    }
    members[name] = standInClass(pulumiType(label.replace(/^sst\./, ""), name), `${label}.${name}`, statics);
  }
  for (const name of entry.functions) {
    members[name] ??= (...args) => inert(`${label}.${name}(${args.length ? "…" : ""})`);
  }
  return strict(label, members);
}

/// A namespace whose unknown members are errors, not silent skips.
function strict(label, members) {
  return new Proxy(members, {
    get(target, prop) {
      if (typeof prop === "symbol" || prop in target) return target[prop];
      if (prop === "then" || prop === "toJSON") return undefined;
      throw new NotSupported(`${label}.${String(prop)}`);
    },
  });
}

const aws = {
  ApiGatewayWebSocket,
  Dynamo,
  Function,
  permission,
  linkable,
  dns: (args) => ({ provider: "aws", ...args }),
  iamEdit: (policy, cb) => output(policy).apply((p) => {
    const parsed = typeof p === "string" ? JSON.parse(p) : p;
    cb(parsed);
    return JSON.stringify(parsed);
  }),
};
const cloudflare = { dns: (args) => ({ provider: "cloudflare", ...args }), binding: (args) => ({ type: "cloudflare.binding", ...args }) };
const vercel = { dns: (args) => ({ provider: "vercel", ...args }) };

const experimental = namespace("sst.x", {});
export const sst = strict("sst", {
  aws: namespace("sst.aws", aws),
  cloudflare: namespace("sst.cloudflare", { ...cloudflare, x: namespace("sst.cloudflare.x", {}) }),
  vercel: namespace("sst.vercel", vercel),
  x: experimental,
  experimental,
  Secret,
  Linkable,
  Resource,
  linkable,
});

/// A Pulumi provider module (`aws`, `cloudflare`, `random`, ...): every
/// resource class and function is an inert stand-in.
export function provider(name) {
  const resource = (path) =>
    new Proxy(function () {}, {
      get(_, prop) {
        if (prop === "then" || typeof prop === "symbol") return undefined;
        if (prop === "__pulumiType") return `${name}:${path}`;
        if (prop === "get") return (resourceName) => standInResource(`${name}:${path}`, resourceName);
        return resource(`${path}.${String(prop)}`);
      },
      construct(_, args) {
        const resourceName = args[0];
        registry.standIns.push({ type: `${name}.${path}`, name: resourceName });
        return standInResource(`${name}:${path}`, resourceName);
      },
      apply(_, __, args) {
        // Data sources: `getX()` gives a promise of a plain object,
        // `getXOutput()` an Output, as Pulumi's do; the values are
        // placeholders but for the region, account and partition.
        const isOutput = path.endsWith("Output");
        const base = isOutput ? path.slice(0, -"Output".length) : path;
        let value;
        if (base.endsWith("getRegion")) value = { name: region(), id: region(), region: region(), description: region() };
        else if (base.endsWith("getCallerIdentity")) {
          value = { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/wsgate`, userId: "AIDAWSGATE", id: ACCOUNT };
        } else if (base.endsWith("getPartition")) value = { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
        else if (/\.get[A-Z]/.test(`.${base.split(".").at(-1)}`)) {
          value = inert(`${name}.${path}(${args.length ? "…" : ""})`, { id: output(`placeholder-${base}`), arn: output(`arn:aws:placeholder:${region()}:${ACCOUNT}:${base}`) });
          return isOutput ? value : Promise.resolve(value);
        } else return inert(`${name}.${path}(${args.length ? "…" : ""})`);
        return isOutput ? output(value) : Promise.resolve(value);
      },
    });
  return new Proxy({}, {
    get(_, prop) {
      if (prop === "then" || typeof prop === "symbol") return undefined;
      return resource(String(prop));
    },
  });
}

/// Every linkable value's link, once every Output is known.
export async function linkOf(value) {
  const definition = value.getSSTLink();
  const properties = await resolveDeep(definition.properties ?? {});
  const include = await resolveDeep(definition.include ?? []);
  const type = (value.__pulumiType ?? "sst:sst:Linkable").replaceAll(":", ".");
  return { name: value.__name, properties: { ...properties, type }, include, standIn: definition.standIn === true };
}

export { isOutput, output };
