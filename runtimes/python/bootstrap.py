"""wsgate's Python bootstrap: loads a handler file and runs it against the
AWS Lambda Runtime API (AWS_LAMBDA_RUNTIME_API), like Lambda's python runtime.
"""

import importlib.util
import json
import os
import sys
import time
import traceback
import urllib.request

# The names the API answers to on AWS (its execute-api host, its custom
# domain) reach wsgate: an address looked up for one of them on 443, 80,
# no port or the local port itself is that local port; TLS keeps the name (SNI and the
# certificate check) and HTTP the Host header.
_SERVED_HOSTS = json.loads(os.environ.get("WSGATE_HOSTS") or "{}")
if _SERVED_HOSTS:
    import socket

    _getaddrinfo = socket.getaddrinfo

    def _served_getaddrinfo(host, port, *args, **kwargs):
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        local = _SERVED_HOSTS.get(name.lower().rstrip(".")) if isinstance(name, str) else None
        if local is not None and port in (None, 0, 80, 443, local, "80", "443", str(local), "http", "https"):
            return _getaddrinfo("127.0.0.1", local, *args, **kwargs)
        return _getaddrinfo(host, port, *args, **kwargs)

    socket.getaddrinfo = _served_getaddrinfo

# The SDK Lambda's runtime provides (boto3), after everything of the app's.
if os.environ.get("WSGATE_PROVIDED_PATH"):
    sys.path.append(os.environ["WSGATE_PROVIDED_PATH"])

FILE = os.environ.get("WSGATE_HANDLER_FILE", "")
EXPORT = os.environ.get("WSGATE_HANDLER_EXPORT", "")
API = f"http://{os.environ.get('AWS_LAMBDA_RUNTIME_API')}/2018-06-01/runtime"


def load():
    folder = os.path.dirname(os.path.abspath(FILE))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(FILE))[0]
    spec = importlib.util.spec_from_file_location(name, FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # What the module defines itself, not attributes every module has.
    is_dunder = EXPORT.startswith("__") and EXPORT.endswith("__")
    handler = None if is_dunder else vars(module).get(EXPORT)
    if not callable(handler):
        error = AttributeError(f'{FILE} does not define a function named "{EXPORT}"')
        # Its one line says it all: no traceback of the bootstrap's own.
        error.wsgate_missing_export = True
        raise error
    return handler


def error_body(error):
    return json.dumps(
        {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
    ).encode()


def post(path, body):
    request = urllib.request.Request(
        API + path, data=body, method="POST", headers={"content-type": "application/json"}
    )
    urllib.request.urlopen(request).close()


class Context:
    def __init__(self, request_id, arn, deadline_ms):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return int(self._deadline_ms - time.time() * 1000)


def main():
    try:
        handler = load()
    except Exception as error:
        if not getattr(error, "wsgate_missing_export", False):
            traceback.print_exc()
        post("/init/error", error_body(error))
        sys.exit(1)
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            context = Context(
                request_id,
                response.headers.get("Lambda-Runtime-Invoked-Function-Arn"),
                int(response.headers.get("Lambda-Runtime-Deadline-Ms", "0")),
            )
            event = json.loads(response.read())
        try:
            result = handler(event, context)
            post(f"/invocation/{request_id}/response", json.dumps(result).encode())
        except Exception as error:
            traceback.print_exc()
            post(f"/invocation/{request_id}/error", error_body(error))


if __name__ == "__main__":
    main()
