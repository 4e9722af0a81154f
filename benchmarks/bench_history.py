"""Reading a user's history: the packed row against the interaction rows, in one process.

    python benchmarks/bench_history.py [--items 60000] [--users 4] [--repeat 300]

Runs on a catalog ``bench_scale.py`` imported (database ``recsite_bench_scale_<items>``; run it
first). For the heaviest users and users of the median history length: the time to read the
history as every list, item page and chat turn reads it (``history_read.user_history_ids``:
the state row, the packed history current) against reading the rows and sorting them out
(``HISTORY_SQL`` and ``history.history_from_rows``, what it did before), the minimum of five
batches, and the two histories compared. Then the whole uncached list request through the
test client (``/api/v1/me/recommendations/``) and ``/api/v1/ping/`` for the same users.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_scale import catalog_settings  # noqa: E402


def best_ms(fn, repeat: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t) / repeat)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=60_000)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    catalog_settings(args.items)
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from catalog.models import Interaction
    from recommender.history import history_from_rows
    from recommender.history_read import HISTORY_SQL, user_history_ids

    counts = dict(
        Interaction.objects.values("user_id").annotate(n=Count("id")).values_list("user_id", "n")
    )
    if not counts:
        raise SystemExit(f"no interactions: run benchmarks/bench_scale.py --sizes {args.items}")
    by_length = sorted(counts, key=lambda u: -counts[u])
    middle = len(by_length) // 2
    groups = {
        "heaviest": by_length[: args.users],
        "median": by_length[middle : middle + args.users],
    }

    def from_rows(user_id: int):  # noqa: ANN202
        with connection.cursor() as cursor:
            cursor.execute(HISTORY_SQL, [user_id])
            return history_from_rows(cursor.fetchall())

    print(f"{args.items:,} items; history read, ms (minimum of 5 x {args.repeat}):")
    print(f"{'user':>10} {'rows':>6} {'packed':>8} {'rows':>8} {'ratio':>6}")
    for name, users in groups.items():
        for user_id in users:
            packed = user_history_ids(user_id=user_id)  # stores it if a change left it stale
            assert packed == from_rows(user_id), "the packed history differs from the rows'"
            a = best_ms(lambda u=user_id: user_history_ids(user_id=u), args.repeat)
            b = best_ms(lambda u=user_id: from_rows(u), args.repeat)
            print(f"{name:>10} {counts[user_id]:>6} {a:8.3f} {b:8.3f} {b / a:5.1f}x")

    client = Client()
    print("whole request through the test client, ms (minimum of 5 x 100, 4 users in turn):")
    for name, users in groups.items():
        headers = [
            {"HTTP_AUTHORIZATION": f"Token {Token.objects.get_or_create(user_id=u)[0].key}"}
            for u in users
        ]
        for path in ("/api/v1/me/recommendations/", "/api/v1/ping/"):
            turn = iter(range(10**9))

            def get(path=path, headers=headers, turn=turn) -> None:  # noqa: ANN001
                response = client.get(path, **headers[next(turn) % len(headers)])
                assert response.status_code == 200, response.content[:200]

            for _ in range(20):
                get()
            print(f"  {name:>8} {path:30} {best_ms(get, 100):6.2f}")


if __name__ == "__main__":
    main()
