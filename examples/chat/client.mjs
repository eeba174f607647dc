// A terminal chat client: node --experimental-websocket client.mjs [name] [url]
// Lines you type are sent as {"action": "sendMessage", "message": ...}.
import { createInterface } from "node:readline";

const name = process.argv[2] ?? "guest";
const url = process.argv[3] ?? "ws://127.0.0.1:8080/$default";
const socket = new WebSocket(`${url}?name=${encodeURIComponent(name)}`);

socket.addEventListener("open", () => {
  console.log(`connected to ${url} as ${name}; type a message and press enter`);
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) =>
    socket.send(JSON.stringify({ action: "sendMessage", message: line })),
  );
  lines.on("close", () => socket.close(1000));
});
socket.addEventListener("message", (event) => {
  try {
    const { from, message } = JSON.parse(event.data);
    console.log(`${from}: ${message}`);
  } catch {
    console.log(event.data);
  }
});
socket.addEventListener("close", (event) => {
  console.log(`closed (${event.code})`);
  process.exit(0);
});
