"""Text-embedding benchmark on ml-latest-small: bulk throughput, query latency, cold start.

    python benchmarks/bench_embeddings.py [--full] [--sample 1000] [--queries 200] [--seeds 3]

Uses its own embedded database (RECSITE_DB_NAME, default ``recsite_emb``), importing
ml-latest-small into it if needed. Prints
1. bulk embedding throughput of the configured backend (default: the local all-MiniLM-L6-v2,
   torch CPU threads = the machine's cores): model load time; ``backend.embed`` on a sample of
   item texts (items/s, model only); and the bulk refresh ``embeddings_refresh`` (read, embed,
   write to pgvector) over the whole catalog when something is missing (``--full``: all of it,
   re-embedded from scratch);
2. semantic query latency p50 / p95: the pgvector search alone (a precomputed query vector,
   top 20, exact scan vs the HNSW index), the query's embedding, and the whole
   ``hybrid_search`` (full text + embedding + pgvector + fusion + loading the items);
3. the cold-start table (``evaluate --protocol coldstart``): 10% of the items held out
   entirely, Recall@20 / NDCG@10 on them for the text hybrid vs popularity (oracle) vs random,
   averaged over ``--seeds`` seeds.
Nothing is asserted: figures only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("RECSITE_DB_NAME", "recsite_emb")
os.environ.setdefault("EMBEDDINGS_AUTO_REFRESH", "false")  # the import must not embed by itself
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from catalog.models import Item  # noqa: E402
from recommender.embeddings import selectors, services  # noqa: E402
from recommender.embeddings import vectors as stored  # noqa: E402
from recommender.embeddings.backends import get_backend  # noqa: E402
from recommender.embeddings.coldstart import coldstart_report  # noqa: E402
from recommender.embeddings.evaluation import format_coldstart  # noqa: E402
from recommender.embeddings.text import ITEM_TEXT_SQL  # noqa: E402
from recommender.evaluation import load_ratings_csv  # noqa: E402

DATA = Path(
    os.environ.get("RECSITE_MOVIELENS_DIR", REPO.parent / "shared" / "data" / "ml-latest-small")
)

QUERIES = [
    "a feel-good film about space",
    "something scary with ghosts in an old house",
    "a romantic comedy set in New York",
    "animated movie for kids about animals",
    "gritty crime drama about the mafia",
    "war film about soldiers in Vietnam",
    "mind-bending science fiction about dreams",
    "a heist movie with a clever twist",
    "coming of age story at high school",
    "superheroes saving the world",
    "a sad movie that makes you cry",
    "courtroom drama about justice",
    "road trip with friends comedy",
    "martial arts action from Hong Kong",
    "musical with lots of singing and dancing",
    "documentary about nature",
    "dystopian future with robots",
    "time travel adventure",
    "zombie apocalypse survival",
    "sports underdog story",
    "spy thriller in the Cold War",
    "western with cowboys and outlaws",
    "historical epic in ancient Rome",
    "quirky indie film about a family",
    "serial killer detective thriller",
    "fantasy quest with wizards and dragons",
    "pirates on the high seas",
    "a movie about artificial intelligence",
    "disaster movie with an earthquake",
    "biography of a famous musician",
    "christmas family comedy",
    "space opera with epic battles",
    "psychological horror about isolation",
    "political thriller about a conspiracy",
    "dark comedy about death",
    "animated Japanese fantasy",
    "a movie about a dog",
    "boxing drama",
    "teen slasher film",
    "feel-good movie about cooking and food",
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def ensure_data() -> None:
    call_command("migrate", verbosity=0)
    if Item.objects.count() < 9000:
        from catalog.importers import movielens_import

        print(f"importing ml-latest-small from {DATA} ...", flush=True)
        movielens_import(path=DATA)


def throughput(sample: int, full: bool) -> None:
    backend = get_backend()
    if backend is None:
        sys.exit("EMBEDDINGS_BACKEND is 'none'")
    print(f"== bulk embedding: {backend.name}, {os.cpu_count()} cores ==")
    t = time.perf_counter()
    backend.embed(["warm-up"])
    print(f"model load + first text: {time.perf_counter() - t:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {ITEM_TEXT_SQL} FROM catalog_item i ORDER BY md5(i.id::text) LIMIT %s",
            [sample],
        )
        texts = [r[0] for r in cursor.fetchall()]
    chars = np.mean([len(x) for x in texts])
    t = time.perf_counter()
    backend.embed(texts)
    dt = time.perf_counter() - t
    print(
        f"model only: {len(texts)} item texts (mean {chars:.0f} chars) in {dt:.1f} s"
        f" = {len(texts) / dt:.0f} items/s"
    )
    if full:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM recommender_itemembedding WHERE backend = %s", [backend.name]
            )
            cursor.execute(
                f"DROP INDEX IF EXISTS {services.index_name(backend.name, backend.dims)}"
            )
    report = services.embeddings_refresh()
    if report.embedded:
        print(
            f"bulk refresh (read, embed, write): {report.embedded} items in {report.seconds:.1f} s"
            f" = {report.embedded / report.seconds:.0f} items/s end to end"
            f" ({report.items_per_second:.0f} items/s embedding)"
        )
    else:
        print(
            f"bulk refresh: all {report.fresh} items already fresh ({report.seconds:.2f} s to check)"
        )
    print(f"HNSW index: {'yes' if report.indexed else 'no'}")


def latency(n_queries: int) -> None:
    space = stored.embedding_space()
    if space is None:
        sys.exit("no embeddings stored")
    print(f"\n== semantic query latency, top 20, {n_queries} queries ==")
    queries = [QUERIES[i % len(QUERIES)] for i in range(n_queries)]
    vectors = {}
    embed_times = []
    for q in QUERIES:
        t = time.perf_counter()
        vectors[q] = space.backend.embed_query(q)
        embed_times.append(time.perf_counter() - t)
    backend, dims = space.backend.name, space.dims
    if not services.index_exists(backend, dims):
        services.index_create(backend=backend, dims=dims)
    rows = []
    for label, indexed in (("pgvector exact scan", False), ("pgvector HNSW", True)):
        s = stored.Space(space.backend, dims, indexed)
        times = []
        for q in queries:
            t = time.perf_counter()
            if indexed:
                stored.nearest_items(vector=vectors[q], space=s, n=20)
            else:
                from django.db import transaction

                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_indexscan = off")
                    stored.nearest_items(vector=vectors[q], space=s, n=20)
            times.append(time.perf_counter() - t)
        rows.append((label, times))
    stored.query_cache_clear()
    e2e = []
    for q in queries:
        t = time.perf_counter()
        selectors.hybrid_search(query=q, n=20)
        e2e.append(time.perf_counter() - t)
    rows.append(("query embedding (model)", embed_times))
    rows.append(("hybrid_search end to end", e2e))
    print(f"{'':<28}{'p50 ms':>9}{'p95 ms':>9}")
    for label, times in rows:
        print(f"{label:<28}{pct(times, 50):>9.1f}{pct(times, 95):>9.1f}")
    # recall of the index against the exact scan
    s_exact = stored.Space(space.backend, dims, False)
    s_hnsw = stored.Space(space.backend, dims, True)
    overlap = []
    for q in QUERIES:
        from django.db import transaction

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            exact = {i for i, _ in stored.nearest_items(vector=vectors[q], space=s_exact, n=20)}
        approx = {i for i, _ in stored.nearest_items(vector=vectors[q], space=s_hnsw, n=20)}
        overlap.append(len(exact & approx) / max(len(exact), 1))
    print(f"HNSW recall@20 vs exact: {np.mean(overlap):.3f}")


def coldstart(seeds: int) -> None:
    print(f"\n== cold start on ml-latest-small (mean of {seeds} seed(s)) ==")
    data = load_ratings_csv(DATA / "ratings.csv")
    runs = [coldstart_report(data=data, seed=s, by="external_id") for s in range(seeds)]
    rows = []
    for k, first in enumerate(runs[0]):
        row = dict(first)
        for key in ("recall@20", "ndcg@10", "n_users_tested"):
            row[key] = float(np.mean([r[k][key] for r in runs]))
        row["n_users_tested"] = int(round(row["n_users_tested"]))
        rows.append(row)
    print(format_coldstart(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="re-embed the whole catalog")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    ensure_data()
    throughput(args.sample, args.full)
    latency(args.queries)
    coldstart(args.seeds)


if __name__ == "__main__":
    main()
