// $connect's authorizer: ?token=<the chat token>&name=<what others see>.
import type { APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult } from "aws-lambda";

export const handler = async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
  const query = event.queryStringParameters ?? {};
  const allowed = query.token === process.env.CHAT_TOKEN;
  const name = (query.name ?? "anonymous").slice(0, 32);
  return {
    principalId: allowed ? name : "anonymous",
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: allowed ? "Allow" : "Deny", Resource: event.methodArn }],
    },
    context: allowed ? { name } : {},
  };
};
