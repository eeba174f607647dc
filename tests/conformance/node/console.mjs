// The web console driven in headless Chromium (Debian's, by playwright-core):
// a Python `websockets` client appears, gets a message sent from the
// console, is disconnected from it; an event's JSON is read from its
// detail pane; the test client talks to a two-way route; a function's
// output shows in the logs. Prints what it saw for the Rust test to check
// against the HTTP backend. Usage:
// node console.mjs <admin url> <api url> <python> <console_client.py> [--screenshots DIR]
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const [admin, apiUrl, python, clientScript] = process.argv.slice(2);
const shots = process.argv.includes("--screenshots")
  ? process.argv[process.argv.indexOf("--screenshots") + 1]
  : null;
let client;
const fail = (message) => {
  console.error(`FAIL ${message}`);
  client?.kill();
  process.exit(1);
};
setTimeout(() => fail("timed out"), 60_000).unref();
const say = (line) => console.log(`console: ${line}`);

// The Python client, its stdout lines as they come.
client = spawn(python, [clientScript, apiUrl], { stdio: ["ignore", "pipe", "inherit"] });
const clientLines = [];
const waiters = [];
createInterface({ input: client.stdout }).on("line", (line) => {
  clientLines.push(line);
  for (const waiter of [...waiters]) waiter();
});
const clientSaid = (predicate, what) =>
  new Promise((resolve, reject) => {
    const check = () => {
      const line = clientLines.find(predicate);
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(check), 1);
        resolve(line);
      }
    };
    waiters.push(check);
    check();
    setTimeout(() => reject(new Error(`the Python client never said ${what}; it said ${JSON.stringify(clientLines)}`)), 15_000).unref();
  });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("dialog", (dialog) => dialog.accept());
  const shot = async (name) => {
    if (shots) await page.screenshot({ path: `${shots}/${name}.png` });
  };

  await page.goto(`${admin}/#connections`);
  await page.locator("#live", { hasText: "live" }).waitFor();

  // A connection appears.
  await clientSaid((l) => l === "connected", "connected");
  const row = page.locator("#connections tbody tr", { hasText: "python-websockets-console-test" });
  await row.waitFor();
  const connectionId = await row.getAttribute("data-connection-id");
  say(`connection appeared ${connectionId}`);
  await row.locator(".messages-in", { hasText: "1" }).waitFor();
  await shot("connections");

  // Sent from the console, as PostToConnection.
  await row.locator("button.send").click();
  await page.fill("#send-data", "hello from the console");
  await page.click("#send-form button[type=submit]");
  await page.locator("#send-result", { hasText: "Sent." }).waitFor();
  await clientSaid((l) => l === "received: hello from the console", "the console's message");
  say("the client received the console's message");
  await page.click("#send-cancel");
  await row.locator(".messages-out", { hasText: "1" }).waitFor();

  // Its own event history; the MESSAGE's JSON, opened from the keyboard.
  await row.locator("a.history").click();
  const message = page.locator(`#events tbody tr[data-route="$default"][data-connection-id="${connectionId}"]`);
  await message.first().waitFor();
  await message.first().focus();
  await page.keyboard.press("Enter");
  const eventJson = await page.locator("#event-json").textContent();
  say(`event-json ${JSON.stringify(JSON.parse(eventJson))}`);
  const logLine = await page.locator("#event-log-line").textContent();
  if (!logLine.includes(connectionId)) fail(`the access-log line does not name the connection: ${logLine}`);
  await shot("events");

  // Disconnected from the console, as DeleteConnection.
  await page.goto(`${admin}/#connections`);
  await row.locator("button.disconnect").click();
  await clientSaid((l) => l === "closed: 1000", "closed: 1000");
  await row.waitFor({ state: "detached" });
  say(`disconnected ${connectionId}`);

  // Filters: the DISCONNECT shows under its route, and 4xx has none of it.
  await page.goto(`${admin}/#events`);
  await page.fill("#event-connection", "");
  await page.selectOption("#event-route", "$disconnect");
  await page.locator(`#events tbody tr[data-route="$disconnect"][data-connection-id="${connectionId}"]`).waitFor();
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#events tbody tr")].every((r) => r.dataset.route === "$disconnect"));
  await page.selectOption("#event-route", "");
  await page.selectOption("#event-status", "4");
  await page.waitForFunction(() => document.querySelectorAll("#events tbody tr").length === 0);
  await page.selectOption("#event-status", "");

  // Live: a new connection's events arrive over the event stream; paused,
  // they wait until resumed.
  const rows = page.locator("#events tbody tr");
  const rowCount = () => rows.count();
  const roundTrip = (body) =>
    page.evaluate(([url, body]) => new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.onopen = () => socket.send(body);
      socket.onmessage = () => { socket.close(); resolve(); };
      socket.onerror = () => reject(new Error("the page's socket failed"));
    }), [apiUrl, body]);
  await page.waitForFunction(() => document.querySelectorAll("#events tbody tr").length > 0);
  let before = await rowCount();
  await roundTrip(JSON.stringify({ action: "echo", live: 1 }));
  await page.waitForFunction((n) => document.querySelectorAll("#events tbody tr").length === n + 3, before);
  say("live events arrived: CONNECT, MESSAGE, DISCONNECT");
  await page.click("#event-pause");
  before = await rowCount();
  await roundTrip(JSON.stringify({ action: "echo", paused: 1 }));
  await page.waitForTimeout(700);
  if ((await rowCount()) !== before) fail("events were added while paused");
  await page.click("#event-pause");
  await page.waitForFunction((n) => document.querySelectorAll("#events tbody tr").length >= n + 2, before);
  say("paused events held back, shown on resume");

  // The test client: two of them, a two-way route and a function.
  await page.goto(`${admin}/#client`);
  const openClient = async (query) => {
    await page.fill("#client-query", query);
    await page.click("#client-form button[type=submit]");
    const card = page.locator(".client").last();
    await card.locator(".client-status", { hasText: "open" }).waitFor();
    return card;
  };
  const first = await openClient("from=browser-1");
  const second = await openClient("from=browser-2");
  const echo = JSON.stringify({ action: "echo", hi: 1 });
  await first.locator("form input").fill(echo);
  await first.locator("form button").click();
  await first.locator("li.received", { hasText: echo }).waitFor();
  say("the test client got the two-way route's reply");
  await second.locator("form input").fill(JSON.stringify({ action: "chatty", n: 7 }));
  await second.locator("form button").click();
  await shot("client");
  await first.locator("button.danger").click();
  await first.locator(".client-status", { hasText: "closed 1000" }).waitFor();
  say("the test client saw close code 1000");

  // The function's stdout and stderr, in its route's logs.
  await page.goto(`${admin}/#logs`);
  await page.selectOption("#log-route", "chatty");
  await page.locator("#logs div.stdout", { hasText: "chatty got" }).waitFor();
  await page.locator("#logs div.stderr", { hasText: "chatty warns" }).waitFor();
  say("the function's output is in its route's logs");
  await shot("logs");

  // Charts and overview draw.
  await page.goto(`${admin}/#charts`);
  // A flat line has no height: attached, not visible, is what tells.
  await page.locator("#chart-connections path.line").waitFor({ state: "attached" });
  await page.locator("#chart-messages path.line").waitFor({ state: "attached" });
  await page.locator("#chart-latency path, #chart-latency circle").first().waitFor({ state: "attached" });
  await shot("charts");
  await page.goto(`${admin}/#overview`);
  await page.locator('#apis tr[data-route="chatty"]', { hasText: /[1-9] (idle|busy)/ }).waitFor();
  await shot("overview");

  if (problems.length) fail(`the page reported errors: ${problems.join("; ")}`);
  say("all checks passed");
} catch (error) {
  fail(error.stack ?? error.message);
} finally {
  client.kill();
  await browser.close();
}
process.exit(0);
