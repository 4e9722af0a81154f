"""Server-side render time of the browser pages on ml-latest-small (target: p50 < 100 ms).

Uses the development database (the embedded PostgreSQL under var/ unless DATABASE_URL is set;
RECSITE_DB_NAME picks another database on it), migrates it, imports ml-latest-small into it if
the catalog is empty and trains the default model if none is active, then requests every page
with Django's test Client and prints p50 / p95 wall clock and the CPU time per page.

    python benchmarks/bench_pages.py [--runs 30] [--data ../shared/data/ml-latest-small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DJANGO_DEBUG", "false")  # no query log, as in production
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from catalog.importing.movielens import movielens_import  # noqa: E402
from catalog.models import Interaction, Item  # noqa: E402
from recommender import selectors as rec_selectors  # noqa: E402


def ensure_data(data: Path) -> None:
    call_command("migrate", interactive=False, verbosity=0)
    if not Item.objects.exists():
        print(f"importing {data} ...", flush=True)
        movielens_import(path=data)
    if rec_selectors.version_active() is None:
        from recommender import services

        print("training the default model ...", flush=True)
        version = services.training_start(trigger="benchmark")
        services.model_train(version_id=version.pk)


def timed(
    client: Client, url: str, runs: int, htmx: bool = False, cold: bool = False
) -> list[float]:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for _ in range(3):  # warm caches and connections
        response = client.get(url, **headers)
        assert response.status_code == 200, (url, response.status_code)
    samples, cpu = [], []
    for _ in range(runs):
        if cold:  # the page's caches (For you list, popularity ranking, genres) start empty
            cache.clear()
        start, start_cpu = time.perf_counter(), time.thread_time()
        response = client.get(url, **headers)
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/ml-latest-small")
    args = parser.parse_args()
    ensure_data(args.data)

    User = get_user_model()
    # a MovieLens user with a long history (the heaviest "For you" and history pages)
    user_id = (
        Interaction.objects.filter(user__username__startswith="ml_")
        .values("user")
        .order_by("user")
        .first()["user"]
    )
    user = User.objects.get(pk=user_id)
    n_history = Interaction.objects.filter(user=user).count()
    staff, _ = User.objects.get_or_create(
        username="bench_staff", defaults={"is_staff": True, "is_superuser": True}
    )
    alien = Item.objects.filter(title="Alien").first() or Item.objects.first()

    anonymous, member, admin = Client(), Client(), Client()
    member.force_login(user)
    admin.force_login(staff)
    pages = [
        ("home (anonymous, popular)", anonymous, "/", False, False),
        (f"home For you ({user.username}, {n_history} ratings)", member, "/", False, False),
        ("  same, cold (list computed every time)", member, "/", False, True),
        ("For you partial (htmx)", member, "/for-you/", True, False),
        ("catalog, no query (popular)", member, "/items/", False, False),
        ("  same, cold (popularity ranking recomputed)", member, "/items/", False, True),
        ("catalog search 'star wars'", member, "/items/?q=star+wars", False, False),
        ("catalog search 'ali' (partial word)", member, "/items/?q=ali", False, False),
        ("catalog search 'termnator' (a typo)", member, "/items/?q=termnator", False, False),
        (
            "catalog search 'romantic comedy 90s'",
            member,
            "/items/?q=romantic+comedy+90s",
            False,
            False,
        ),
        (
            "catalog Comedy 1990-1999 by title, page 3",
            member,
            "/items/?genre=Comedy&year_min=1990&year_max=1999&sort=title&page=3",
            False,
            False,
        ),
        ("catalog results partial (htmx)", member, "/items/?q=space&sort=newest", True, False),
        (f"item page ({alien})", member, f"/items/{alien.pk}/", False, False),
        (
            "  its 'why' partial (htmx, after the page)",
            member,
            f"/items/{alien.pk}/why/",
            True,
            False,
        ),
        ("history", member, "/history/", False, False),
        ("onboarding", member, "/welcome/", False, False),
        ("staff dashboard", admin, "/staff/", False, False),
    ]
    version = rec_selectors.version_active()
    print(
        f"server-side render time, {args.runs} runs each after 3 warm-ups; "
        f"{Item.objects.count()} items, {Interaction.objects.count()} interactions, "
        f"model v{version.pk} {version.algorithm}"
    )
    print(f"{'page':<52}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'cpu p50':>9}")
    worst = 0.0
    for name, client, url, htmx, cold in pages:
        samples, cpu = timed(client, url, args.runs, htmx, cold)
        samples.sort()
        p50 = statistics.median(samples)
        p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
        if not name.startswith("  "):
            worst = max(worst, p50)
        cpu_p50 = statistics.median(cpu)
        print(f"{name:<52}{p50:>9.1f}{p95:>9.1f}{samples[-1]:>9.1f}{cpu_p50:>9.1f}")
    verdict = "OK" if worst < 100 else "OVER"
    print(f"target p50 < 100 ms on every page: {verdict} (worst p50 {worst:.1f} ms)")
    print(f"load average while measuring: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
