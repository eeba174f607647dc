// Real Node.js peers against wsgate: the `ws` client and the AWS SDK v3
// management client. Usage: node clients.mjs <url> <managementEndpoint>
// Prints one line per check; exits non-zero on the first failure.
import WebSocket from "ws";
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";

const [url, endpoint] = process.argv.slice(2);
const fail = (message) => {
  console.error(`FAIL ${message}`);
  process.exit(1);
};
const timeout = setTimeout(() => fail("timed out"), 20_000);

function open() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { "User-Agent": "node-ws-conformance" } });
    const inbox = [];
    const waiters = [];
    socket.on("message", (data) => {
      const text = data.toString();
      const waiter = waiters.shift();
      waiter ? waiter(text) : inbox.push(text);
    });
    socket.next = () => new Promise((r) => (inbox.length ? r(inbox.shift()) : waiters.push(r)));
    socket.closed = new Promise((r) => socket.on("close", (code) => r(code)));
    socket.on("open", () => resolve(socket));
    socket.on("error", reject);
  });
}

const socket = await open();
socket.send(JSON.stringify({ action: "whoami" }));
const id = await socket.next();
console.log(`ws: connected as ${id}`);

socket.send(JSON.stringify({ action: "echo", text: "héllo" }));
const echoed = await socket.next();
if (echoed !== JSON.stringify({ action: "echo", text: "héllo" })) fail(`echo gave ${echoed}`);
console.log("ws: routed message echoed");

// Credentials and region come from the environment, as on Lambda.
const client = new ApiGatewayManagementApiClient({ endpoint });
await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: "pushed by the JS SDK" }));
const pushed = await socket.next();
if (pushed !== "pushed by the JS SDK") fail(`push gave ${pushed}`);
console.log("sdk: PostToConnection delivered");

const info = await client.send(new GetConnectionCommand({ ConnectionId: id }));
if (!(info.ConnectedAt instanceof Date) || info.Identity?.SourceIp !== "127.0.0.1") fail(`GetConnection gave ${JSON.stringify(info)}`);
if (info.Identity?.UserAgent !== "node-ws-conformance") fail(`user agent ${info.Identity?.UserAgent}`);
console.log("sdk: GetConnection typed");

await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
const code = await socket.closed;
console.log(`sdk: DeleteConnection closed the socket (${code})`);

try {
  await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: "late" }));
  fail("posting to a deleted connection succeeded");
} catch (error) {
  if (!(error instanceof GoneException)) fail(`expected GoneException, got ${error.name}: ${error.message}`);
  console.log("sdk: GoneException typed");
}
clearTimeout(timeout);
console.log("node: all checks passed");
