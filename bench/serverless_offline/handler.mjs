// The echo handler both gateways run: it posts the message back through
// the management API, as API Gateway apps do.
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";

// serverless-offline: MANAGEMENT_ENDPOINT from serverless.yml; wsgate: the linked API.
const endpoint = process.env.MANAGEMENT_ENDPOINT ?? JSON.parse(process.env.SST_RESOURCE_Bench).managementEndpoint;
const client = new ApiGatewayManagementApiClient({ endpoint, region: "us-east-1" });

export async function connect() {
  return { statusCode: 200 };
}

export async function echo(event) {
  await client.send(new PostToConnectionCommand({ ConnectionId: event.requestContext.connectionId, Data: event.body }));
  return { statusCode: 200 };
}
