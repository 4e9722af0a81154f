"""The API reads JSON only, and only JSON it can hold: a body nested deeper than
``API_MAX_JSON_DEPTH`` (none of our inputs is deeper than 2) is a 400, as is one so deep that
Python's decoder runs out of stack. Form and multipart bodies are refused (415): no endpoint takes
a file, and a body a form parser cannot make sense of would otherwise read as "no fields".
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings
from rest_framework.utils import json as drf_json

DEFAULT_MAX_DEPTH = 32


def json_depth(value: Any) -> int:
    """Nesting depth of decoded JSON (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        parse_constant = drf_json.strict_constant if api_settings.STRICT_JSON else None
        try:
            data = json.load(codecs.getreader(encoding)(stream), parse_constant=parse_constant)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from exc
        limit = getattr(settings, "API_MAX_JSON_DEPTH", DEFAULT_MAX_DEPTH)
        if json_depth(data) > limit:
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels")
        return data
