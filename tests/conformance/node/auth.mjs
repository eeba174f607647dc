// The JS SDK v3 and its signer against wsgate's SigV4: a presigned
// $connect URL, management calls with configured keys, and the refusals.
// Usage: node auth.mjs <url> <managementEndpoint>; alice's key in AWS_*,
// the read-only key in READER_ACCESS_KEY_ID / READER_SECRET_ACCESS_KEY.
import WebSocket from "ws";
import {
  ApiGatewayManagementApiClient,
  ForbiddenException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { presign } from "./presign.mjs";

const [url, endpoint] = process.argv.slice(2);
const fail = (message) => {
  console.error(`FAIL ${message}`);
  process.exit(1);
};
const timeout = setTimeout(() => fail("timed out"), 30_000);

// Resolves with the open socket, or the refusal's HTTP status.
function open(target) {
  return new Promise((resolve) => {
    const socket = new WebSocket(target);
    const inbox = [];
    const waiters = [];
    socket.on("message", (data) => {
      const text = data.toString();
      const waiter = waiters.shift();
      waiter ? waiter(text) : inbox.push(text);
    });
    socket.next = () => new Promise((r) => (inbox.length ? r(inbox.shift()) : waiters.push(r)));
    socket.pending = () => inbox.length;
    socket.on("unexpected-response", (request, response) => {
      request.destroy();
      resolve(response.statusCode);
    });
    socket.on("error", () => {});
    socket.on("open", () => resolve(socket));
  });
}

const refused = await open(url);
if (refused !== 403) fail(`unsigned upgrade gave ${refused}`);
console.log("ws: unsigned upgrade refused (403)");

const socket = await open(await presign(url));
if (typeof socket === "number") fail(`presigned upgrade refused (${socket})`);
socket.send(JSON.stringify({ action: "whoami" }));
const me = JSON.parse(await socket.next());
if (!me.userArn?.endsWith(":user/alice")) fail(`identity ${JSON.stringify(me)}`);
console.log("signer: presigned $connect accepted as alice");

const alice = new ApiGatewayManagementApiClient({ endpoint });
await alice.send(new PostToConnectionCommand({ ConnectionId: me.id, Data: "signed by the JS SDK" }));
if ((await socket.next()) !== "signed by the JS SDK") fail("push not delivered");
console.log("sdk: PostToConnection delivered");

const reader = new ApiGatewayManagementApiClient({
  endpoint,
  credentials: {
    accessKeyId: process.env.READER_ACCESS_KEY_ID,
    secretAccessKey: process.env.READER_SECRET_ACCESS_KEY,
  },
});
try {
  await reader.send(new PostToConnectionCommand({ ConnectionId: me.id, Data: "from the reader" }));
  fail("the read-only key posted");
} catch (error) {
  if (!(error instanceof ForbiddenException)) fail(`reader got ${error.name}: ${error.message}`);
}
console.log("sdk: ForbiddenException typed for a key without POST");

const forger = new ApiGatewayManagementApiClient({
  endpoint,
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: "not-the-secret" },
});
try {
  await forger.send(new PostToConnectionCommand({ ConnectionId: me.id, Data: "forged" }));
  fail("a wrong secret posted");
} catch (error) {
  if (error.name !== "InvalidSignatureException") fail(`forger got ${error.name}`);
  if (error.$metadata?.httpStatusCode !== 403) fail(`forger got ${error.$metadata?.httpStatusCode}`);
}
console.log("sdk: InvalidSignatureException for a wrong secret");

await new Promise((r) => setTimeout(r, 300));
if (socket.pending() !== 0) fail("a refused call was delivered");
socket.close();

const expiring = await presign(url, { expiresIn: 1 });
await new Promise((r) => setTimeout(r, 2_100));
const expired = await open(expiring);
if (expired !== 403) fail(`expired presign gave ${expired}`);
console.log("signer: expired presigned URL refused (403)");

clearTimeout(timeout);
console.log("node auth: all checks passed");
