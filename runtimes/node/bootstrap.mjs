// wsgate's Node.js bootstrap: loads a handler file and runs it against the
// AWS Lambda Runtime API (AWS_LAMBDA_RUNTIME_API), like Lambda's nodejs runtime.
import http from "node:http";
import net from "node:net";
import { pathToFileURL } from "node:url";

// The names the API answers to on AWS (its execute-api host, its custom
// domain) reach wsgate: a connection to one of them on 443, 80, no port
// or the local port itself goes to that local port. Every TCP connection (node:http,
// node:https, fetch, the AWS SDK) passes through Socket#connect; TLS keeps
// the name for SNI and the certificate check, HTTP for `Host`.
const servedHosts = JSON.parse(process.env.WSGATE_HOSTS || "{}");
if (Object.keys(servedHosts).length > 0) {
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    const first = args[0];
    if (first !== null && typeof first === "object" && !Array.isArray(first) && typeof first.host === "string") {
      const local = servedHosts[first.host.toLowerCase().replace(/\.$/, "")];
      const port = first.port === undefined || first.port === null || first.port === "" ? undefined : Number(first.port);
      if (local !== undefined && (port === undefined || port === 443 || port === 80 || port === local)) {
        args[0] = { ...first, host: "127.0.0.1", port: local, lookup: undefined };
      }
    }
    return connect.apply(this, args);
  };
}

const file = process.env.WSGATE_HANDLER_FILE;
const exportName = process.env.WSGATE_HANDLER_EXPORT;
const [apiHost, apiPort] = (process.env.AWS_LAMBDA_RUNTIME_API ?? "").split(":");
const base = "/2018-06-01/runtime";
// One kept-alive connection: node:http is much cheaper per call than fetch.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/// Makes a Runtime API call; resolves with { status, headers, body }.
function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: apiHost, port: apiPort, method, path: base + path, agent, headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

async function load() {
  const module = await import(pathToFileURL(file).href);
  // Own exports only: `toString` and the rest of Object.prototype are not
  // a module's exports (CommonJS modules arrive as `default`).
  const own = (object) => object != null && Object.hasOwn(object, exportName) ? object[exportName] : undefined;
  const handler = own(module) ?? own(module.default);
  if (typeof handler !== "function") {
    throw new Error(`${file} does not export a function named "${exportName}"`);
  }
  return handler;
}

function errorBody(error) {
  const e = error instanceof Error ? error : new Error(String(error));
  return JSON.stringify({
    errorType: e.name || "Error",
    errorMessage: e.message,
    stackTrace: (e.stack || "").split("\n").slice(1).map((l) => l.trim()),
  });
}

async function post(path, body) {
  await call("POST", path, body);
}

// Handlers may be async or take a callback (event, context, callback).
function run(handler, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (error, result) => (error ? reject(error) : resolve(result));
    context.done = callback;
    context.succeed = (result) => resolve(result);
    context.fail = (error) => reject(error);
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") returned.then(resolve, reject);
      else if (handler.length < 3) resolve(returned);
    } catch (error) {
      reject(error);
    }
  });
}

async function nextInvocation() {
  // The long poll may outlive the HTTP client's timeouts: retry quietly.
  for (;;) {
    try {
      const response = await call("GET", "/invocation/next");
      if (response.status === 200) return response;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
}

let handler;
try {
  handler = await load();
} catch (error) {
  console.error(error);
  await post("/init/error", errorBody(error));
  process.exit(1);
}

for (;;) {
  const response = await nextInvocation();
  const requestId = response.headers["lambda-runtime-aws-request-id"];
  const deadline = Number(response.headers["lambda-runtime-deadline-ms"]);
  const event = JSON.parse(response.body);
  const context = {
    awsRequestId: requestId,
    invokedFunctionArn: response.headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
  try {
    const result = await run(handler, event, context);
    await post(`/invocation/${requestId}/response`, JSON.stringify(result === undefined ? null : result));
  } catch (error) {
    console.error(error);
    await post(`/invocation/${requestId}/error`, errorBody(error));
  }
}
