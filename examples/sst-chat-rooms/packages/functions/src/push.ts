// Pushing to connections through the API's @connections endpoint.
import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { Resource } from "sst";

const management = new ApiGatewayManagementApiClient({ endpoint: Resource.ChatApi.managementEndpoint });

/// Sends `message` to every connection; those that are gone are returned.
export async function push(connectionIds: string[], message: unknown): Promise<string[]> {
  const gone: string[] = [];
  await Promise.all(
    connectionIds.map(async (id) => {
      try {
        await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: JSON.stringify(message) }));
      } catch (error) {
        if (error instanceof GoneException) gone.push(id);
        else throw error;
      }
    }),
  );
  return gone;
}
