"""Every hostile text of ``tests/fakes/hostile_cases.py`` on every channel a person or a client
reads: the API's JSON answer, the API's event stream, the browser's event stream, and the stored
conversation read back (API and page). Nothing forbidden may appear in any of them, and the
answer stays a valid list with a reason on every card."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Interaction
from chat.models import Conversation, Message
from chat.plaintext import fold
from tests.fakes.hostile_cases import CASES, Case
from tests.fakes.hostile_server import HostileOpenAI
from tests.fakes.openai_server import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_no_throttle_state")]

CHANNELS = ["api_json", "api_sse", "browser_stream", "stored"]


def script(server: HostileOpenAI, case: Case) -> None:
    server.push(Reply(tool_calls=case.tools) if case.tools else Reply(content=""))
    server.rerank(
        intro=case.intro if case.intro is not None else "Here are some picks.",
        reason=case.reason if case.reason is not None else "A tense, well made film.",
    )


def prepare(case: Case, user, catalog) -> None:  # noqa: ANN001
    if case.setup == "dismiss_se7en":
        Interaction.objects.create(user=user, item=catalog["Se7en"], kind="dismiss")


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


def assert_sound_answer(user) -> None:  # noqa: ANN001
    message = Message.objects.filter(role="assistant", conversation__user=user).latest("id")
    assert len(message.text) <= 300 and message.text.strip()
    assert message.results
    ids = [r["item"]["id"] for r in message.results]
    assert len(ids) == len(set(ids))
    for r in message.results:
        assert r["reason"].strip()
        assert len(r["reason"]) <= 300


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_nothing_hostile_reaches_a_reader(world, alice, client, hostile, case, channel):
    prepare(case, alice, world)
    script(hostile, case)
    seen = "\n".join(readable(body) for body in run(channel, alice, client, case.text))
    for forbidden in case.forbidden:
        assert fold(forbidden) not in seen, (case.name, channel, forbidden)
    assert_sound_answer(alice)
    repairs = Message.objects.filter(role="assistant").latest("id").repairs
    if case.reason or case.intro or case.tools:
        assert sum(repairs.values()) > 0, repairs  # the repair was counted
