"""Shared by the chat's Python functions, as a Lambda layer (on Lambda it
is extracted to /opt/python)."""

import json


def hint():
    return json.dumps({"error": "unknown action", "hint": 'send {"action": "sendmessage", "text": "..."}'})
