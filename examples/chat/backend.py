"""Chat handlers for wsgate's HTTP integration, standard library only.

Each request is an API Gateway WebSocket event; each reply is a Lambda proxy
response. Messages are broadcast with the @connections management API, at
the endpoint handlers build from the event, as on AWS.
"""

import datetime
import hashlib
import hmac
import json
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

connections = {}  # connection id -> display name
lock = threading.Lock()


def management_endpoint(event):
    context = event["requestContext"]
    return f"http://{context['domainName']}/{context['stage']}"


# The key wsgate.toml's [[credentials]] accepts; `run` sets the secret.
ACCESS_KEY_ID = os.environ.get("CHAT_BACKEND_KEY_ID", "AKIACHATBACKEND00001")
REGION = os.environ.get("AWS_REGION", "us-east-1")


def sigv4_headers(method, url, body):
    """AWS Signature Version 4 headers for an execute-api call, as the AWS
    SDKs sign (the standard library only, so the example needs no install)."""
    secret = os.environ["CHAT_BACKEND_SECRET"]
    parts = urllib.parse.urlsplit(url)
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{REGION}/execute-api/aws4_request"
    canonical_request = "\n".join([
        method,
        urllib.parse.quote(parts.path, safe="/~"),
        parts.query,
        f"host:{parts.netloc}\nx-amz-date:{amz_date}\n",
        "host;x-amz-date",
        hashlib.sha256(body).hexdigest(),
    ])
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256",
        amz_date,
        scope,
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}",
    }


def post_to_connection(endpoint, connection_id, data):
    """PostToConnection; returns False when the connection is gone (410)."""
    url = f"{endpoint}/@connections/{urllib.parse.quote(connection_id, safe='')}"
    body = data.encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers=sigv4_headers("POST", url, body)
    )
    try:
        urllib.request.urlopen(request, timeout=5).close()
        return True
    except urllib.error.HTTPError as error:
        if error.code == 410:
            return False
        print(f"PostToConnection {connection_id}: HTTP {error.code}", file=sys.stderr)
        return True
    except urllib.error.URLError as error:
        print(f"PostToConnection {connection_id}: {error.reason}", file=sys.stderr)
        return True


def on_connect(event):
    query = event.get("queryStringParameters") or {}
    name = query.get("name", "anonymous")[:32]
    with lock:
        connections[event["requestContext"]["connectionId"]] = name
    return {"statusCode": 200}


def on_disconnect(event):
    with lock:
        connections.pop(event["requestContext"]["connectionId"], None)
    return {"statusCode": 200}


def on_send_message(event):
    sender = event["requestContext"]["connectionId"]
    try:
        text = str(json.loads(event["body"]).get("message", ""))
    except (ValueError, AttributeError):
        return {"statusCode": 400, "body": "bad message"}
    with lock:
        name = connections.get(sender, "anonymous")
        targets = list(connections)
    data = json.dumps({"from": name, "message": text})
    endpoint = management_endpoint(event)
    for target in targets:
        if not post_to_connection(endpoint, target, data):
            with lock:
                connections.pop(target, None)
    return {"statusCode": 200}


def on_default(event):
    return {
        "statusCode": 200,
        "body": 'Send {"action": "sendMessage", "message": "..."} to chat.',
    }


ROUTES = {
    "/connect": on_connect,
    "/disconnect": on_disconnect,
    "/sendMessage": on_send_message,
    "/default": on_default,
}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        route = ROUTES.get(self.path)
        if route is None:
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", 0))
        event = json.loads(self.rfile.read(length))
        reply = json.dumps(route(event)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format, *args):
        pass


def main():
    port = int(os.environ.get("CHAT_BACKEND_PORT", "9000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"chat backend listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
