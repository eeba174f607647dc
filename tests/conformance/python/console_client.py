"""A Python `websockets` client for the console test: connects, sends one
message, then prints every message it receives and how it was closed.
Usage: python console_client.py <url>"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def main(url):
    async with connect(url, user_agent_header="python-websockets-console-test") as socket:
        print("connected", flush=True)
        await socket.send(json.dumps({"note": "from python", "n": 42}))
        try:
            async for message in socket:
                print(f"received: {message}", flush=True)
        except ConnectionClosed:
            pass
        print(f"closed: {socket.close_code}", flush=True)


asyncio.run(asyncio.wait_for(main(sys.argv[1]), 120))
