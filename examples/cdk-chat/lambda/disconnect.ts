// $disconnect: forget the connection.
import { DeleteItemCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyWebsocketEventV2 } from "aws-lambda";

const ddb = new DynamoDBClient({});

export const handler = async (event: APIGatewayProxyWebsocketEventV2) => {
  await ddb.send(
    new DeleteItemCommand({
      TableName: process.env.TABLE_NAME,
      Key: { connectionId: { S: event.requestContext.connectionId } },
    }),
  );
  return { statusCode: 200 };
};
