"""Chat over the API (built-in parser and template explainer: no LLM is configured in tests),
the preferences it learns, and the permission matrix for conversations."""

from __future__ import annotations

import json

import pytest

from chat.models import Conversation, Message

from .conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(user) -> Conversation:
    return Conversation.objects.create(user=user, title="alice's chat")


def test_create_list_and_read_conversations(user_client, other_client, other_user):
    Conversation.objects.create(user=other_user, title="bob's")
    r = user_client.post("/api/v1/conversations/", {"title": "movie night"})
    assert r.status_code == 201 and r.json()["title"] == "movie night"
    cid = r.json()["id"]
    assert user_client.post("/api/v1/conversations/", {}).status_code == 201
    listing = user_client.get("/api/v1/conversations/").json()["results"]
    assert len(listing) == 2 and cid in [c["id"] for c in listing]
    detail = user_client.get(f"/api/v1/conversations/{cid}/").json()
    assert detail["messages"] == []
    assert_error(user_client.post("/api/v1/conversations/", {"title": "x" * 201}), 400)


def test_post_a_message_gets_a_grounded_answer(user_client, conversation, catalog):
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    r = user_client.post(url, {"text": "something like Zorblax Alien Hunt"})
    assert r.status_code == 201, r.content
    turn = r.json()
    assert turn["user_message"]["role"] == "user" and turn["message"]["role"] == "assistant"
    assert turn["produced_by"] == "builtin"
    assert turn["message"]["reply_to"] == turn["user_message"]["id"]
    results = turn["message"]["results"]
    assert results, turn
    ids = [r["item"]["id"] for r in results]
    assert catalog["hidden"].pk not in ids and len(ids) == len(set(ids))
    for rec in results:
        assert {"item", "rank", "score", "source", "reason", "evidence"} <= set(rec)
    detail = user_client.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 1001])
def test_post_rejects_bad_text(user_client, conversation, text):
    r = user_client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"text": text})
    assert_error(r, 400)
    assert not Message.objects.exists()


def test_streamed_answer(user_client, conversation, catalog):
    r = user_client.post(
        f"/api/v1/conversations/{conversation.pk}/messages/stream/",
        {"text": "sci-fi like Zorblax Space Odyssey"},
    )
    assert r.status_code == 200 and r["Content-Type"].startswith("text/event-stream")
    raw = b"".join(r.streaming_content).decode()
    events = []
    for block in raw.strip().split("\n\n"):
        head, data = block.split("\n", 1)
        events.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and "rec" in kinds
    assert events[-1][1]["role"] == "assistant"
    assert Message.objects.filter(conversation=conversation, role="assistant").count() == 1


def test_stream_errors_before_streaming_are_json(user_client, other_user):
    foreign = Conversation.objects.create(user=other_user)
    r = user_client.post(f"/api/v1/conversations/{foreign.pk}/messages/stream/", {"text": "hi"})
    assert_error(r, 404)


# who -> expected statuses for (read conversation, post message, stream message)
MATRIX = {
    "anon": (401, 401, 401),
    "owner": (200, 201, 200),
    "other": (404, 404, 404),
    "staff": (404, 404, 404),
}


@pytest.mark.parametrize("who", MATRIX)
def test_conversation_permission_matrix(clients, conversation, catalog, who):
    client = clients[who]
    base = f"/api/v1/conversations/{conversation.pk}/"
    responses = [
        client.get(base),
        client.post(base + "messages/", {"text": "a comedy please"}),
        client.post(base + "messages/stream/", {"text": "a comedy please"}),
    ]
    for response, expected in zip(responses, MATRIX[who], strict=True):
        if expected >= 400:
            body = assert_error(response, expected)
            assert "alice" not in json.dumps(body)
        else:
            assert response.status_code == expected
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
    user_messages = Message.objects.filter(conversation=conversation, role="user").count()
    assert user_messages == (2 if who == "owner" else 0)


@pytest.mark.parametrize("who", ["other", "staff"])
def test_conversation_list_is_mine_only(clients, conversation, who):
    assert clients[who].get("/api/v1/conversations/").json()["results"] == []


def test_chat_needs_authentication(anon_client):
    assert_error(anon_client.get("/api/v1/conversations/"), 401)
    assert_error(anon_client.post("/api/v1/conversations/", {}), 401)


def test_chat_scope_throttles_messages(settings, user_client, conversation, catalog):
    from .test_errors_throttles import rates

    rates(settings, chat="1/min")
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    assert user_client.post(url, {"text": "a comedy"}).status_code == 201
    assert_error(user_client.post(url, {"text": "another comedy"}), 429)
    assert user_client.get(f"/api/v1/conversations/{conversation.pk}/").status_code == 200


def test_chat_learns_preferences_the_api_lists(user_client, conversation, catalog):
    from .conftest import make_item

    make_item("Zorblax Real Scare", 2000, ["Horror"])
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    assert user_client.post(url, {"text": "no more horror please"}).status_code == 201
    prefs = user_client.get("/api/v1/me/preferences/").json()
    said = [(p["kind"], p["value"], p["conversation"]) for p in prefs]
    assert ("exclude_genre", "Horror", conversation.pk) in said  # where it was said
