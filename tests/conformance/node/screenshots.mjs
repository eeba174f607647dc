// Screenshots of each console view for docs/console.md, with real traffic:
// chat users talking through the chat example (or any API with a
// sendMessage route), a function's output for the logs view. Usage:
// node screenshots.mjs <admin url> <api url> <out dir> [logs admin url] [logs api url]
import { chromium } from "playwright-core";
import WebSocket from "ws";

const [admin, apiUrl, out, logsAdmin, logsApi] = process.argv.slice(2);
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
setTimeout(() => { console.error("timed out"); process.exit(1); }, 180_000).unref();

function user(name, url = apiUrl) {
  // SST's example serves wss:// with wsgate's local CA, which only
  // matters to a browser: this is a loopback screenshot tool.
  const socket = new WebSocket(`${url}?name=${name}`, {
    headers: { "user-agent": `chat-client/${name}` },
    rejectUnauthorized: false,
  });
  return new Promise((resolve) => socket.on("open", () => resolve(socket)));
}
const say = (socket, message) => socket.send(JSON.stringify({ action: "sendMessage", message }));

const alice = await user("alice");
const bob = await user("bob");
const carol = await user("carol");
// A minute of chat, so the charts have something to show.
const lines = ["hi all", "hey alice", "who's up for lunch?", "me!", "12:30?", "works for me"];
for (let i = 0; i < 30; i++) {
  say([alice, bob, carol][i % 3], lines[i % lines.length]);
  if (i % 7 === 3) bob.send("not json at all");
  await pause(600 + (i % 5) * 200);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
});
const shoot = async (page, name) => page.screenshot({ path: `${out}/${name}.png` });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(`${admin}/#overview`);
  await page.locator("#live", { hasText: "live" }).waitFor();
  await shoot(page, "overview");

  await page.goto(`${admin}/#connections`);
  await page.locator("#connections tbody tr").nth(2).waitFor();
  await shoot(page, "connections");
  await page.locator("#connections tbody tr button.send").first().click();
  await page.fill("#send-data", JSON.stringify({ from: "admin", message: "the room closes at 6pm" }));
  await page.click("#send-form button[type=submit]");
  await page.locator("#send-result", { hasText: "Sent." }).waitFor();
  await shoot(page, "send");
  await page.click("#send-cancel");

  await page.goto(`${admin}/#events`);
  await page.locator('#events tbody tr[data-route="sendMessage"]').first().click();
  await page.locator("#event-json").waitFor();
  await shoot(page, "events");

  await page.goto(`${admin}/#client`);
  for (const name of ["dave", "erin"]) {
    await page.fill("#client-query", `name=${name}`);
    await page.click("#client-form button[type=submit]");
    await page.locator(".client").last().locator(".client-status", { hasText: "open" }).waitFor();
  }
  const [dave, erin] = [page.locator(".client").nth(0), page.locator(".client").nth(1)];
  await dave.locator("form input").fill(JSON.stringify({ action: "sendMessage", message: "hello from the browser" }));
  await dave.locator("form button").click();
  await erin.locator("form input").fill("hello?");
  await erin.locator("form button").click();
  await erin.locator("li.received").nth(1).waitFor();
  await shoot(page, "client");

  await page.goto(`${admin}/#charts`);
  await page.locator("#chart-latency path.line").first().waitFor({ state: "attached" });
  await pause(500);
  await shoot(page, "charts");

  const dark = await browser.newPage({ viewport: { width: 1280, height: 760 }, colorScheme: "dark" });
  await dark.goto(`${admin}/#events`);
  await dark.locator('#events tbody tr[data-route="$default"]').first().click();
  await dark.locator("#event-json").waitFor();
  await shoot(dark, "events-dark");

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.goto(`${admin}/#connections`);
  await phone.locator("#connections tbody tr").first().waitFor();
  await shoot(phone, "connections-phone");

  if (logsAdmin) {
    const logs = await browser.newPage({ viewport: { width: 1280, height: 560 } });
    const frank = await user("frank", logsApi);
    frank.send(JSON.stringify({ action: "sendmessage", message: "hi" }));
    frank.send("anything else");
    await pause(1500);
    frank.close();
    await logs.goto(`${logsAdmin}/#logs`);
    await logs.locator("#logs div").nth(2).waitFor();
    await shoot(logs, "logs");
  }
} finally {
  await browser.close();
  for (const socket of [alice, bob, carol]) socket.close();
}
console.log(`screenshots in ${out}`);
