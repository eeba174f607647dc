// Rooms and their members, in the linked Rooms table.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { Resource } from "sst";

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const table = () => Resource.Rooms.name;
const DAY = 24 * 60 * 60;

export interface Member {
  room: string;
  connectionId: string;
  name: string;
}

/// Adds a member, unless the room is full; the room's counter counts
/// members (an `ADD` with a condition).
export async function join(room: string, connectionId: string, name: string): Promise<"joined" | "full"> {
  try {
    await db.send(
      new UpdateCommand({
        TableName: table(),
        Key: { pk: room, sk: "#room" },
        UpdateExpression: "ADD members :one",
        ConditionExpression: "attribute_not_exists(members) OR members < :max",
        ExpressionAttributeValues: { ":one": 1, ":max": Resource.Limits.maxMembers },
      }),
    );
  } catch (error) {
    if ((error as Error).name === "ConditionalCheckFailedException") return "full";
    throw error;
  }
  await db.send(
    new PutCommand({
      TableName: table(),
      Item: { pk: room, sk: connectionId, connectionId, name, expiresAt: Math.floor(Date.now() / 1000) + DAY },
    }),
  );
  return "joined";
}

export async function members(room: string): Promise<Member[]> {
  const result = await db.send(
    new QueryCommand({
      TableName: table(),
      KeyConditionExpression: "pk = :room",
      ExpressionAttributeValues: { ":room": room },
    }),
  );
  return (result.Items ?? [])
    .filter((item) => item.sk !== "#room")
    .map((item) => ({ room: item.pk, connectionId: item.connectionId, name: item.name }));
}

/// The rooms a connection is in (the ByConnection index).
export async function roomsOf(connectionId: string): Promise<Member[]> {
  const result = await db.send(
    new QueryCommand({
      TableName: table(),
      IndexName: "ByConnection",
      KeyConditionExpression: "connectionId = :id",
      ExpressionAttributeValues: { ":id": connectionId },
    }),
  );
  return (result.Items ?? []).map((item) => ({ room: item.pk, connectionId, name: item.name }));
}

export async function leave(room: string, connectionId: string): Promise<void> {
  const removed = await db.send(
    new DeleteCommand({ TableName: table(), Key: { pk: room, sk: connectionId }, ReturnValues: "ALL_OLD" }),
  );
  if (removed.Attributes) {
    await db.send(
      new UpdateCommand({
        TableName: table(),
        Key: { pk: room, sk: "#room" },
        UpdateExpression: "ADD members :minus",
        ExpressionAttributeValues: { ":minus": -1 },
      }),
    );
  }
}
