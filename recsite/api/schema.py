"""OpenAPI helpers: every operation documents the one error shape for its failures, and a
server-sent-event stream documents each event it sends."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "extra": {"type": "object", "additionalProperties": True},
    },
    "required": ["message", "extra"],
}

_DESCRIPTIONS = {
    "400": "Invalid input",
    "401": "Not authenticated",
    "403": "Not allowed",
    "404": "Not found",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "415": "Unsupported media type",
    "429": "Throttled",
}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in _DESCRIPTIONS.items():
                operation["responses"].setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
            if "requestBody" in operation:
                operation["responses"].setdefault(
                    "413",
                    {
                        "description": "Request body too large",
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    return result


def close_request_bodies(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """A request body's object takes only the properties its schema lists (the API answers any
    other key with a 400, ``StrictInput``), so every request component says so."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result


def sse_event_schema(events: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The schema of one event of a ``text/event-stream`` response (OpenAPI before 3.2 reads a
    stream's ``schema`` as one event's): an ``event`` name and its ``data`` line, a JSON text
    whose schema is ``x-data-schema`` of the variant with that name."""
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "event": {"type": "string", "enum": [name]},
                    "data": {"type": "string", "description": f"JSON: the {name} event's data."},
                },
                "required": ["event", "data"],
                "x-data-schema": data,
            }
            for name, data in events.items()
        ]
    }
