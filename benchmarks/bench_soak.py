"""Soak benchmark: minutes of mixed traffic against the production stack on loopback.

    python benchmarks/bench_soak.py [--minutes 10] [--clients 6] [--workers 2] [--threads 4]
                                    [--sample-seconds 5] [--warmup-seconds 60]

Starts what production runs, natively: gunicorn with recsite/gunicorn.conf.py and the production
settings, a Celery worker (the compose command) on Redis (RECSITE_TEST_REDIS_URL, default
redis://127.0.0.1:6379/15, a private queue and key prefix), the embedded PostgreSQL (database
``recsite_bench_soak`` unless RECSITE_DB_NAME is set; ml-latest-small loaded and the default model
trained if missing) and the fake OpenAI server of tests/fakes as the chat's LLM. Then ``--clients``
closed-loop clients (threads, keep-alive connections, each a different MovieLens user with an API
token) send a mix of requests for ``--minutes``:

    browse     35%  an item page (HTML), the catalog API by genre, similar items
    search     15%  full-text search in the catalog API
    rate       15%  rate an item (the user's list is recomputed on their next request)
    recommend  25%  my recommendations
    chat       10%  a chat message (the LLM path: understanding call + streamed rerank)

Prints requests, errors (anything but the expected status; must be 0: the exit status is 1
otherwise), p50 / p99 latency per kind, and the memory of every gunicorn and Celery process
(RSS, and its anonymous part: the heap, where a leak shows), sampled every ``--sample-seconds``:
per minute its floor (the process between requests) and peak (requests in flight), the slope in
MB per 10 minutes over all samples and over the per-minute floors, and what each process keeps
once the traffic has stopped.
Throttling is lifted for the run; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("RECSITE_DB_NAME", "recsite_bench_soak")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DJANGO_DEBUG"] = "false"

import django  # noqa: E402

django.setup()

from benchmarks._data import ensure_data  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

HOST = "127.0.0.1"
REDIS_URL = os.environ.get("RECSITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RECONNECT_EVERY = 50  # requests per keep-alive connection, as many clients behind a proxy
MIX = [("browse", 35), ("search", 15), ("rate", 15), ("recommend", 25), ("chat", 10)]
WORDS = ["star", "love", "night", "war", "man", "story", "dead", "city", "girl", "king", "space"]
CHAT_TEXTS = [
    "something like Alien but funnier",
    "a 90s crime film I haven't seen",
    "not horror",
    "more like the second one",
    "why did you suggest the first one?",
    "a feel-good comedy from the 80s",
]


def positive(kind: type):
    def parse(value: str):
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
        return number

    return parse


# --- data and processes ------------------------------------------------------------------------------


def tokens(n: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    users = list(get_user_model().objects.filter(username__startswith="ml_").order_by("id")[:n])
    if len(users) < n:
        raise SystemExit(f"only {len(users)} MovieLens users: use fewer --clients")
    return [Token.objects.get_or_create(user=u)[0].key for u in users]


def item_ids() -> tuple[list[int], list[str]]:
    from catalog.models import Item
    from catalog.selectors import item_genres, item_popularity_ranking

    popular = item_popularity_ranking()  # most rated first: browsing starts there
    visible = set(Item.objects.filter(is_hidden=False).values_list("id", flat=True))
    return [i for i in popular if i in visible], [g for g in item_genres() if g][:20]


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    host = db["HOST"] or db.get("OPTIONS", {}).get("host", "")
    return f"postgresql://{db['USER'] or 'postgres'}@/{db['NAME']}?host={host}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str], **extra: str) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                args, cwd=ROOT, env={**self.env, **extra}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.procs[name] = proc
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    pass


def wait_until(what: str, predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


# --- memory ------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return sorted(out)


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, RssAnon) in kB, or None when the process is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    values[key] = int(rest.split()[0])
    except OSError:
        return None
    return values.get("VmRSS", 0), values.get("RssAnon", 0)


@dataclass
class Memory:
    samples: dict[tuple[str, int], list[tuple[float, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    idle: dict[int, tuple[int, int] | None] = field(default_factory=dict)

    def sample(self, started: float, roots: dict[str, int]) -> None:
        now = time.monotonic() - started
        for role, pid in roots.items():
            for kind, p in [(f"{role} main", pid)] + [(f"{role} child", c) for c in children(pid)]:
                mem = memory_kb(p)
                if mem is not None:
                    self.samples[(kind, p)].append((now, *mem))


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (per second)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


# --- load --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, ms: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            if ok:
                self.latencies[kind].append(ms)
            else:
                self.errors[kind] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{kind}: {detail}")


class Client:
    def __init__(self, port: int, token: str, ids: list[int], genres: list[str], seed: int):
        self.port = port
        self.token = token
        self.ids = ids
        self.genres = genres
        self.rng = random.Random(seed)
        self.conn = http.client.HTTPConnection(HOST, port, timeout=90)
        self.conversation: int | None = None
        self.turns = 0

    def call(self, method: str, path: str, body=None, auth: bool = True) -> tuple[int, bytes]:
        headers = {"X-Forwarded-Proto": "https"}
        if auth:
            headers["Authorization"] = f"Token {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=90)
            raise

    def one(self, kind: str) -> tuple[bool, str]:
        rng = self.rng
        if kind == "browse":
            pick = rng.random()
            item = rng.choice(self.ids[:3000])  # the popular end of the catalog, mostly
            if pick < 0.4:
                status, body = self.call("GET", f"/items/{item}/", auth=False)
            elif pick < 0.7:
                genre = rng.choice(self.genres)
                status, body = self.call("GET", f"/api/v1/items/?genre={genre}", auth=False)
            else:
                status, body = self.call("GET", f"/api/v1/items/{item}/similar/")
            return status == 200, f"{status} {body[:200]!r}"
        if kind == "search":
            status, body = self.call("GET", f"/api/v1/items/?q={rng.choice(WORDS)}", auth=False)
            return status == 200, f"{status} {body[:200]!r}"
        if kind == "rate":
            item = rng.choice(self.ids)
            value = rng.choice([2.5, 3.0, 3.5, 4.0, 4.5, 5.0])
            status, body = self.call(
                "POST", "/api/v1/me/history/", {"item_id": item, "kind": "rating", "value": value}
            )
            return status in (200, 201), f"{status} {body[:200]!r}"
        if kind == "recommend":
            status, body = self.call("GET", "/api/v1/me/recommendations/")
            ok = status == 200 and json.loads(body)["count"] > 0
            return ok, f"{status} {body[:200]!r}"
        if self.conversation is None or self.turns >= 8:
            status, body = self.call("POST", "/api/v1/conversations/", {})
            if status != 201:
                return False, f"new conversation: {status} {body[:200]!r}"
            self.conversation, self.turns = json.loads(body)["id"], 0
        status, body = self.call(
            "POST",
            f"/api/v1/conversations/{self.conversation}/messages/",
            {"text": rng.choice(CHAT_TEXTS)},
        )
        self.turns += 1
        ok = status == 201 and len(json.loads(body)["message"]["results"]) > 0
        return ok, f"{status} {body[:200]!r}"


def run_client(client: Client, tally: Tally, end: float) -> None:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    sent = 0
    while time.monotonic() < end:
        sent += 1
        if sent % RECONNECT_EVERY == 0:  # a new connection may land on another gunicorn process
            client.conn.close()
        kind = client.rng.choices(kinds, weights)[0]
        started = time.perf_counter()
        try:
            ok, detail = client.one(kind)
        except Exception as exc:  # noqa: BLE001 - counted as an error, never a crashed client
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        tally.add(kind, (time.perf_counter() - started) * 1000, ok, detail)
    client.conn.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- main ----------------------------------------------------------------------------------------------


def main() -> int:  # noqa: C901, PLR0915
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=positive(float), default=10.0)
    parser.add_argument("--clients", type=positive(int), default=6)
    parser.add_argument("--workers", type=positive(int), default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=positive(int), default=4, help="threads per process")
    parser.add_argument("--sample-seconds", type=positive(float), default=5.0)
    parser.add_argument("--warmup-seconds", type=float, default=60.0)
    args = parser.parse_args()

    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        raise SystemExit(f"Redis is needed at {REDIS_URL} (RECSITE_TEST_REDIS_URL): {exc}") from exc

    ensure_data()
    keys = tokens(args.clients)
    ids, genres = item_ids()
    from django.db import connections

    url = database_url()
    connections.close_all()

    tmp = Path(tempfile.mkdtemp(prefix="recsite-soak-"))
    name = f"soak-{uuid.uuid4().hex[:8]}"
    port = free_port()
    fake = FakeOpenAI().__enter__()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CELERY_", "CACHE_", "LOG_", "PROMETHEUS_", "OPENAI_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
        DJANGO_STATIC_ROOT=str(tmp / "static"),
        DATABASE_URL=url,
        REDIS_URL=REDIS_URL,
        CELERY_QUEUE=name,
        CELERY_BROKER_KEY_PREFIX=f"{name}:",
        CACHE_KEY_PREFIX=name,
        LOG_LEVEL="WARNING",
        LOG_REQUESTS="false",
        EMBEDDINGS_BACKEND="none",
        EMBEDDINGS_AUTO_REFRESH="false",
        RECOMMENDER_EVALUATE_ON_TRAIN="false",
        RECOMMENDER_RETRAIN_MINUTES="100000",
        OPENAI_BASE_URL=fake.url,
        OPENAI_API_KEY="soak-key",
        LLM_MODEL="fake-model",
        LLM_CACHE_SECONDS="0",
        CHAT_ITEM_PROFILES="false",
        API_THROTTLE_ANON="100000000/min",
        API_THROTTLE_USER="100000000/min",
        API_THROTTLE_CHAT="100000000/min",
        # as the Dockerfile sets it (two malloc arenas: the heap stays flat under threads)
        MALLOC_ARENA_MAX=os.environ.get("MALLOC_ARENA_MAX", "2"),
    )
    stack = Stack(tmp, env)
    memory = Memory()
    tally = Tally()
    try:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env,
            check=True, capture_output=True,
        )  # fmt: skip
        web = stack.start(
            "web",
            [sys.executable, "-m", "gunicorn", "-c", "recsite/gunicorn.conf.py", "recsite.wsgi:application"],
            GUNICORN_BIND=f"{HOST}:{port}", WEB_CONCURRENCY=str(args.workers),
            GUNICORN_THREADS=str(args.threads), PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom-web"),
        )  # fmt: skip
        worker = stack.start(
            "worker",
            [sys.executable, "-m", "celery", "-A", "recsite", "worker", "-l", "warning", "--concurrency", "2"],
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom-worker"),
        )  # fmt: skip

        def web_up() -> bool:
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                conn.request("GET", "/readyz")
                return conn.getresponse().status == 200
            except OSError:
                return False

        wait_until("gunicorn ready (/readyz)", web_up)
        wait_until("the worker's pool", lambda: len(children(worker.pid)) >= 2)
        print(
            f"soak: {args.minutes:g} min, {args.clients} clients, gunicorn {args.workers} x "
            f"{args.threads} gthread with production settings on {HOST}:{port}, 1 Celery worker "
            f"(2 processes) on Redis, fake LLM; {os.cpu_count()} CPUs shared by everything; "
            f"logs in {tmp}",
            flush=True,
        )
        roots = {"gunicorn": web.pid, "celery": worker.pid}
        started = time.monotonic()
        end = started + args.minutes * 60
        clients = [
            threading.Thread(
                target=run_client,
                args=(Client(port, keys[i], ids, genres, seed=i), tally, end),
                daemon=True,
            )
            for i in range(args.clients)
        ]
        for t in clients:
            t.start()
        next_report = started + 60
        while any(t.is_alive() for t in clients):
            memory.sample(started, roots)
            fake.requests.clear()  # the fake keeps every request; this process is not measured
            if time.monotonic() >= next_report:
                with tally.lock:
                    done = sum(len(v) for v in tally.latencies.values())
                    errors = sum(tally.errors.values())
                rss = sum(s[-1][1] for (kind, pid), s in memory.samples.items() if memory_kb(pid))
                print(
                    f"  {int((time.monotonic() - started) / 60):3d} min: {done} requests, "
                    f"{errors} errors, RSS of the processes {rss / 1024:.0f} MB",
                    flush=True,
                )
                next_report += 60
            time.sleep(min(args.sample_seconds, max(0.1, end - time.monotonic() + 0.5)))
        for t in clients:
            t.join()
        memory.sample(started, roots)
        elapsed = time.monotonic() - started
        time.sleep(10)  # the traffic has stopped: what each process keeps
        memory.idle = {pid: memory_kb(pid) for _, pid in memory.samples}
        if web.poll() is not None or worker.poll() is not None:
            print("a server process exited during the soak: see the logs", flush=True)
            return 1
    finally:
        stack.stop()
        fake.__exit__(None, None, None)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{name}*"):
            client.delete(key)

    # --- report --------------------------------------------------------------------------------------
    total = sum(len(v) for v in tally.latencies.values())
    errors = sum(tally.errors.values())
    print(f"\n{'kind':10} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}")
    for kind, _ in MIX:
        values = tally.latencies[kind]
        print(
            f"{kind:10} {len(values):9d} {tally.errors[kind]:7d} {pct(values, 0.5):8.1f}"
            f" {pct(values, 0.99):8.1f} {len(values) / elapsed:7.1f}"
        )
    everything = [x for v in tally.latencies.values() for x in v]
    print(
        f"{'all':10} {total:9d} {errors:7d} {pct(everything, 0.5):8.1f}"
        f" {pct(everything, 0.99):8.1f} {total / elapsed:7.1f}"
    )
    for example in tally.examples:
        print("  error:", example)

    warmup = min(args.warmup_seconds, elapsed / 2)
    print(
        f"\nanonymous memory (the heap: where a leak shows; RSS adds the memory-mapped model), MB,"
        f" sampled every {args.sample_seconds:g} s. Per minute the floor (least value: the process"
        f" between requests) and the peak (requests in flight); slopes in MB per 10 min after a"
        f" {warmup:.0f} s warm-up, over every sample and over the per-minute floors; 'idle' is"
        f" 10 s after the traffic stopped."
    )
    print(
        f"{'process':16} {'pid':>7} {'first floor':>11} {'last floor':>10} {'idle':>6} "
        f"{'peak':>6} {'RSS end':>8} {'slope':>7} {'floors':>7}"
    )
    table = sorted(memory.samples.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    minutes: dict[int, list[tuple[int, float, float]]] = {}
    for (kind, pid), series in table:
        after = [x for x in series if x[0] >= warmup] or series
        per_minute: dict[int, list[float]] = defaultdict(list)
        for t, _, a in series:
            per_minute[int(t // 60)].append(a / 1024)
        rows = [(m, min(v), max(v)) for m, v in sorted(per_minute.items())]
        minutes[pid] = rows
        floors = [(m * 60.0, lo) for m, lo, _ in rows if m * 60 >= warmup] or [(0.0, rows[0][1])]
        idle = memory.idle.get(pid)
        print(
            f"{kind:16} {pid:7d} {floors[0][1]:11.0f} {floors[-1][1]:10.0f} "
            f"{(idle[1] / 1024 if idle else float('nan')):6.0f} "
            f"{max(x[2] for x in series) / 1024:6.0f} {series[-1][1] / 1024:8.0f} "
            f"{slope([(t, a / 1024) for t, _, a in after]) * 600:+7.1f} "
            f"{slope(floors) * 600:+7.1f}"
        )
    print("\nper minute, anonymous MB, floor / peak:")
    for (kind, pid), _series in table:
        row = " ".join(f"{lo:4.0f}/{hi:<4.0f}" for _, lo, hi in minutes[pid])
        print(f"{kind:16} {pid:7d} {row}")
    expected = 2 + args.workers + 2  # gunicorn master + workers, celery main + pool
    pids = {pid for _, pid in memory.samples}
    if len(pids) != expected:
        print(f"processes seen: {len(pids)} (expected {expected}: a process was replaced)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
