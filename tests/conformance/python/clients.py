"""Real Python peers against wsgate: the `websockets` client and boto3's
apigatewaymanagementapi client. Usage: python clients.py <url> <managementEndpoint>"""

import asyncio
import json
import sys

import boto3
from websockets.asyncio.client import connect


async def main(url, endpoint):
    # Credentials and region come from the environment, as on Lambda.
    management = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    async with connect(url, user_agent_header="python-websockets-conformance") as socket:
        await socket.send(json.dumps({"action": "whoami"}))
        connection_id = await asyncio.wait_for(socket.recv(), 10)
        print(f"websockets: connected as {connection_id}")

        await socket.send(json.dumps({"action": "echo", "n": 1}))
        assert await asyncio.wait_for(socket.recv(), 10) == json.dumps({"action": "echo", "n": 1})
        print("websockets: routed message echoed")

        await asyncio.to_thread(
            management.post_to_connection, ConnectionId=connection_id, Data=b"pushed by boto3"
        )
        assert await asyncio.wait_for(socket.recv(), 10) == "pushed by boto3"
        print("boto3: post_to_connection delivered")

        info = await asyncio.to_thread(management.get_connection, ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1", info
        assert info["Identity"]["UserAgent"] == "python-websockets-conformance", info
        assert info["ConnectedAt"].year >= 2024, info
        print("boto3: get_connection typed")

        await asyncio.to_thread(management.delete_connection, ConnectionId=connection_id)
        await asyncio.wait_for(socket.wait_closed(), 10)
        print(f"boto3: delete_connection closed the socket ({socket.close_code})")

    try:
        management.post_to_connection(ConnectionId=connection_id, Data=b"late")
        raise AssertionError("posting to a deleted connection succeeded")
    except management.exceptions.GoneException:
        print("boto3: GoneException typed")
    print("python: all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
