"""Chat pipeline benchmark on ml-latest-small.

    python benchmarks/bench_chat.py [--users 20]

Prints: the pipeline's own time per turn (everything but the LLM) p50/p95, without an LLM and
with an instant scripted LLM; the time to the first streamed word with the instant LLM; and the
guard's repair counts over a scripted set of faulty answers. Uses the embedded PostgreSQL
(database ``recsite_bench`` unless RECSITE_DB_NAME is set), loading MovieLens and training the
default model if missing.
"""

from __future__ import annotations

import argparse
import json
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
for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
    os.environ.pop(var, None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

TURNS = [
    "something like Alien but funnier",
    "only from the 90s, not horror",
    "more like the second one",
    "why did you suggest the first one?",
    "a crime film I haven't seen",
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ensure_data() -> None:
    call_command("migrate", verbosity=0)
    from catalog.importing.movielens import movielens_import
    from catalog.models import Interaction, Item

    data = Path(
        os.environ.get("RECSITE_MOVIELENS_DIR", ROOT.parent / "shared" / "data" / "ml-latest-small")
    )
    if Item.objects.count() < 9000 or Interaction.objects.filter(source="import").count() < 100000:
        print(f"loading ml-latest-small from {data} ...", flush=True)
        movielens_import(path=data)
    from recommender import services
    from recommender.models import ModelVersion

    if not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
        print("training the default model ...", flush=True)
        version = services.training_start(trigger="benchmark")
        services.model_train(version_id=version.pk)


def run_turns(users, *, label: str) -> tuple[list[float], list[float], Counter]:
    from chat import services
    from chat.models import Conversation

    own, first, repairs = [], [], Counter()
    for user in users:
        conversation = services.conversation_create(user=user, title=f"bench {label}")
        for text in TURNS:
            started = time.perf_counter()
            first_at = None
            for event in services.message_post_stream(
                conversation=conversation, user=user, text=text
            ):
                if first_at is None and event.kind in {"intro", "rec"}:
                    first_at = (time.perf_counter() - started) * 1000
                if event.kind == "done":
                    own.append(event.turn.pipeline_ms)
                    repairs.update(event.turn.repairs)
            first.append(first_at or 0.0)
        Conversation.objects.filter(pk=conversation.pk).delete()
    return own, first, repairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    ensure_data()
    from catalog.models import Interaction

    User = get_user_model()
    ids = list(
        Interaction.objects.filter(source="import")
        .values_list("user_id", flat=True)
        .distinct()
        .order_by("user_id")
    )
    step = max(1, len(ids) // args.users)
    users = list(User.objects.filter(pk__in=ids[::step][: args.users]))
    # warm-up (title index, connections)
    run_turns(users[:1], label="warmup")

    settings.OPENAI_BASE_URL = None
    settings.OPENAI_API_KEY = None
    own, first, _ = run_turns(users, label="builtin")
    n = len(own)
    print(f"turns: {n} ({len(users)} users x {len(TURNS)} turns)")
    print(
        f"pipeline time per turn, no LLM:        p50 {pct(own, 0.5):7.1f} ms   p95 {pct(own, 0.95):7.1f} ms"
    )

    from tests.fakes.openai_server import FakeOpenAI, Reply, default_responder, schema_labels

    def instant(request):
        if request.get("tools"):
            return Reply(content="", usage=(300, 5))
        return default_responder(request)

    with FakeOpenAI(default=instant) as fake:
        settings.OPENAI_BASE_URL = fake.url
        settings.OPENAI_API_KEY = "bench"
        settings.LLM_CACHE_SECONDS = 0
        settings.LLM_TIMEOUT_SECONDS = 2.0
        settings.LLM_RETRY_BACKOFF_SECONDS = 0.01
        own_llm, first_llm, _ = run_turns(users, label="llm")
        print(
            f"pipeline time per turn, instant LLM:   p50 {pct(own_llm, 0.5):7.1f} ms   p95 {pct(own_llm, 0.95):7.1f} ms"
        )
        print(
            f"first streamed word, instant LLM:      p50 {pct(first_llm, 0.5):7.1f} ms   p95 {pct(first_llm, 0.95):7.1f} ms"
        )

        def bad(doc):
            return lambda r: Reply(content=json.dumps(doc(schema_labels(r))))

        faults = {
            "timeout": Reply(content="{}", delay=2.5),
            "429": Reply(status=429),
            "500": Reply(status=500),
            "malformed JSON": Reply(content='{"intro": "x", "picks": [{"label": "C1", "reason": "ok"}, {"lab'),
            "empty answer": Reply(content=""),
            "outside candidates": bad(lambda ls: {"intro": "x", "picks": [{"label": "C999", "reason": "r"}, {"label": "Toy Story", "reason": "r"}]}),
            "duplicates": bad(lambda ls: {"intro": "x", "picks": [{"label": ls[0], "reason": "r"}] * 3}),
            "seen items": bad(lambda ls: {"intro": "x", "picks": [{"label": "H1", "reason": "r"}, {"label": "H2", "reason": "r"}]}),
            "foreign citation": bad(lambda ls: {"intro": "x", "picks": [{"label": ls[1], "reason": "Because you loved Toy Story and Fargo."}]}),
            "stream cut": lambda r: Reply(content=json.dumps({"intro": "Here are picks that fit.", "picks": [{"label": lb, "reason": "Fits."} for lb in schema_labels(r)[:6]]}), cut_after=120),
        }  # fmt: skip
        from chat import services

        print("repairs over scripted faulty answers (one turn each):")
        total = Counter()
        user = users[0]
        for name, reply in faults.items():
            fake.push(
                Reply(content=""), reply, reply
            )  # understanding, then the faulty rerank (x2 for a retry)
            conversation = services.conversation_create(user=user)
            turn = services.message_post(
                conversation=conversation, user=user, text="a crime film from the 90s"
            )
            fake.queue.clear()
            shown = {k: v for k, v in turn.repairs.items() if k != "understand_no_tools"}
            total.update(shown)
            print(
                f"  {name:20s} {len(turn.recommendations)} items, by {turn.produced_by:7s} repairs {dict(shown)}"
            )
            conversation.delete()
        print(f"  total repairs: {dict(total)}")


if __name__ == "__main__":
    main()
