"""The chat protocol (chat/evaluation) on a small seeded sample of ml-latest-small: simulated
users talk to the real pipeline; hard constraints and "why" answers must hold for every turn."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Interaction
from chat.evaluation.protocol import chat_quality_format, chat_quality_run
from chat.evaluation.scripts import TURN_TYPES
from chat.models import Conversation
from recommender.models import ModelVersion
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.django_db

USERS = 8


def _rows(report: dict) -> dict[str, dict]:
    return {row["turn"]: row for row in report["rows"]}


def test_builtin_path_holds_every_hard_constraint_and_answers_why_as_the_card(trained_model):
    interactions = Interaction.objects.count()
    report = chat_quality_run(users=USERS, seed=3)
    rows = _rows(report)
    print(chat_quality_format(report))

    assert report["users"] == USERS
    assert list(rows) == list(TURN_TYPES)
    assert all(row["turns"] > 0 and row["empty"] == 0 for row in rows.values()), rows
    for kind in ("like_but", "negation", "decade_genre", "followup"):
        assert rows[kind]["hard_pct"] == 100.0, rows[kind]
        assert rows[kind]["hits_cf"] is not None
    assert rows["why"]["why_consistent_pct"] == 100.0
    assert rows["why"]["resolved_pct"] == 100.0
    assert rows["followup"]["resolved_pct"] == 100.0
    assert rows["like_but"]["soft_pct"] is not None
    # everything was rolled back: no simulated user, conversation or model version stays
    assert not get_user_model().objects.filter(username__startswith="sim_").exists()
    assert not Conversation.objects.exists()
    assert Interaction.objects.count() == interactions
    assert ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE) == trained_model


def test_llm_path_keeps_the_constraints_behind_the_guard(trained_model, settings):
    settings.LLM_CACHE_SECONDS = 0
    settings.LLM_TIMEOUT_SECONDS = 2.0
    with FakeOpenAI() as fake:
        report = chat_quality_run(users=4, seed=3, llm_base_url=fake.url, retrain=False)
        assert fake.rerank_requests()
    rows = _rows(report)
    assert report["retrained"] is False
    assert all(rows[kind]["llm_turns"] == rows[kind]["turns"] > 0 for kind in TURN_TYPES)
    for kind in ("like_but", "negation", "decade_genre", "followup"):
        assert rows[kind]["hard_pct"] == 100.0, rows[kind]
    assert rows["why"]["resolved_pct"] == 100.0


def test_evaluate_command_prints_the_table(trained_model, capsys):
    call_command("evaluate", protocol="chat", users=2, seed=1, no_retrain=True)
    out = capsys.readouterr().out
    assert "chat protocol: 2 simulated users, seed 1" in out
    for kind in TURN_TYPES:
        assert f"| {kind} |" in out
