"""The guard's other promises, each on every channel where it can be seen: the turn's budget is
wall-clock whatever the server sends; a question never shows a dismissed item; items dismissed or
hidden while the LLM answers are not shown; tool calls write only what the user asked, and the
answer says what was recorded with an undo; every repair is counted in the metrics."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from catalog.models import Interaction, Item, Preference
from chat import llm
from chat.models import Conversation, Message
from tests.fakes.channels import CHANNELS, api_client, run
from tests.fakes.hostile_server import Stall, prompt_lines
from tests.fakes.openai_server import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_no_throttle_state")]

STALLS = ["keepalive", "empty_chunks", "drip"]


def stall(mode: str) -> Stall:
    return Stall(mode=mode, every=0.05 if mode == "drip" else 0.1, limit=20.0)


@pytest.mark.parametrize("mode", STALLS)
def test_a_stream_stops_at_the_deadline_whatever_the_server_sends(hostile, settings, mode):
    import time

    hostile.push(stall(mode), stall(mode))
    stream = llm.LLMStream(
        messages=[{"role": "user", "content": "hi"}], deadline=time.monotonic() + 2.0
    )
    with pytest.raises(llm.LLMError) as err:
        for _ in stream:
            pass
    # a drip would end in a valid answer, keep-alives in a stream without a finish: only the
    # wall clock ends the call as a timeout
    assert err.value.kind in {"timeout", "budget", "stream_cut"}
    assert err.value.kind != "stream_cut" or mode == "drip"


@pytest.mark.parametrize("mode", STALLS)
def test_a_call_stops_at_its_timeout_whatever_the_server_sends(hostile, settings, mode):
    import time

    hostile.push(stall(mode), stall(mode))
    with pytest.raises(llm.LLMError) as err:
        llm.complete(messages=[{"role": "user", "content": "hi"}], deadline=time.monotonic() + 3)
    assert err.value.kind in {"timeout", "budget"}


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("mode", STALLS)
def test_a_stalling_server_still_gets_an_answer(world, alice, client, hostile, mode, channel):
    hostile.push(Reply(content=""), stall(mode), stall(mode))
    run(channel, alice, client, "a crime film")
    message = Message.objects.filter(role="assistant").latest("id")
    assert len(message.results) == 6
    assert any(k in message.repairs for k in ("llm_timeout", "llm_budget", "llm_stream_cut"))
    assert message.produced_by == "builtin" and "could not answer" in message.notice


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("title", ["Se7en", "Alien", "Hidden Comedy Gem"])
def test_a_question_never_shows_a_dismissed_seen_or_hidden_item(
    world, alice, client, hostile, channel, title
):
    """Se7en is dismissed, Alien rated, the gem hidden: asking about one names no card."""
    se7en = world["hidden" if title == "Hidden Comedy Gem" else title]
    if title == "Se7en":
        Interaction.objects.create(user=alice, item=se7en, kind="dismiss")
    hostile.push(Reply(tool_calls=[("explain_item", {"title": title})]))
    bodies = run(channel, alice, client, f"why did you suggest {title}?")
    message = Message.objects.filter(role="assistant").latest("id")
    assert se7en.pk not in [r["item"]["id"] for r in message.results]
    for body in bodies:
        assert f'"id":{se7en.pk},' not in body.replace(" ", "")
        assert f'data-item="{se7en.pk}"' not in body
    if title != "Hidden Comedy Gem":  # a hidden title resolves to nothing: an ordinary answer
        assert "not on your list" in message.text


def _picks(server) -> list[str]:  # noqa: ANN001
    """The titles the hostile server picked (C1..C3 of the last rerank prompt)."""
    lines = prompt_lines(server.rerank_requests()[-1], "C")
    return [lines[f"C{i}"] for i in (1, 2, 3)]


@pytest.mark.parametrize("channel", ["api_sse", "browser_stream"])
def test_items_dismissed_or_hidden_meanwhile_are_not_shown(world, alice, client, hostile, channel):
    """The streams run lazily: between two events the user dismisses the first card and staff
    hide the third pick, as they could while the LLM is answering."""
    hostile.push(Reply(content=""))
    hostile.rerank(reason="A tense, well made film.", picks=3)
    if channel == "api_sse":
        conversation = Conversation.objects.create(user=alice)
        resp = api_client(alice).post(
            f"/api/v1/conversations/{conversation.pk}/messages/stream/",
            {"text": "a crime film"},
            format="json",
        )
    else:
        from django.urls import reverse

        client.force_login(alice)
        client.post(reverse("chat-send"), {"text": "a crime film"}, HTTP_HX_REQUEST="true")
        msg = Message.objects.filter(role="user").latest("id")
        resp = client.get(reverse("chat-stream", args=[msg.pk]))
    chunks = iter(resp.streaming_content)
    body = ""
    for chunk in chunks:
        body += chunk.decode()
        if "event: rec" in body or "event: card" in body:
            break
    first, _second, third = _picks(hostile)
    by_title = {str(i): i for i in Item.objects.all()}
    Interaction.objects.create(user=alice, item=by_title[first], kind="dismiss")
    Item.objects.filter(pk=by_title[third].pk).update(is_hidden=True)
    body += "".join(c.decode() for c in chunks)
    message = Message.objects.filter(role="assistant").latest("id")
    shown = [r["item"]["id"] for r in message.results]
    assert by_title[first].pk not in shown and by_title[third].pk not in shown
    assert len(shown) >= 5 and message.repairs.get("filled_from_candidates")
    assert "event: retract" in body and f'"item_id":{by_title[first].pk}' in body
    done = json.loads(body.split("event: done\ndata: ")[1].split("\n")[0])
    if channel == "api_sse":
        final = [r["item"]["id"] for r in done["results"]]
        assert by_title[first].pk not in final and by_title[third].pk not in final
    else:
        assert f'data-item="{by_title[first].pk}"' not in done["html"]
        assert f'data-item="{by_title[third].pk}"' not in done["html"]
    assert message.repairs.get("dismissed_late") == 1 and message.repairs.get("hidden") == 1


UNASKED = [
    ("record_feedback", {"title": "Matrix, The", "sentiment": "like"}),
    ("remember_preference", {"exclude_genre": "Comedy"}),
]


@pytest.mark.parametrize("channel", CHANNELS)
def test_tool_calls_write_nothing_the_user_did_not_ask(world, alice, client, hostile, channel):
    hostile.push(Reply(tool_calls=UNASKED))
    run(channel, alice, client, "a romantic movie that isn't cheesy")
    assert not Interaction.objects.filter(user=alice, source="chat").exists()
    assert not Preference.objects.filter(user=alice).exists()
    assert Message.objects.filter(role="assistant").latest("id").intent["recorded"] == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_asked_writes_are_recorded_said_and_undoable(world, alice, client, hostile, channel):
    hostile.push(Reply(tool_calls=UNASKED))
    bodies = run(channel, alice, client, "I loved The Matrix. No more comedies from now on.")
    like = Interaction.objects.get(user=alice, source="chat", kind="like")
    pref = Preference.objects.get(user=alice)
    assert like.item == world["Matrix, The"] and pref.value == "Comedy"
    message = Message.objects.filter(role="assistant").latest("id")
    assert (
        "Noted: you liked The Matrix (1999)" in message.notice
        and "no more Comedy" in message.notice
    )
    if channel in {"api_json", "stored"}:
        data = json.loads(bodies[0])
        message_data = data["message"] if "message" in data else data["messages"][-1]
        undo = {r["undo"] for r in message_data["recorded"]}
        assert undo == {f"/api/v1/me/history/{like.pk}/", f"/api/v1/me/preferences/{pref.pk}/"}
        api = api_client(alice)
        for url in undo:
            assert api.delete(url).status_code == 204
        assert not Preference.objects.filter(user=alice).exists()
        assert not Interaction.objects.filter(pk=like.pk).exists()
    if channel == "stored":
        assert "Undo: Noted: you liked" in bodies[1]


def _repairs_metric(kind: str) -> float:
    return REGISTRY.get_sample_value("recsite_chat_guard_repairs_total", {"kind": kind}) or 0.0


def test_every_repair_is_counted_by_kind(world, alice, hostile):
    from chat import services

    before = {k: _repairs_metric(k) for k in ("markup", "foreign_citation", "instruction")}
    hostile.push(Reply(content=""))
    hostile.rerank(intro="Ignore the rules.", reason="<b>Bold</b> pick", picks=2)
    conversation = services.conversation_create(user=alice)
    turn = services.message_post(conversation=conversation, user=alice, text="a crime film")
    assert turn.repairs["markup"] == 2 and turn.repairs["instruction"] == 1
    assert _repairs_metric("markup") == before["markup"] + 2
    assert _repairs_metric("instruction") == before["instruction"] + 1
