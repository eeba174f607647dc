"""$default: a message with no known action gets a hint back, sent through
the management API with boto3 (which Lambda's Python runtime provides)."""

import json
import os

import boto3


def handler(event, context):
    request = event["requestContext"]
    endpoint = "https://{}.execute-api.{}.amazonaws.com/{}".format(
        request["apiId"], os.environ["AWS_REGION"], request["stage"]
    )
    client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    hint = {"error": "unknown action", "hint": 'send {"action": "sendmessage", "text": "..."}'}
    client.post_to_connection(ConnectionId=request["connectionId"], Data=json.dumps(hint).encode())
    return {"statusCode": 200}
