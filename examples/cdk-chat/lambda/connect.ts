// $connect: remember the connection and the name its authorizer gave it.
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyWebsocketEventV2WithRequestContext } from "aws-lambda";

const ddb = new DynamoDBClient({});

type Context = { connectionId: string; authorizer?: { name?: string } };

export const handler = async (event: APIGatewayProxyWebsocketEventV2WithRequestContext<Context>) => {
  const { connectionId, authorizer } = event.requestContext;
  await ddb.send(
    new PutItemCommand({
      TableName: process.env.TABLE_NAME,
      Item: { connectionId: { S: connectionId }, name: { S: authorizer?.name ?? "anonymous" } },
    }),
  );
  return { statusCode: 200 };
};
