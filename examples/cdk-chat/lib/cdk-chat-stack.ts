import * as path from "node:path";
import * as cdk from "aws-cdk-lib";
import { WebSocketApi, WebSocketStage } from "aws-cdk-lib/aws-apigatewayv2";
import { WebSocketLambdaAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { WebSocketLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import { AttributeType, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Runtime } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";

/** A chat room: connection ids in DynamoDB, a Lambda authorizer on $connect. */
export class CdkChatStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props?: cdk.StackProps) {
    super(scope, id, props);

    const connections = new TableV2(this, "Connections", {
      partitionKey: { name: "connectionId", type: AttributeType.STRING },
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });

    const handler = (name: string, environment: Record<string, string> = {}) =>
      new NodejsFunction(this, name, {
        entry: path.join(__dirname, "..", "lambda", `${name.toLowerCase()}.ts`),
        runtime: Runtime.NODEJS_22_X,
        environment: { TABLE_NAME: connections.tableName, ...environment },
      });

    const authorizer = handler("Authorizer", { CHAT_TOKEN: "let-me-in" });
    const connect = handler("Connect");
    const disconnect = handler("Disconnect");
    connections.grantReadWriteData(connect);
    connections.grantReadWriteData(disconnect);

    const api = new WebSocketApi(this, "ChatApi", {
      apiName: "cdk-chat",
      connectRouteOptions: {
        integration: new WebSocketLambdaIntegration("ConnectIntegration", connect),
        authorizer: new WebSocketLambdaAuthorizer("TokenAuthorizer", authorizer, {
          identitySource: ["route.request.querystring.token"],
        }),
      },
      disconnectRouteOptions: {
        integration: new WebSocketLambdaIntegration("DisconnectIntegration", disconnect),
      },
    });
    const stage = new WebSocketStage(this, "Prod", {
      webSocketApi: api,
      stageName: "prod",
      autoDeploy: true,
    });

    const send = handler("SendMessage", { CALLBACK_URL: stage.callbackUrl });
    connections.grantReadWriteData(send);
    api.grantManageConnections(send);
    api.addRoute("sendmessage", {
      integration: new WebSocketLambdaIntegration("SendIntegration", send),
    });

    new cdk.CfnOutput(this, "WebSocketURL", { value: stage.url });
  }
}
