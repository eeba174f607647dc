"""$default: a message with no known action gets a hint back, sent through
the management API with boto3 (which Lambda's Python runtime provides); the
hint comes from the shared layer."""

import os

import boto3
from chat_format import hint


def handler(event, context):
    request = event["requestContext"]
    endpoint = "https://{}.execute-api.{}.amazonaws.com/{}".format(
        request["apiId"], os.environ["AWS_REGION"], request["stage"]
    )
    client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    client.post_to_connection(ConnectionId=request["connectionId"], Data=hint().encode())
    return {"statusCode": 200}
