import type { APIGatewayProxyWebsocketEventV2 } from "aws-lambda";

export type WebSocketEvent = APIGatewayProxyWebsocketEventV2 & {
  queryStringParameters?: Record<string, string>;
};

export function body(event: WebSocketEvent): Record<string, unknown> {
  try {
    return JSON.parse(event.body ?? "{}");
  } catch {
    return {};
  }
}

export const ok = { statusCode: 200 };
