"""$connect's authorizer: a client joins with ?token=<the chat token>
&name=<what others see>. Allowed callers get their name in the context."""

import os


def handler(event, context):
    query = event.get("queryStringParameters") or {}
    if query.get("token") != os.environ["CHAT_TOKEN"]:
        return policy("anonymous", "Deny", event["methodArn"], {})
    name = (query.get("name") or "anonymous")[:32]
    return policy(name, "Allow", event["methodArn"], {"name": name})


def policy(principal, effect, resource, context):
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }
