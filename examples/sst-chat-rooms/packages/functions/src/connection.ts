import { Resource } from "sst";
import { leave, roomsOf } from "@chat/core/rooms";
import { push } from "./push.js";
import { ok, type WebSocketEvent } from "./event.js";

/// A client must say who it is (`?name=`); the message of the day is
/// sent as a header.
export async function connect(event: WebSocketEvent) {
  const name = event.queryStringParameters?.name;
  if (!name) return { statusCode: 400, body: "name is required: connect with ?name=<you>" };
  if (name.length > 32) return { statusCode: 401, body: "that name is not allowed" };
  return { statusCode: 200, headers: { "x-motd": Resource.Motd.value } };
}

export async function disconnect(event: WebSocketEvent) {
  const id = event.requestContext.connectionId;
  for (const member of await roomsOf(id)) {
    await leave(member.room, id);
  }
  return ok;
}

/// Anything without a known action.
export const $default = async (event: WebSocketEvent) => {
  await push([event.requestContext.connectionId], {
    error: "unknown action",
    actions: ["join", "say", "leave", "announce"],
    stage: Resource.Limits.stage,
  });
  return ok;
};
