// sendmessage: {"action":"sendmessage","text":"..."} goes to everyone, with
// the sender's name; connections that are gone are dropped.
import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { DeleteItemCommand, DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyWebsocketEventV2 } from "aws-lambda";

const ddb = new DynamoDBClient({});
// The stage's callbackUrl, from the stack.
const api = new ApiGatewayManagementApiClient({ endpoint: process.env.CALLBACK_URL });

export const handler = async (event: APIGatewayProxyWebsocketEventV2) => {
  const { text } = JSON.parse(event.body ?? "{}");
  const { Items = [] } = await ddb.send(new ScanCommand({ TableName: process.env.TABLE_NAME }));
  const sender = Items.find((item) => item.connectionId.S === event.requestContext.connectionId);
  const message = JSON.stringify({ from: sender?.name?.S ?? "anonymous", text });
  await Promise.all(
    Items.map(async (item) => {
      const to = item.connectionId.S!;
      try {
        await api.send(new PostToConnectionCommand({ ConnectionId: to, Data: message }));
      } catch (error) {
        if (!(error instanceof GoneException)) throw error;
        await ddb.send(new DeleteItemCommand({ TableName: process.env.TABLE_NAME, Key: { connectionId: { S: to } } }));
      }
    }),
  );
  return { statusCode: 200 };
};
