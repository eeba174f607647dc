"""The chat-rooms example from the outside, as its users and an operator
see it: Python `websockets` clients over wss:// (trusting the app's local
CA), boto3 on the local DynamoDB table and on the @connections API.

Usage: python chat_rooms.py <url> <managementEndpoint> <ca.pem> <dynamodb endpoint> <table>
Credentials for the management API come from the environment."""

import asyncio
import json
import ssl
import sys
import time

import boto3
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def receive(socket, want):
    """The next message that has `want` as one of its keys."""
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 15))
        if want in message:
            return message


async def main(url, endpoint, ca, dynamodb_endpoint, table_name):
    tls = ssl.create_default_context(cafile=ca)
    # The run's key (from the environment): the local DynamoDB admits
    # signed calls only.
    dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1")
    management = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, verify=ca)

    # $connect refuses a client without a name (400), as the handler says.
    try:
        async with connect(url, ssl=tls):
            raise AssertionError("connected without a name")
    except InvalidStatus as refused:
        assert refused.response.status_code == 400, refused.response.status_code
        print("websockets: $connect refused a nameless client with 400")

    async with connect(f"{url}?name=alice", ssl=tls) as alice, connect(f"{url}?name=bob", ssl=tls) as bob:
        # The message of the day (a secret's placeholder) comes as a header.
        assert alice.response.headers["x-motd"] == "Welcome to chat-rooms!", alice.response.headers
        await alice.send(json.dumps({"action": "join", "room": "lobby", "name": "alice"}))
        assert (await receive(alice, "joined"))["members"] == ["alice"]
        await bob.send(json.dumps({"action": "join", "room": "lobby", "name": "bob"}))
        assert (await receive(alice, "joined"))["members"] == ["alice", "bob"]
        assert (await receive(bob, "joined"))["members"] == ["alice", "bob"]
        print("websockets: both joined the lobby over wss://")

        await bob.send(json.dumps({"action": "say", "room": "lobby", "text": "hi all"}))
        said = await receive(alice, "text")
        assert said == {"room": "lobby", "from": "bob", "text": "hi all"}, said
        await receive(bob, "text")
        print("websockets: a message reached the room")

        # The table, from boto3: two members and the room's counter.
        items = dynamodb.query(TableName=table_name, KeyConditionExpression="pk = :r",
                               ExpressionAttributeValues={":r": {"S": "lobby"}})["Items"]
        counter = [i for i in items if i["sk"]["S"] == "#room"][0]
        assert counter["members"]["N"] == "2", counter
        assert sorted(i["name"]["S"] for i in items if "name" in i) == ["alice", "bob"]
        assert all(int(i["expiresAt"]["N"]) > time.time() for i in items if "name" in i)
        a_member = [i for i in items if "name" in i][0]
        by_connection = dynamodb.query(TableName=table_name, IndexName="ByConnection",
                                       KeyConditionExpression="connectionId = :c",
                                       ExpressionAttributeValues={":c": a_member["connectionId"]})
        assert by_connection["Count"] == 1, by_connection
        print("boto3: the table holds both members; the ByConnection index finds one")

        # The admin secret (set with `wsgate secret set`) guards announce.
        await alice.send(json.dumps({"action": "announce", "room": "lobby", "text": "x", "token": "wrong"}))
        assert (await receive(alice, "error"))["error"] == "not allowed"
        await alice.send(json.dumps({"action": "announce", "room": "lobby", "text": "closing", "token": "s3cret"}))
        announced = await receive(bob, "text")
        assert announced == {"room": "lobby", "from": "admin", "text": "closing"}, announced
        print("websockets: announce needs the secret, and carries the route's environment")

        # The room is full past the Linkable's limit ($dev: 5).
        others = [await connect(f"{url}?name=p{i}", ssl=tls) for i in range(4)]
        answers = []
        for i, other in enumerate(others):
            await other.send(json.dumps({"action": "join", "room": "lobby", "name": f"p{i}"}))
            answers.append(await receive(other, "joined" if i < 3 else "error"))
        assert "full (5 members)" in answers[3]["error"], answers[3]
        for other in others:
            await other.close()
        print("websockets: the sixth member is turned away (Resource.Limits)")

        # $default answers with the stage (a Linkable's property).
        await bob.send("not json at all")
        unknown = await receive(bob, "error")
        assert unknown["error"] == "unknown action" and unknown["stage"] == "test", unknown

        # boto3 pushes through the https management endpoint.
        member = [i for i in items if i.get("name", {}).get("S") == "bob"][0]
        await asyncio.to_thread(management.post_to_connection,
                                ConnectionId=member["connectionId"]["S"], Data=b'{"note": "from boto3"}')
        assert (await receive(bob, "note"))["note"] == "from boto3"
        print("boto3: post_to_connection over https:// with the local CA")

    # $disconnect took both out (the counter is back to 0 once it ran).
    deadline = time.time() + 15
    while True:
        items = dynamodb.query(TableName=table_name, KeyConditionExpression="pk = :r",
                               ExpressionAttributeValues={":r": {"S": "lobby"}})["Items"]
        if [i for i in items if "name" in i] == []:
            break
        assert time.time() < deadline, items
        await asyncio.sleep(0.2)
    print("boto3: $disconnect removed every member")

    # TTL: an item that expired is swept.
    dynamodb.put_item(TableName=table_name, Item={
        "pk": {"S": "old"}, "sk": {"S": "x"}, "connectionId": {"S": "gone"},
        "expiresAt": {"N": str(int(time.time()) - 60)}})
    dynamodb.put_item(TableName=table_name, Item={"pk": {"S": "keep"}, "sk": {"S": "x"}})
    deadline = time.time() + 20
    while dynamodb.get_item(TableName=table_name, Key={"pk": {"S": "old"}, "sk": {"S": "x"}}).get("Item"):
        assert time.time() < deadline, "the expired item was not swept"
        await asyncio.sleep(0.5)
    print("boto3: an expired item was swept by its ttl attribute")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
    print("chat-rooms: all passed")
