// Headless Chromium (Debian's, driven by playwright-core) against wsgate:
// the browser's own WebSocket, a subprotocol negotiated by $connect, and a
// push through the management API. Usage:
// node browser.mjs <url> <managementEndpoint> [--presign]
// With --presign the page connects with a presigned URL (IAM $connect).
import { chromium } from "playwright-core";
import { presign } from "./presign.mjs";
import {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";

const [plainUrl, endpoint] = process.argv.slice(2);
const url = process.argv.includes("--presign") ? await presign(plainUrl) : plainUrl;
const fail = (message) => {
  console.error(`FAIL ${message}`);
  process.exit(1);
};
setTimeout(() => fail("timed out"), 60_000).unref();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  const opened = await page.evaluate(async (url) => {
    const socket = new WebSocket(url, ["chat.v1"]);
    window.inbox = [];
    window.socket = socket;
    socket.onmessage = (event) => window.inbox.push(event.data);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("WebSocket error"));
    });
    socket.send(JSON.stringify({ action: "whoami" }));
    while (!window.inbox.length) await new Promise((r) => setTimeout(r, 10));
    return { id: window.inbox.shift(), protocol: socket.protocol };
  }, url);
  if (opened.protocol !== "chat.v1") fail(`subprotocol ${opened.protocol}`);
  console.log(`browser: connected as ${opened.id} with subprotocol ${opened.protocol}`);

  const next = () =>
    page.evaluate(async () => {
      while (!window.inbox.length) await new Promise((r) => setTimeout(r, 10));
      return window.inbox.shift();
    });
  await page.evaluate(() => window.socket.send(JSON.stringify({ action: "echo", from: "chromium" })));
  const echoed = await next();
  if (echoed !== JSON.stringify({ action: "echo", from: "chromium" })) fail(`echo gave ${echoed}`);
  console.log("browser: routed message echoed");

  // Pushes are SigV4-signed; credentials come from the environment.
  const management = new ApiGatewayManagementApiClient({ endpoint });
  await management.send(
    new PostToConnectionCommand({ ConnectionId: opened.id, Data: "pushed to the browser" }),
  );
  const pushed = await next();
  if (pushed !== "pushed to the browser") fail(`push gave ${pushed}`);
  console.log("browser: push received");

  const code = await page.evaluate(async () => {
    const closed = new Promise((r) => (window.socket.onclose = (e) => r(e.code)));
    window.socket.close(4000, "bye");
    return closed;
  });
  console.log(`browser: closed (${code})`);
} finally {
  await browser.close();
}
console.log("browser: all checks passed");
