// $connect: remember the connection and the name its authorizer gave it.
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";

const ddb = new DynamoDBClient({});

export const handler = async (event) => {
  const { connectionId, authorizer } = event.requestContext;
  await ddb.send(
    new PutItemCommand({
      TableName: process.env.TABLE_NAME,
      Item: { connectionId: { S: connectionId }, name: { S: authorizer?.name ?? "anonymous" } },
    }),
  );
  return { statusCode: 200 };
};
