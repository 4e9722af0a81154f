"""Every hostile text of ``tests/fakes/hostile_cases.py`` on every channel a person or a client
reads: the API's JSON answer, the API's event stream, the browser's event stream, and the stored
conversation read back (API and page). Nothing forbidden may appear in any of them, and the
answer stays a valid list with a reason on every card."""

from __future__ import annotations

import pytest

from chat.models import Message
from chat.plaintext import fold
from tests.fakes.channels import CHANNELS, readable, run
from tests.fakes.hostile_cases import CASES, prepare, script

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_no_throttle_state")]


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
    prepare(case, alice)
    script(hostile, case)
    seen = "\n".join(readable(body) for body in run(channel, alice, client, case.text))
    for forbidden in case.forbidden:
        assert fold(forbidden) not in seen, (case.name, channel, forbidden)
    assert_sound_answer(alice)
    repairs = Message.objects.filter(role="assistant").latest("id").repairs
    if case.reason or case.intro or case.tools:
        assert sum(repairs.values()) > 0, repairs  # the repair was counted
