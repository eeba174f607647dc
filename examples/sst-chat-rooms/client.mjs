// A terminal client for chat-rooms:
//   node --experimental-websocket client.mjs <name> <room> [url]
// The url is the app's output, read from .wsgate/outputs.json when not
// given; the client uses plain ws:// on the same port (wss:// needs the
// app's local CA: `wsgate ca`). Lines you type are said in the room;
// "/announce <token> <text>" announces.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [name = "guest", room = "lobby"] = process.argv.slice(2);
const url = process.argv[4] ?? JSON.parse(readFileSync(join(here, ".wsgate/outputs.json"), "utf8")).url;
const socket = new WebSocket(`${url.replace(/^wss:/, "ws:")}?name=${encodeURIComponent(name)}`);

socket.addEventListener("open", () => {
  socket.send(JSON.stringify({ action: "join", room, name }));
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const announce = /^\/announce (\S+) (.*)$/.exec(line);
    socket.send(
      JSON.stringify(
        announce
          ? { action: "announce", room, token: announce[1], text: announce[2] }
          : { action: "say", room, text: line },
      ),
    );
  });
  lines.on("close", () => socket.close(1000));
});
socket.addEventListener("message", (event) => {
  const message = JSON.parse(event.data);
  if (message.joined) console.log(`* ${message.name} joined ${message.joined}: ${message.members.join(", ")}`);
  else if (message.text) console.log(`${message.from}: ${message.text}`);
  else console.log(message);
});
socket.addEventListener("close", (event) => {
  console.log(`closed (${event.code})`);
  process.exit(0);
});
