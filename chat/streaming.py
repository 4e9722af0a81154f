"""The server-sent-events wire format, shared by the API's stream and the browser's."""

from __future__ import annotations

import json
from typing import Any


def sse_event(event: str, data: Any) -> str:
    """One SSE frame: an event name and its JSON payload (compact, one line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
