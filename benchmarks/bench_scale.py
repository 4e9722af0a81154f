"""Large catalogs: generate, import, train, index and serve catalogs of several sizes.

    python benchmarks/bench_scale.py [--sizes 10000,60000,200000] [--interactions 1000000]
                                     [--users 20000] [--seed 0] [--requests 40]

For each size, in a database of its own (``recsite_bench_scale_<items>``, kept for re-runs: a
catalog already imported is not imported again), a seeded synthetic catalog: Zipf item
popularity (exponent 0.9), lognormal user activity, likes with timestamps. Prints the import
time and peak memory, the training run's stages (ALS above RECOMMENDER_DENSE_MAX_ITEMS, HNSW
above RECOMMENDER_HNSW_MIN_ITEMS), then serving through gunicorn (2 workers x 4 threads, DEBUG off, list cache off) under a
closed loop of 4 clients, the rows interleaved in slices (``benchmarks/_http.py``), each as
p50 / p95 and as a ratio to ``ping/`` in the same run: similar items, search for "Item 12" (the
same query again: its ranking kept per process), for a new "Item <n>" on every request (ranked
each time) and for a word that matches nothing, and uncached lists of the heaviest users and of users with the median history. Finally the CF share of the top 20 by
history length (up to 20 users per band) and EXPLAIN of the similar-items query.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _http  # noqa: E402

BANDS = [(5, 50), (51, 100), (101, 200), (201, 400), (401, 10**9)]


def generate(folder: Path, n_items: int, n_interactions: int, n_users: int, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    genres = ["Drama", "Comedy", "Action", "Thriller", "Sci-Fi", "Romance", "Horror", "Crime"]
    with open(folder / "items.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["external_id", "title", "year", "genres"])
        for i in range(n_items):
            g = "|".join(rng.choice(genres, size=int(rng.integers(1, 3)), replace=False).tolist())
            w.writerow([f"i{i}", f"Item {i}", int(rng.integers(1950, 2024)), g])
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity /= popularity.sum()
    activity = rng.lognormal(0.0, 1.1, n_users)
    sizes = np.clip((activity / activity.sum() * n_interactions).astype(int), 5, n_items // 2)
    start = 1_600_000_000
    with open(folder / "interactions.csv", "w", newline="") as fh:
        fh.write("user,item,kind,value,timestamp\n")
        for u, size in enumerate(sizes.tolist()):
            picks = np.unique(rng.choice(n_items, size=size, p=popularity))
            stamps = start + np.sort(rng.integers(0, 10**7, len(picks)))
            fh.write("".join(f"u{u},i{i},like,,{t}\n" for i, t in zip(picks, stamps, strict=True)))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def catalog_settings(n_items: int) -> None:
    """The environment of a run on the catalog of ``n_items`` (its database, as served in the
    benchmark: DEBUG off, no list cache, no throttling), set before Django starts."""
    os.environ["RECSITE_DB_NAME"] = f"recsite_bench_scale_{n_items}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["API_RECOMMENDATIONS_CACHE_SECONDS"] = "0"
    os.environ["API_THROTTLE_ANON"] = os.environ["API_THROTTLE_USER"] = "100000000/min"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("EMBEDDINGS_BACKEND", "none")  # 200k texts take hours on 2 cores


def one_size(args: argparse.Namespace) -> None:
    n_items = args.one
    catalog_settings(n_items)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections, transaction
    from django.db.models import Count
    from rest_framework.authtoken.models import Token

    from catalog.models import Interaction, Item
    from recommender import selectors, storage
    from recommender.models import ModelVersion
    from recommender.vector_sql import vector_literal

    call_command("migrate", verbosity=0)
    print(f"\n=== {n_items:,} items (database {os.environ['RECSITE_DB_NAME']})", flush=True)
    if Item.objects.count() < n_items:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            generate(Path(tmp), n_items, args.interactions, args.users, args.seed)
            print(f"generated in {time.perf_counter() - t:.1f} s", flush=True)
            t = time.perf_counter()
            call_command(
                "import_catalog",
                items=Path(tmp) / "items.csv",
                interactions=Path(tmp) / "interactions.csv",
                verbosity=0,
            )
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"import: {time.perf_counter() - t:.1f} s, peak RSS {peak:.0f} MB;"
                f" {Interaction.objects.count():,} interactions",
                flush=True,
            )
    version = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if version is None or args.retrain:
        t = time.perf_counter()
        call_command("train", model="als")
        print(f"train command: {time.perf_counter() - t:.1f} s", flush=True)
        version = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    print(
        f"version v{version.pk} {version.algorithm}, indexed={version.indexed};"
        f" timings {version.timings}",
        flush=True,
    )

    # users by history length
    counts = dict(
        Interaction.objects.values("user_id").annotate(n=Count("id")).values_list("user_id", "n")
    )
    users = get_user_model().objects.in_bulk(list(counts))
    by_length = sorted(counts, key=lambda u: -counts[u])
    heavy = by_length[: args.clients]
    middle = len(by_length) // 2
    median = by_length[middle : middle + args.clients]
    keys = [Token.objects.get_or_create(user_id=u)[0].key for u in heavy]
    median_keys = [Token.objects.get_or_create(user_id=u)[0].key for u in median]
    popular = list(
        storage.popular_item_ids(version=version, items=Item.objects.all(), n=args.clients)
    )
    numbers = itertools.count(7)

    def fill(path: str, client: int) -> str:
        if "{item}" in path:
            path = path.replace("{item}", str(popular[client % len(popular)]))
        if "{n}" in path:  # a query never asked before in the run: its ranking is computed
            path = path.replace("{n}", str(next(numbers) * 7919 % n_items))
        return path

    rows = {
        "ping": _http.PING,
        "similar items": "/api/v1/items/{item}/similar/",
        'search "Item 12"': "/api/v1/items/?q=Item+12",
        'search "Item <n>", new each time': "/api/v1/items/?q=Item+{n}",
        "search, no result": "/api/v1/items/?q=zzqxv",
        "list, uncached (heaviest users)": "/api/v1/me/recommendations/",
        # the same list (n=20 is the default) for users of the median history length
        "list, uncached (median users)": "/api/v1/me/recommendations/?n=20",
    }
    keys_for = {rows["list, uncached (median users)"]: median_keys}
    connections.close_all()
    port = _http.free_port()
    server = _http.start_server(port, args.workers, args.threads, cache_seconds=0)
    try:
        for path in rows.values():  # warm each worker's caches and connections
            _http.drive(port, path, keys_for.get(path, keys), max(args.clients, 8), 0.7, fill)
        results = _http.drive_interleaved(
            port, list(rows.values()), keys, args.clients, args.seconds, 3, fill, keys_for
        )
    finally:
        _http.stop_server(server)
    ping = results[_http.PING].pct(0.5)
    print(
        f"serving through gunicorn ({args.workers} workers x {args.threads} threads,"
        f" {args.clients} clients, {args.seconds:g} s a row, interleaved)"
    )
    print(f"{'endpoint':34} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>6} {'err':>4} {'p50/ping':>9}")
    for name, path in rows.items():
        r = results[path]
        print(
            f"{name:34} {r.pct(0.5):7.1f} {r.pct(0.95):7.1f} {r.rps:6.0f} {r.errors:4d}"
            f" {r.pct(0.5) / ping:8.1f}x",
            flush=True,
        )

    print(
        f"history lengths: heaviest {[counts[u] for u in heavy]},"
        f" median {[counts[u] for u in median]}"
    )
    print("CF items in the top 20, by history length:")
    for lo, hi in BANDS:
        band = [u for u, n in counts.items() if lo <= n <= hi][:20]
        if not band:
            print(f"  {lo}-{hi if hi < 10**9 else '':<5} no users")
            continue
        shares = [
            sum(r.source == "cf" for r in selectors.recommendations_for_user(user=users[u], n=20))
            for u in band
        ]
        label = f"{lo}-{hi}" if hi < 10**9 else f"{lo}+"
        print(f"  {label:8} {sum(shares) / len(shares):5.1f} / 20  ({len(band)} users)")

    if version.dimensions:
        vector = storage.item_vectors_read(version=version, item_ids=popular[:1])[popular[0]]
        literal = vector_literal(vector)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN " + storage.similar_sql(version=version, limit=101), [literal] * 2
            )
            plan = [r[0] for r in cursor.fetchall()]
        print("EXPLAIN similar items:", " | ".join(p.strip()[:80] for p in plan[:3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,60000,200000")
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per row")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--retrain", action="store_true", help="train even if a version is active")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_size(args)
        return
    for size in [int(s) for s in args.sizes.split(",")]:
        # one process per size: each has its own database and settings
        cmd = [sys.executable, __file__, "--one", str(size), *sys.argv[1:]]
        subprocess.run(cmd, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
