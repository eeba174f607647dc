"use strict";
// The chat's handlers. The AWS SDK v3 comes with Lambda's Node.js runtime.
const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
const { DynamoDBDocumentClient, PutCommand, DeleteCommand, ScanCommand } = require("@aws-sdk/lib-dynamodb");
const {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
  GoneException,
} = require("@aws-sdk/client-apigatewaymanagementapi");

const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: process.env.REGION }));
const table = process.env.TABLE_NAME;

// The management API of the API the event came through.
const managementApi = (event) =>
  new ApiGatewayManagementApiClient({
    endpoint: `https://${event.requestContext.domainName}/${event.requestContext.stage}`,
  });

// $connect's authorizer: ?token=<CHAT_TOKEN>&name=<what others see>.
module.exports.auth = async (event) => {
  const query = event.queryStringParameters || {};
  const allowed = query.token === process.env.CHAT_TOKEN;
  const name = String(query.name || "anonymous").slice(0, 32);
  return {
    principalId: allowed ? name : "anonymous",
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: allowed ? "Allow" : "Deny", Resource: event.methodArn }],
    },
    context: allowed ? { name } : {},
  };
};

module.exports.connect = async (event) => {
  const { connectionId, authorizer } = event.requestContext;
  await db.send(new PutCommand({ TableName: table, Item: { connectionId, name: authorizer.name } }));
  return { statusCode: 200 };
};

module.exports.disconnect = async (event) => {
  await db.send(new DeleteCommand({ TableName: table, Key: { connectionId: event.requestContext.connectionId } }));
  return { statusCode: 200 };
};

module.exports.fallback = async (event) => {
  await managementApi(event).send(
    new PostToConnectionCommand({
      ConnectionId: event.requestContext.connectionId,
      Data: JSON.stringify({ error: "unknown action", hint: 'send {"action":"sendmessage","text":"..."}' }),
    }),
  );
  return { statusCode: 200 };
};

module.exports.sendMessage = async (event) => {
  const { text } = JSON.parse(event.body);
  const { Items = [] } = await db.send(new ScanCommand({ TableName: table }));
  const sender = Items.find((item) => item.connectionId === event.requestContext.connectionId);
  const message = JSON.stringify({ from: sender ? sender.name : "anonymous", text });
  const api = managementApi(event);
  await Promise.all(
    Items.map(async ({ connectionId }) => {
      try {
        await api.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: message }));
      } catch (error) {
        if (!(error instanceof GoneException)) throw error;
        await db.send(new DeleteCommand({ TableName: table, Key: { connectionId } }));
      }
    }),
  );
  return { statusCode: 200 };
};
