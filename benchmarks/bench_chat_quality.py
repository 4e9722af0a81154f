"""Chat quality on ml-latest-small: the chat protocol (chat/evaluation) with and without an LLM.

    python benchmarks/bench_chat_quality.py [--users 100] [--seed 0] [--llm-base-url URL] [--json]

Prints the protocol's table per turn type (hard- and soft-constraint shares, hits of held-out
favourites beside the CF-only list, "why" consistency, reference resolution, latency) for the
built-in path and for an LLM: the given endpoint, or else a scripted local server speaking the
OpenAI protocol that keeps the candidate order (it measures the LLM path's plumbing and guard,
not a language model's judgement). Uses the embedded PostgreSQL (database ``recsite_bench``
unless RECSITE_DB_NAME is set), loading MovieLens and training the default model if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
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

from benchmarks._data import ensure_data  # noqa: E402
from chat.evaluation.protocol import chat_quality_format, chat_quality_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm-base-url", help="a real endpoint instead of the scripted server")
    parser.add_argument("--no-llm", action="store_true", help="the built-in path only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ensure_data()
    reports = []
    started = time.perf_counter()
    reports.append(chat_quality_run(users=args.users, seed=args.seed))
    print(f"built-in: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if not args.no_llm:
        started = time.perf_counter()
        if args.llm_base_url:
            reports.append(
                chat_quality_run(
                    users=args.users,
                    seed=args.seed,
                    llm_base_url=args.llm_base_url,
                    llm_api_key=os.environ.get("LLM_API_KEY"),
                )
            )
        else:
            from tests.fakes.openai_server import FakeOpenAI

            settings.LLM_CACHE_SECONDS = 0
            with FakeOpenAI() as fake:
                report = chat_quality_run(users=args.users, seed=args.seed, llm_base_url=fake.url)
            report["llm"] = "scripted local server (keeps the candidate order)"
            reports.append(report)
        print(f"LLM: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "turns"} for r in reports]))
    else:
        print("\n\n".join(chat_quality_format(r) for r in reports))


if __name__ == "__main__":
    main()
