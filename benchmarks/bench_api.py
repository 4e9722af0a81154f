"""REST API benchmark: five endpoints against the framework's floor (/api/v1/ping/).

    python benchmarks/bench_api.py [--seconds 6] [--clients 4,16] [--workers 2] [--threads 4]

The rows: an item (items/<id>/), its similar items (items/<id>/similar/), hybrid search
(items/?q=alien&semantic=true: full text + meaning; the same query again, as when many users
search for the same title, whose ranking each server process keeps), the same search with a new
query on every request (a word of the catalog's titles never asked before in the run, while the
words last: the ranking computed each time), a user's recommendations from the list cache, and
the same with the cache off. Each client asks for its own item (32 popular ones).

Starts gunicorn on 127.0.0.1 (a free port) against the embedded PostgreSQL (database
``recsite_bench_api`` unless RECSITE_DB_NAME is set; ml-latest-small is loaded and the default
model trained if missing), gives 32 MovieLens users an API token, and drives both endpoints with
a small closed-loop load generator (threads, one keep-alive http.client connection each) at each
concurrency level, for ``--seconds`` each, the two endpoints interleaved in short slices
so that changes in the machine's load fall on both alike. Prints p50 / p99 latency and
requests per second, and the ratio of the recommendations endpoint to the floor.

Two server runs: the default configuration (a user's list cached until their history, the
catalog or the model changes) and with that cache off (every request scores and explains).
Throttling is lifted for the run (API_THROTTLE_*); everything stays on loopback.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("RECSITE_DB_NAME", "recsite_bench_api")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DJANGO_DEBUG"] = "false"

import django  # noqa: E402

django.setup()

from benchmarks._data import ensure_data  # noqa: E402
from benchmarks._http import (  # noqa: E402
    HOST,
    drive,
    drive_interleaved,
    free_port,
    start_server,
    stop_server,
)

N_USERS = 32
ITEMS: list[int] = []  # filled in by main(): the 32 most popular items
# filled in by main(): distinct title words, one per request of the "new query" row (its
# ranking was never computed before, so it measures the search itself, not its kept ranking)
WORDS: list[str] = []
_word_at = itertools.count()


def popular_items() -> list[int]:
    from django.db.models import Count

    from catalog.models import Item

    return list(
        Item.objects.annotate(n=Count("interactions"))
        .order_by("-n", "id")
        .values_list("id", flat=True)[:N_USERS]
    )


def tokens() -> list[str]:
    """API tokens of N_USERS MovieLens users (real histories of varied length)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    users = list(
        get_user_model().objects.filter(username__startswith="ml_").order_by("id")[:N_USERS]
    )
    assert len(users) == N_USERS, "MovieLens users missing"
    return [Token.objects.get_or_create(user=u)[0].key for u in users]


def title_words() -> list[str]:
    """Distinct words of the catalog's titles (4+ letters), shuffled with a fixed seed."""
    import random
    import re

    from catalog.models import Item

    words = {
        w
        for title in Item.objects.values_list("title", flat=True)
        for w in re.findall(r"[a-z]{4,}", title.lower())
    }
    ordered = sorted(words)
    random.Random(0).shuffle(ordered)
    return ordered


def fill(path: str, client: int) -> str:
    """Each client's own item (``{item}``); a new title word on every request (``{word}``)."""
    if "{item}" in path:
        path = path.replace("{item}", str(ITEMS[client % len(ITEMS)]))
    if "{word}" in path:
        path = path.replace("{word}", WORDS[next(_word_at) % len(WORDS)])
    return path


def check_payload(port: int, key: str) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", "/api/v1/me/recommendations/", headers={"Authorization": f"Token {key}"})
    body = json.loads(conn.getresponse().read())
    assert body["count"] == 20 and all(r["evidence"] for r in body["results"]), body
    return body["count"]


ROWS = [
    ("item   items/<id>/", "/api/v1/items/{item}/"),
    ("similar items/<id>/similar/", "/api/v1/items/{item}/similar/"),
    ("search items/?q=alien (hybrid)", "/api/v1/items/?q=alien&semantic=true"),
    ("search, a new query each request", "/api/v1/items/?q={word}&semantic=true"),
    ("recs   me/recommendations/", "/api/v1/me/recommendations/"),
]
FLOOR = ("floor  ping/", "/api/v1/ping/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="measured seconds per endpoint and level"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved slices per level")
    parser.add_argument("--clients", default="4,16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    ensure_data()
    keys = tokens()
    ITEMS.extend(popular_items())
    WORDS.extend(title_words())
    from django.db import connections

    connections.close_all()
    runs = [
        ("cached", 300, [FLOOR, *ROWS]),
        ("uncached", 0, [FLOOR, ("recs   me/recommendations/ uncached", ROWS[-1][1])]),
    ]
    print(
        f"gunicorn gthread, {args.workers} workers x {args.threads} threads, 127.0.0.1; "
        f"{os.cpu_count()} CPUs shared by server, PostgreSQL and load generator; "
        f"{args.seconds:g} s per endpoint and level in {args.rounds} interleaved slices; "
        f"{N_USERS} users, {len(ITEMS)} items"
    )
    ratios: dict[tuple[str, int], tuple[float, float]] = {}
    for title, cache_seconds, endpoints in runs:
        port = free_port()
        proc = start_server(port, args.workers, args.threads, cache_seconds)
        try:
            check_payload(port, keys[0])
            print(f"\n== list cache {title}")
            print(
                f"{'endpoint':38} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6}"
            )
            for clients in levels:
                for _name, path in endpoints[1:]:  # warm each worker's caches and connections
                    drive(port, path, keys, max(clients, 8), 0.7, fill)
                results = drive_interleaved(
                    port, [p for _, p in endpoints], keys, clients, args.seconds, args.rounds, fill
                )
                floor = results[FLOOR[1]]
                for name, path in endpoints:
                    result = results[path]
                    print(
                        f"{name:38} {clients:7d} {result.pct(0.5):8.2f} {result.pct(0.99):8.2f}"
                        f" {result.rps:8.0f} {result.errors:6d}",
                        flush=True,
                    )
                    if path != FLOOR[1]:
                        ratios[(name, clients)] = (
                            result.pct(0.5) / floor.pct(0.5),
                            result.pct(0.99) / floor.pct(0.99),
                        )
        finally:
            stop_server(proc)
    print("\nratio to ping/ in the same run, p50 (p99):")
    print(f"{'endpoint':38} " + " ".join(f"{f'{c} clients':>16}" for c in levels))
    for name in dict.fromkeys(n for n, _c in ratios):
        cells = " ".join(
            f"{f'x{ratios[(name, c)][0]:.1f} (x{ratios[(name, c)][1]:.1f})':>16}" for c in levels
        )
        print(f"{name:38} {cells}")


if __name__ == "__main__":
    main()
