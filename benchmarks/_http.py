"""The benchmarks' HTTP side: gunicorn started on a free loopback port with the settings of a
run, and a closed-loop load generator (threads, one keep-alive connection each) that drives
endpoints in interleaved slices, so a change in the machine's load falls on all of them alike.
Used by bench_api.py and bench_scale.py; ratios to ``ping/`` measured in the same run are the
figures that count on a shared machine."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WARMUP_SECONDS = 0.3  # per slice: connections opened, each worker's caches warm
PING = "/api/v1/ping/"

# (path, client index) -> the URL of that client's next request
Fill = Callable[[str, int], str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(
    port: int, workers: int, threads: int, cache_seconds: int, env_extra: dict | None = None
) -> subprocess.Popen:
    """gunicorn (gthread) on ``port`` with throttling lifted and the list cache set to
    ``cache_seconds`` (0: off), plus ``env_extra`` (the database of the run)."""
    env = dict(os.environ)
    env.update(
        API_THROTTLE_ANON="100000000/min",
        API_THROTTLE_USER="100000000/min",
        API_RECOMMENDATIONS_CACHE_SECONDS=str(cache_seconds),
        DB_CONN_MAX_AGE="600",
        DJANGO_DEBUG="false",
        **(env_extra or {}),
    )
    cmd = [
        sys.executable, "-m", "gunicorn", "recsite.wsgi:application",
        "--bind", f"{HOST}:{port}", "--workers", str(workers), "--worker-class", "gthread",
        "--threads", str(threads), "--keep-alive", "30", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", PING)
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("gunicorn did not start")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Result:
    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def pct(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def drive(
    port: int, path: str, keys: list[str], clients: int, seconds: float, fill: Fill | None = None
) -> Result:
    """Closed loop: each client sends its next request when the previous answer is read, with
    the token ``keys[i]``; ``fill`` makes each request's URL from ``path`` (its ``{item}``-style fields)."""
    warmup_end = time.monotonic() + WARMUP_SECONDS
    end = warmup_end + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    barrier = threading.Barrier(clients)

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        headers = {"Authorization": f"Token {keys[i % len(keys)]}"}
        barrier.wait()
        while True:
            t0 = time.monotonic()
            if t0 >= end:
                break
            try:
                conn.request("GET", fill(path, i) if fill else path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200 and body
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
            t1 = time.monotonic()
            if t0 >= warmup_end:
                if ok:
                    latencies[i].append((t1 - t0) * 1000)
                else:
                    errors[i] += 1
        conn.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return Result([x for per in latencies for x in per], sum(errors), seconds)


def drive_interleaved(
    port: int,
    paths: list[str],
    keys: list[str],
    clients: int,
    seconds: float,
    rounds: int,
    fill: Fill | None = None,
    keys_for: dict[str, list[str]] | None = None,
) -> dict[str, Result]:
    """The endpoints take turns in short slices, so a change in the machine's load (other
    processes) falls on both alike; each endpoint gets ``seconds`` in all."""
    merged = {p: Result([], 0, 0.0) for p in paths}
    for _ in range(rounds):
        for path in paths:
            r = drive(port, path, (keys_for or {}).get(path, keys), clients, seconds / rounds, fill)
            merged[path].latencies_ms.extend(r.latencies_ms)
            merged[path].errors += r.errors
            merged[path].seconds += r.seconds
    return merged
