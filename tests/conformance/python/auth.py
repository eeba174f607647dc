"""boto3 and botocore against wsgate's SigV4: a presigned $connect URL,
management calls with configured keys, and the refusals.
Usage: python auth.py <url> <managementEndpoint>; alice's key in AWS_*, the
read-only key in READER_ACCESS_KEY_ID / READER_SECRET_ACCESS_KEY."""

import asyncio
import json
import os
import sys
import time

import boto3
import botocore.exceptions
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


def presign(url, expires):
    """botocore's own query-string signer, on the URL's http:// form."""
    credentials = boto3.Session().get_credentials()
    request = AWSRequest(method="GET", url=url.replace("ws://", "http://", 1))
    SigV4QueryAuth(credentials, "execute-api", os.environ["AWS_DEFAULT_REGION"], expires=expires).add_auth(request)
    return request.url.replace("http://", "ws://", 1)


async def refusal(url):
    try:
        async with connect(url):
            pass
    except InvalidStatus as error:
        return error.response.status_code
    raise AssertionError(f"{url} was accepted")


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError("the call was accepted")


async def main(url, endpoint):
    assert await refusal(url) == 403
    print("websockets: unsigned upgrade refused (403)")

    async with connect(presign(url, 60)) as socket:
        await socket.send(json.dumps({"action": "whoami"}))
        me = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert me["userArn"].endswith(":user/alice"), me
        print("botocore: presigned $connect accepted as alice")

        alice = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
        await asyncio.to_thread(alice.post_to_connection, ConnectionId=me["id"], Data=b"signed by boto3")
        assert await asyncio.wait_for(socket.recv(), 10) == "signed by boto3"
        print("boto3: PostToConnection delivered")

        reader = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint,
            aws_access_key_id=os.environ["READER_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["READER_SECRET_ACCESS_KEY"],
        )
        reader.get_connection(ConnectionId=me["id"])
        try:
            reader.post_to_connection(ConnectionId=me["id"], Data=b"from the reader")
            raise AssertionError("the read-only key posted")
        except reader.exceptions.ForbiddenException:
            print("boto3: ForbiddenException typed for a key without POST")

        forger = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint,
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key="not-the-secret",
        )
        code = error_code(lambda: forger.post_to_connection(ConnectionId=me["id"], Data=b"forged"))
        assert code == "InvalidSignatureException", code
        print("boto3: InvalidSignatureException for a wrong secret")

        try:
            extra = await asyncio.wait_for(socket.recv(), 0.3)
            raise AssertionError(f"a refused call was delivered: {extra}")
        except asyncio.TimeoutError:
            pass

    expiring = presign(url, 1)
    time.sleep(2.1)
    assert await refusal(expiring) == 403
    print("botocore: expired presigned URL refused (403)")
    print("python auth: all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
