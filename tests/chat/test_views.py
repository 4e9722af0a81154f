"""The chat pages over HTTP: send, stream (server-sent events), feedback in place, no-JS path."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from catalog.models import Interaction
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


def sse_events(response) -> list[tuple[str, dict]]:
    body = b"".join(response.streaming_content).decode()
    out = []
    for block in body.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if line.startswith(("event", "data"))
        )
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_a_message_with_nul_is_refused_in_place_and_nothing_is_stored(client, alice, no_llm):
    client.force_login(alice)
    resp = client.post(reverse("chat-send"), {"text": "hi\x00there"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 400
    assert resp["HX-Retarget"] == "#flash"
    assert "cannot contain NUL" in resp.content.decode()
    assert not Message.objects.exists()
    # without JavaScript: back to the chat with the message shown
    resp = client.post(reverse("chat-send"), {"text": "\x00"}, follow=True)
    assert "cannot contain NUL" in resp.content.decode()
    assert not Message.objects.exists()


def test_send_then_stream_then_rate(client, alice, catalog, no_llm):
    client.force_login(alice)
    assert client.get(reverse("chat")).status_code == 200
    resp = client.post(
        reverse("chat-send"), {"text": "a crime film from the 90s"}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 200
    message = Message.objects.get(role="user")
    assert reverse("chat-stream", args=[message.pk]) in resp.content.decode()
    stream = client.get(reverse("chat-stream", args=[message.pk]))
    assert stream["Content-Type"] == "text/event-stream"
    events = sse_events(stream)
    kinds = [k for k, _ in events]
    assert kinds[0] == "intro" and kinds[-1] == "done" and kinds.count("card") == 6
    assert "Heat" not in events[-1][1]["html"]  # seen
    # a second request for the same message gets the saved answer, not a second run
    again = sse_events(client.get(reverse("chat-stream", args=[message.pk])))
    assert [k for k, _ in again] == ["done"]
    assert Message.objects.filter(role="assistant").count() == 1
    # rate a card in place
    item = catalog["Pulp Fiction"]
    resp = client.post(
        reverse("chat-feedback", args=[item.pk]),
        {"kind": "rating", "value": "4.5"},
        HTTP_HX_REQUEST="true",
    )
    assert resp.status_code == 200 and '<option value="4.5" selected>' in resp.content.decode()
    row = Interaction.objects.get(user=alice, item=item, kind="rating")
    assert row.value == 4.5 and row.source == "chat"
    # the conversation page shows the saved turn
    page = client.get(reverse("chat-conversation", args=[message.conversation_id])).content.decode()
    assert "a crime film from the 90s" in page and "chat-card" in page


def test_no_js_post_answers_and_redirects(client, alice, catalog, no_llm):
    client.force_login(alice)
    resp = client.post(reverse("chat-send"), {"text": "something like Alien"})
    conversation = Conversation.objects.get(user=alice)
    assert resp.status_code == 302 and resp.url == reverse(
        "chat-conversation", args=[conversation.pk]
    )
    assert conversation.messages.filter(role="assistant").count() == 1


def test_other_users_conversations_are_not_found(client, alice, bob, catalog, no_llm):
    client.force_login(alice)
    client.post(reverse("chat-send"), {"text": "a comedy"})
    conversation = Conversation.objects.get(user=alice)
    client.force_login(bob)
    assert client.get(reverse("chat-conversation", args=[conversation.pk])).status_code == 404
    user_msg = conversation.messages.get(role="user")
    assert client.get(reverse("chat-stream", args=[user_msg.pk])).status_code == 404
    resp = client.post(
        reverse("chat-send"),
        {"text": "hi", "conversation": conversation.pk},
        HTTP_HX_REQUEST="true",
    )
    assert resp.status_code == 404
    assert client.get(reverse("chat")).status_code == 200


def test_llm_fault_is_never_an_error_page(client, alice, catalog, fake_llm):
    fake_llm.status(500, times=4)
    client.force_login(alice)
    client.post(reverse("chat-send"), {"text": "a crime film"}, HTTP_HX_REQUEST="true")
    message = Message.objects.get(role="user")
    events = sse_events(client.get(reverse("chat-stream", args=[message.pk])))
    assert events[-1][0] == "done" and events[-1][1]["html"].count("data-item=") == 6
    assert any(k == "notice" for k, _ in events)
