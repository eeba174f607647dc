// sendmessage: {"action":"sendmessage","text":"..."} goes to everyone in
// the room, with the sender's name. Connections that are gone are dropped.
import { DynamoDBClient, DeleteItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
// From the shared layer.
import { message as chatMessage } from "chat-format";

const ddb = new DynamoDBClient({});
const api = new ApiGatewayManagementApiClient({ endpoint: process.env.CALLBACK_URL });

export const handler = async (event) => {
  const { connectionId } = event.requestContext;
  const { text } = JSON.parse(event.body);
  const { Items = [] } = await ddb.send(new ScanCommand({ TableName: process.env.TABLE_NAME }));
  const sender = Items.find((item) => item.connectionId.S === connectionId);
  const message = chatMessage(sender?.name?.S ?? "anonymous", text);
  await Promise.all(
    Items.map(async ({ connectionId: { S: to } }) => {
      try {
        await api.send(new PostToConnectionCommand({ ConnectionId: to, Data: message }));
      } catch (error) {
        if (!(error instanceof GoneException)) throw error;
        await ddb.send(
          new DeleteItemCommand({ TableName: process.env.TABLE_NAME, Key: { connectionId: { S: to } } }),
        );
      }
    }),
  );
  return { statusCode: 200 };
};
