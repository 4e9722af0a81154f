"""The four places a person or an API client reads a chat answer, as functions of one turn:
the API's JSON answer, the API's event stream, the browser's event stream, and the stored
conversation read back (the API's detail and the conversation page). Used by the guard's tests
and ``benchmarks/bench_guard.py``; ``client`` is a Django test client."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator

from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from chat.models import Conversation, Message
from chat.plaintext import fold

CHANNELS = ["api_json", "api_sse", "browser_stream", "stored"]


def strings(value) -> Iterator[str]:  # noqa: ANN001
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def readable(body: str) -> str:
    """Everything a reader of ``body`` sees (JSON strings decoded, HTML entities resolved),
    folded as the guard folds."""
    try:
        parts = list(strings(json.loads(body)))
    except ValueError:
        parts = []
        for line in body.splitlines():
            if line.startswith("data: "):
                try:
                    parts.extend(strings(json.loads(line[6:])))
                except ValueError:
                    parts.append(line[6:])
        if not parts:
            parts = [body]
    return fold(html.unescape("\n".join(parts)))


def api_client(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def run(channel: str, user, client, text: str) -> list[str]:  # noqa: ANN001
    """One turn through ``channel``; the bodies a person or client reads."""
    api = api_client(user)
    if channel == "browser_stream":
        client.force_login(user)
        client.post(reverse("chat-send"), {"text": text}, HTTP_HX_REQUEST="true")
        message = Message.objects.filter(role="user").latest("id")
        stream = client.get(reverse("chat-stream", args=[message.pk]))
        return [b"".join(stream.streaming_content).decode()]
    conversation = Conversation.objects.create(user=user)
    base = f"/api/v1/conversations/{conversation.pk}/messages/"
    if channel == "api_sse":
        resp = api.post(base + "stream/", {"text": text}, format="json")
        assert resp.status_code == 200
        return [b"".join(resp.streaming_content).decode()]
    resp = api.post(base, {"text": text}, format="json")
    assert resp.status_code == 201, resp.content
    bodies = [resp.content.decode()]
    if channel == "stored":
        detail = api.get(f"/api/v1/conversations/{conversation.pk}/")
        client.force_login(user)
        page = client.get(reverse("chat-conversation", args=[conversation.pk]))
        bodies = [detail.content.decode(), page.content.decode()]
    return bodies
