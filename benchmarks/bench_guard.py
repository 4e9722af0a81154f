"""The chat guard against a hostile OpenAI-compatible server, on ml-latest-small.

    python benchmarks/bench_guard.py [--stall-turns 5] [--budget 10] [--timeout 3]

Prints, per category of hostile turn, how many turns were tried (each case of
``tests/fakes/hostile_cases.py`` on each channel: API JSON, API SSE, browser stream, stored
conversation read back) and how many let something forbidden reach the reader; then the wall
time of whole turns (``message_post``) while the server stalls (SSE keep-alive comments, chunks
with empty choices, a body one byte a second) with the turn budget and timeout given, p50 and
max. Uses the embedded PostgreSQL (database ``recsite_bench`` unless RECSITE_DB_NAME is set),
loading MovieLens and training the default model if missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("RECSITE_DB_NAME", "recsite_bench")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.test import Client  # noqa: E402

from benchmarks._data import ensure_data  # noqa: E402
from catalog.models import (  # noqa: E402
    Interaction,
    Item,
    Preference,  # noqa: E402
)
from chat import services  # noqa: E402
from chat.models import Message  # noqa: E402
from chat.plaintext import fold  # noqa: E402
from recommender.reasons import reason_for  # noqa: E402
from tests.fakes.channels import CHANNELS, readable, run  # noqa: E402
from tests.fakes.hostile_cases import CASES, prepare, script  # noqa: E402
from tests.fakes.hostile_server import HostileOpenAI, Stall, prompt_lines  # noqa: E402
from tests.fakes.openai_server import Reply  # noqa: E402

HISTORY = ["Alien", "Heat", "Reservoir Dogs"]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def fresh_user(name: str):  # noqa: ANN201
    User = get_user_model()
    User.objects.filter(username=name).delete()
    user = User.objects.create_user(name, password="bench-guard-pw")
    for title in HISTORY:
        item = Item.objects.filter(title=title).order_by("id").first()
        if item is not None:
            Interaction.objects.create(user=user, item=item, kind="rating", value=4.5)
    return user


def configure(server: HostileOpenAI, *, budget: float, timeout: float) -> None:
    settings.OPENAI_BASE_URL = server.url
    settings.OPENAI_API_KEY = "bench-key"
    settings.LLM_MODEL = "hostile"
    settings.LLM_TIMEOUT_SECONDS = timeout
    settings.LLM_RETRY_BACKOFF_SECONDS = 0.05
    settings.LLM_CACHE_SECONDS = 0
    settings.LLM_TURN_BUDGET_SECONDS = budget
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["chat"] = "100000/min"


def hostile_texts(server: HostileOpenAI) -> tuple[Counter, Counter, list[str]]:
    tried, reached, leaks = Counter(), Counter(), []
    Item.objects.get_or_create(
        external_id="bench-hidden",
        defaults={
            "title": "Hidden Comedy Gem",
            "year": 1996,
            "genres": ["Comedy"],
            "is_hidden": True,
        },
    )
    for case in CASES:
        for channel in CHANNELS:
            cache.clear()
            user = fresh_user("bench_guard_alice")
            prepare(case, user)
            script(server, case)
            seen = "\n".join(readable(b) for b in run(channel, user, Client(), case.text))
            tried[case.category] += 1
            leaked = [f for f in case.forbidden if fold(f) in seen]
            if leaked:
                reached[case.category] += 1
                leaks.append(f"{case.name}/{channel}: {leaked}")
    return tried, reached, leaks


def other_paths(server: HostileOpenAI) -> tuple[Counter, Counter, list[str]]:
    """Unasked writes and questions about a dismissed item, on every channel."""
    tried, reached, leaks = Counter(), Counter(), []
    unasked = [
        ("record_feedback", {"title": "Matrix, The", "sentiment": "like"}),
        ("remember_preference", {"exclude_genre": "Comedy"}),
    ]
    se7en = Item.objects.filter(title="Seven (a.k.a. Se7en)").first()
    for channel in CHANNELS:
        cache.clear()
        user = fresh_user("bench_guard_alice")
        server.push(Reply(tool_calls=unasked))
        run(channel, user, Client(), "a romantic movie that isn't cheesy")
        tried["unasked_write"] += 1
        wrote = (
            Interaction.objects.filter(user=user, source="chat").exists()
            or Preference.objects.filter(user=user).exists()
        )
        if wrote:
            reached["unasked_write"] += 1
            leaks.append(f"unasked_write/{channel}")
        user = fresh_user("bench_guard_alice")
        Interaction.objects.create(user=user, item=se7en, kind="dismiss")
        server.push(Reply(tool_calls=[("explain_item", {"title": "Se7en"})]))
        run(channel, user, Client(), "why did you suggest Se7en?")
        tried["explain_dismissed"] += 1
        message = Message.objects.filter(role="assistant", conversation__user=user).latest("id")
        if se7en.pk in [r["item"]["id"] for r in message.results]:
            reached["explain_dismissed"] += 1
            leaks.append(f"explain_dismissed/{channel}")
    return tried, reached, leaks


BENIGN = [
    "A tense, well made thriller with a great cast.",
    "Dark, funny and sharp: a good fit for tonight.",
    "A classic of its genre, with memorable performances.",
    "Because you liked {ev}, this one should land well.",
    "If you enjoyed {ev}, expect the same kind of tension here.",
]


def benign(server: HostileOpenAI) -> tuple[int, int]:
    """Plain, true reasons (some citing the card's own evidence): how many the guard keeps."""
    kept = total = 0
    requests = ["a crime film", "something like Alien", "a 90s comedy", "a sci-fi adventure"]
    for text in requests:
        for template in BENIGN:
            cache.clear()
            user = fresh_user("bench_guard_alice")

            def reason(request, label, template=template):  # noqa: ANN001, ANN202
                line = prompt_lines(request, "C").get(label, "")
                full = next(
                    (
                        ln
                        for m in request["messages"]
                        for ln in str(m.get("content")).splitlines()
                        if ln.startswith(label + ":")
                    ),
                    line,
                )
                ev = full.split("liked H", 1)[-1].split("“", 1)[-1].split(" (", 1)[0]
                return template.format(ev=ev if "“" in full else "this")

            server.push(Reply(content=""))
            server.rerank(reason=reason, picks=3)
            turn = services.message_post(
                conversation=services.conversation_create(user=user), user=user, text=text
            )
            for rec in turn.recommendations[:3]:
                total += 1
                kept += rec.reason != reason_for(rec)
    return kept, total


def stalls(server: HostileOpenAI, turns: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    user = fresh_user("bench_guard_alice")
    for mode in ("keepalive", "empty_chunks", "drip"):
        every = 1.0 if mode == "drip" else 0.2
        for _ in range(turns):
            cache.clear()
            server.queue.clear()
            stall = Stall(mode=mode, every=every, limit=120.0)
            server.push(stall, stall, stall, stall)  # understand (and its retry), rerank (and its)
            conversation = services.conversation_create(user=user)
            started = time.perf_counter()
            turn = services.message_post(conversation=conversation, user=user, text="a crime film")
            times.setdefault(mode, []).append(time.perf_counter() - started)
            assert turn.recommendations, "a stalled turn must still answer"
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stall-turns", type=int, default=5)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    ensure_data()
    with HostileOpenAI() as server:
        configure(server, budget=args.budget, timeout=args.timeout)
        tried, reached, leaks = hostile_texts(server)
        more_tried, more_reached, more_leaks = other_paths(server)
        tried.update(more_tried)
        reached.update(more_reached)
        print(f"{'category':20} {'turns':>6} {'reached the reader':>19}")
        for category in sorted(tried):
            print(f"{category:20} {tried[category]:6d} {reached[category]:19d}")
        print(f"{'total':20} {sum(tried.values()):6d} {sum(reached.values()):19d}")
        for leak in leaks + more_leaks:
            print("  leaked:", leak)
        kept, total = benign(server)
        print(f"benign reasons kept: {kept} of {total} (the rest replaced by the template)")
        times = stalls(server, args.stall_turns)
    print(
        f"\nwhole turn under a stalling server (budget {args.budget:g} s, timeout {args.timeout:g} s,"
        f" {args.stall_turns} turns each)"
    )
    for mode, values in times.items():
        print(f"{mode:14} p50 {pct(values, 0.5):5.2f} s   max {max(values):5.2f} s")


if __name__ == "__main__":
    main()
