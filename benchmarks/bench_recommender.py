"""Recommender serving benchmark on ml-latest-small (the development database).

Prints:
* a full retrain of the fixed model ``session_ease`` (read from PostgreSQL, fit, write rows and
  the dense weights file, activate) beside the bare fit measured in the same run, and the ratio;
  then the retrain a site runs by default (``auto``: the per-site model selection, then the
  winner's fit), which the serving figures below use;
* one user's recommendations with evidence, p50 / p95 inside the selector (20 users x 10 calls),
  then the same with a process spinning on the other core (shared cores), and the ratio;
* the explanation of one item for one user (the item page), p50 / p95;
* the per-user refresh of a factor model (ALS fold-in from the stored item vectors), p50 / p95.

Usage: .venv/bin/python benchmarks/bench_recommender.py   (loads ml-latest-small if missing)
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("RECOMMENDER_EVALUATE_ON_TRAIN", "false")
os.environ.setdefault("DJANGO_DEBUG", "false")  # as served: no per-query debug log

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from catalog.importing.movielens import movielens_import  # noqa: E402
from catalog.models import Interaction  # noqa: E402
from recommender import engine, scoring, selection, selectors, services, training_data, versions  # noqa: E402
from recommender.models import ModelVersion  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:7.2f} ms   p95 {pct(values, 0.95) * 1000:7.2f} ms"


def settle() -> None:
    """Vacuum what the retrain rewrote, so that serving is measured as it runs between retrains
    rather than beside the autovacuum the retrain set off (it took one of the two cores)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) recommender_versionitem, recommender_modelversion")


CPU: list[float] = []  # the CPU time of this process (every thread) per call, last run


def list_latencies(users, calls: int = 10, version: ModelVersion | None = None) -> list[float]:
    samples: list[float] = []
    CPU.clear()
    for user in users:
        for _ in range(calls):
            t, c = time.perf_counter(), time.process_time()
            selectors.recommendations_for_user(user=user, n=20, version=version)
            samples.append(time.perf_counter() - t)
            CPU.append(time.process_time() - c)
    return samples


@contextmanager
def busy_core():
    """A process spinning on one core (of two): the figure on a machine whose cores are shared,
    as under a load of web processes and a worker."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def train(algorithm: str) -> ModelVersion:
    version = services.training_start(algorithm=algorithm, trigger="benchmark")
    return services.model_train(version_id=version.pk) or version


def main() -> None:
    call_command("migrate", verbosity=0)
    if Interaction.objects.filter(source="import").count() < 100_000:
        movielens_import(path=ROOT.parent / "shared" / "data" / "ml-latest-small")

    print(f"== full retrain of the default model ({engine.DEFAULT_MODEL}) vs its bare fit")
    data = training_data.training_data_read()
    model = engine.get_model(engine.DEFAULT_MODEL)
    t = time.perf_counter()
    if getattr(model, "uses_timestamps", False):
        model.fit(data.X, timestamps=data.timestamps)
    else:
        model.fit(data.X)
    bare = time.perf_counter() - t
    t = time.perf_counter()
    version = train(engine.DEFAULT_MODEL)
    total = time.perf_counter() - t
    print(f"bare fit            {bare:6.2f} s")
    print(f"full retrain        {total:6.2f} s   (ratio {total / bare:.2f}x; {version.timings})")
    t = time.perf_counter()
    version = train(selection.AUTO)  # what a retrain runs by default: the per-site selection
    auto = time.perf_counter() - t
    chosen = version.metrics.get("selection", {})
    print(
        f"full retrain, auto  {auto:6.2f} s   ({auto / total:.2f}x the fixed model's; chose "
        f"{chosen.get('chosen')} on a {chosen.get('validation')} slice; {version.timings})"
    )
    del data, model  # a web process serves without a fitted model in its heap
    gc.collect()
    settle()

    users = list(
        get_user_model().objects.filter(username__startswith="ml_").order_by("id")[::30][:20]
    )
    scoring.neighbour_index(version)  # the per-process load, once per version
    for user in users:  # warm: first calls per process (caches, numpy, the planner)
        selectors.recommendations_for_user(user=user, n=20)
    samples = list_latencies(users)
    cpu = list(CPU)
    given = list_latencies(users, version=selectors.version_active())
    with busy_core():
        shared = list_latencies(users)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recommender.models import ItemEmbedding

    with CaptureQueriesContext(connection) as queries:
        selectors.recommendations_for_user(user=users[0], n=20)
    print(f"== recommendations_for_user (n=20, evidence): {ms(samples)}   ({len(samples)} calls)")
    print(f"   this process's CPU time per call:          {ms(cpu)}")
    print(
        f"   with the other core busy:                  {ms(shared)}"
        f"   (p50 x{pct(shared, 0.5) / pct(samples, 0.5):.2f})"
    )
    print(f"   the version given, as the pages and API do: {ms(given)}")
    print(
        f"   {len(queries)} queries per call; {ItemEmbedding.objects.count()} item embeddings"
        " stored (cold items are looked up among them)"
    )
    why: list[float] = []
    for user in users:
        item = selectors.recommendations_for_user(user=user, n=10)[5].item
        for _ in range(5):
            t = time.perf_counter()
            selectors.recommendation_for_item(user=user, item=item)
            why.append(time.perf_counter() - t)
    print(f"== recommendation_for_item (item page):        {ms(why)}")

    als = train("als")
    settle()
    refresh: list[float] = []
    services.user_refresh(user_id=users[0].pk)  # unpickle the fitted model once per process
    for user in users:
        for _ in range(5):
            t = time.perf_counter()
            services.user_refresh(user_id=user.pk)
            refresh.append(time.perf_counter() - t)
    print(f"== per-user refresh (ALS fold-in + upsert):    {ms(refresh)}")
    als_recs: list[float] = []
    for user in users:
        for _ in range(5):
            t = time.perf_counter()
            selectors.recommendations_for_user(user=user, n=20, version=als)
            als_recs.append(time.perf_counter() - t)
    print(f"== ALS from pgvector (n=20, evidence):         {ms(als_recs)}")
    # leave the default model serving
    versions.version_activate(version_id=version.pk)
    print(f"median load: {statistics.median(os.getloadavg()):.1f} (2 cores)")


if __name__ == "__main__":
    main()
