import { Resource } from "sst";
import * as rooms from "@chat/core/rooms";
import { push } from "./push.js";
import { body, ok, type WebSocketEvent } from "./event.js";

export async function join(event: WebSocketEvent) {
  const { room, name } = body(event) as { room?: string; name?: string };
  const id = event.requestContext.connectionId;
  if (!room || !name) {
    await push([id], { error: "join needs room and name" });
    return ok;
  }
  if ((await rooms.join(room, id, name)) === "full") {
    await push([id], { error: `room ${room} is full (${Resource.Limits.maxMembers} members)` });
    return ok;
  }
  const members = await rooms.members(room);
  await push(members.map((m) => m.connectionId), { joined: room, name, members: members.map((m) => m.name).sort() });
  return ok;
}

export async function say(event: WebSocketEvent) {
  const { room, text } = body(event) as { room?: string; text?: string };
  const id = event.requestContext.connectionId;
  const members = room ? await rooms.members(room) : [];
  const me = members.find((m) => m.connectionId === id);
  if (!room || !text || !me) {
    await push([id], { error: "say needs a room you joined and text" });
    return ok;
  }
  if (text.length > Resource.Limits.maxMessageLength) {
    await push([id], { error: "message too long" });
    return ok;
  }
  const gone = await push(members.map((m) => m.connectionId), { room, from: me.name, text });
  for (const stale of gone) await rooms.leave(room, stale);
  return ok;
}

export async function leave(event: WebSocketEvent) {
  const { room } = body(event) as { room?: string };
  if (room) await rooms.leave(room, event.requestContext.connectionId);
  return ok;
}

/// To every member of a room, with the admin token.
export async function announce(event: WebSocketEvent) {
  const { room, text, token } = body(event) as { room?: string; text?: string; token?: string };
  if (token !== Resource.AdminToken.value || !room) {
    await push([event.requestContext.connectionId], { error: "not allowed" });
    return ok;
  }
  const members = await rooms.members(room);
  await push(members.map((m) => m.connectionId), { room, from: process.env.ANNOUNCER, text });
  return ok;
}
