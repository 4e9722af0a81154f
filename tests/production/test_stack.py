"""The production stack, started natively with the real processes and the production settings:
gunicorn (recsite/gunicorn.conf.py, two workers), a Celery worker and Celery beat on Redis
(127.0.0.1, db 15, a private queue and key prefix) and the embedded PostgreSQL pytest database
loaded with ml-latest-small; the LLM is the fake OpenAI server of tests/fakes (the outside
boundary), text embeddings are off (nothing here needs them; they would load torch into every
process).

Over HTTP, as a client behind the TLS proxy would (X-Forwarded-Proto: https): staff train a
model through the API, recommendations and two chat answers are fetched, /healthz, /readyz and
/metrics are read (the recommendation latency histogram counted the request across gunicorn's
processes; the training duration, LLM tokens, guard repairs and queue depth are there). Then a
second training run is started and the worker is killed with SIGKILL mid-training: the old
version keeps serving, and a restarted worker gets the task back (visibility timeout) and takes
the run over to its end. Every process is killed at teardown, whatever happened.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_server import FakeOpenAI, Reply, schema_labels
from tests.worker import redis_available
from tests.worker import test_database_url as database_url_of_tests

from .conftest import PYTHON, REDIS_URL, REPO

# transaction=True: makes pytest-django create the test database when this file runs alone,
# without wrapping the test in a transaction the served processes could not see through.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
VISIBILITY_TIMEOUT = 8  # seconds before the killed worker's task is handed out again


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return f"--- {path.name}\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Response:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self):
        return json.loads(self.text)


class Web:
    """HTTP/1.1 to the stack on loopback (standard library only), as the TLS proxy in front
    would send it: with X-Forwarded-Proto: https."""

    def __init__(self, port: int, proxied: bool = True):
        self.port = port
        self.base_headers = {"X-Forwarded-Proto": "https"} if proxied else {}

    def _send(self, method: str, path: str, headers=None, json_body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        body = None
        all_headers = {**self.base_headers, **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=all_headers)
        return conn, conn.getresponse()

    def request(self, method: str, path: str, headers=None, json=None) -> Response:  # noqa: A002
        conn, r = self._send(method, path, headers, json)
        try:
            text = r.read().decode()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, text)
        finally:
            conn.close()

    def get(self, path: str, headers=None) -> Response:
        return self.request("GET", path, headers=headers)

    def events(self, path: str, headers=None, json=None) -> list[str]:  # noqa: A002
        """POST and read a server-sent event stream to its end: the event names."""
        conn, r = self._send("POST", path, headers, json)
        try:
            assert r.status == 200, r.read()
            return [
                line[7:].strip().decode()
                for line in iter(r.readline, b"")
                if line.startswith(b"event: ")
            ]
        finally:
            conn.close()


@dataclass
class Process:
    """A process in its own session (process group): stopped with its children, always."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Process:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.args, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group (the worker and its pool), as the OOM killer or a host would."""
        self._signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        self._signal(signal.SIGKILL)  # the leader may be gone and a child left: the group
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    web_port: int
    fake: FakeOpenAI
    processes: list[Process] = field(default_factory=list)
    web: Web | None = None

    @property
    def logs(self) -> str:
        return "\n".join(tail(p.log) for p in self.processes)

    def run(self, name: str, args: list[str], **extra: str) -> Process:
        env = {**self.env, **extra}
        process = Process(name, args, env, self.tmp / f"{name}.log").start()
        self.processes.append(process)
        return process

    def wait(self, what: str, predicate: Callable[[], object], timeout: float = 120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            for p in self.processes:
                if p.name == "web" and not p.alive:
                    raise AssertionError(f"gunicorn exited while waiting for {what}\n{self.logs}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs}")

    def compose_check(self, service: str, **replace: str) -> subprocess.CompletedProcess:
        """Run the service's health check from docker-compose.yml, pointed at this stack."""
        test = COMPOSE[service]["healthcheck"]["test"]
        if test[0] == "CMD-SHELL":
            args = shlex.split(test[1].replace("$$", "$"))
        else:
            args = list(test[1:])
        args = [PYTHON if a == "python" else a for a in args]
        if args[0] == "celery":
            args = [PYTHON, "-m", *args]
        joined = json.dumps(args)
        for old, new in replace.items():
            joined = joined.replace(old, new)
        return subprocess.run(
            json.loads(joined), cwd=REPO, env=self.env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def stack(movielens_db, django_db_blocker, tmp_path) -> Iterator[Stack]:
    assert redis_available(), f"Redis is needed at {REDIS_URL} (RECSITE_TEST_REDIS_URL)"
    name = f"stack-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        database_url = database_url_of_tests()
    fake = FakeOpenAI().__enter__()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CELERY_", "CACHE_", "LOG_", "PROMETHEUS_", "OPENAI_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        CELERY_QUEUE=name,
        CELERY_BROKER_KEY_PREFIX=f"{name}:",
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        CACHE_KEY_PREFIX=name,
        METRICS_TOKEN=secrets.token_urlsafe(24),
        LOG_LEVEL="INFO",
        RECOMMENDER_MODEL_DIR=str(tmp_path / "models"),
        RECOMMENDER_EVALUATE_ON_TRAIN="false",
        RECOMMENDER_RETRAIN_MINUTES="600",
        EMBEDDINGS_BACKEND="none",
        EMBEDDINGS_AUTO_REFRESH="false",
        OPENAI_BASE_URL=fake.url,
        OPENAI_API_KEY="test-key",
        LLM_MODEL="fake-model",
        LLM_TIMEOUT_SECONDS="10",
        LLM_CACHE_SECONDS="0",
        CHAT_ITEM_PROFILES="false",
        API_THROTTLE_AUTH="5/min",
    )
    web_port = free_port()
    s = Stack(tmp=tmp_path, env=env, web_port=web_port, fake=fake)
    try:
        collect = subprocess.run(
            [PYTHON, "manage.py", "collectstatic", "--noinput"], cwd=REPO, env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert collect.returncode == 0, collect.stderr
        yield s
    finally:
        for process in reversed(s.processes):
            process.stop()
        fake.__exit__(None, None, None)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{name}*"):
            client.delete(key)
        left = [p.name for p in s.processes if p.alive]
        assert not left, f"still running after teardown: {left}"


def web_command(stack: Stack) -> list[str]:
    args = shlex.split(COMPOSE["web"]["command"])
    assert args[0] == "gunicorn"
    return [PYTHON, "-m", *args]


def worker_command(stack: Stack) -> list[str]:
    args = shlex.split(COMPOSE["worker"]["command"].replace("${CELERY_CONCURRENCY:-2}", "1"))
    return [PYTHON, "-m", *args, "-n", f"{stack.env['CELERY_QUEUE']}@%h"]


def beat_command(stack: Stack) -> list[str]:
    args = shlex.split(COMPOSE["beat"]["command"])
    args[args.index("--schedule") + 1] = str(stack.tmp / "beat-schedule")
    args[args.index("--pidfile") + 1] = str(stack.tmp / "beat.pid")
    return [PYTHON, "-m", *args]


def start_worker(stack: Stack, name: str) -> tuple[Process, int]:
    port = free_port()
    worker = stack.run(
        name, worker_command(stack),
        PROMETHEUS_MULTIPROC_DIR=str(stack.tmp / f"prom-{name}"), CELERY_METRICS_PORT=str(port),
    )  # fmt: skip
    stack.wait(f"{name} ready", lambda: " ready." in worker.log.read_text(errors="replace"))
    node = f"{stack.env['CELERY_QUEUE']}@{socket.gethostname()}"
    ping = stack.compose_check("worker", **{"celery@$HOSTNAME": node})
    assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
    return worker, port


def metrics(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_stack_serves_trains_and_survives_a_killed_worker(stack, django_db_blocker):  # noqa: C901, PLR0915
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from recommender.models import ModelVersion

    s = stack
    with django_db_blocker.unblock():
        ModelVersion.objects.all().delete()
        User = get_user_model()
        User.objects.filter(username="stack_staff").delete()
        tokens = {
            n: Token.objects.get_or_create(user=User.objects.get(username=f"ml_{n}"))[0].key
            for n in (1, 2, 3)
        }

    # the staff account, as an operator creates it (hashed with the production hasher)
    created = subprocess.run(
        [PYTHON, "manage.py", "createsuperuser", "--noinput", "--username", "stack_staff",
         "--email", "staff@example.org"],
        cwd=REPO, env={**s.env, "DJANGO_SUPERUSER_PASSWORD": "staff-pass-123"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    # --- start: gunicorn, the worker, beat ------------------------------------------------------
    web = s.run(
        "web", web_command(s),
        GUNICORN_BIND=f"127.0.0.1:{s.web_port}", WEB_CONCURRENCY="2", GUNICORN_THREADS="4",
        PROMETHEUS_MULTIPROC_DIR=str(s.tmp / "prom-web"),
    )  # fmt: skip
    s.web = Web(s.web_port)
    worker, worker_port = start_worker(s, "worker")
    beat = s.run("beat", beat_command(s))

    def up() -> bool:
        try:
            return s.web.get("/healthz").status_code == 200
        except OSError:
            return False

    s.wait("gunicorn", up, timeout=60)
    web_check = s.compose_check("web", **{"127.0.0.1:8000": f"127.0.0.1:{s.web_port}"})
    assert web_check.returncode == 0, web_check.stderr

    def api(method: str, path: str, token: str | None = None, **kw) -> Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Token {token}"
        return s.web.request(method, path, headers=headers, json=kw.get("json"))

    def scrape() -> dict:
        r = s.web.get("/metrics", headers={"Authorization": f"Bearer {s.env['METRICS_TOKEN']}"})
        assert r.status_code == 200, r.text
        return metrics(r.text)

    def drained() -> None:
        """Queue and unacked set empty. A run longer than the test's 8 s visibility timeout is
        handed out a second time (a no-op: the run is done) before it is: wait for that."""
        queue = ("recsite_celery_queue_length", (("queue", s.env["CELERY_QUEUE"]),))
        unacked = ("recsite_celery_unacked_messages", ())
        s.wait("the queue to drain", lambda: (m := scrape())[queue] == 0 and m[unacked] == 0, 60)

    def version(pk: int) -> dict:
        r = api("GET", f"/api/v1/staff/model-versions/{pk}/", staff)
        assert r.status_code == 200, r.text
        return r.json()

    # production settings are in force: plain HTTP is redirected, the probe is not
    plain = Web(s.web_port, proxied=False).get("/api/v1/ping/")
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
    assert s.web.get("/metrics").status_code == 401

    # no model yet: alive, not ready, and /readyz says why
    r = s.web.get("/readyz")
    assert r.status_code == 503 and r.json()["failed"] == ["model"], r.text
    assert r.json()["checks"]["redis"] == {"ok": True, "uses": ["broker", "cache"]}

    # --- staff train a first model through the API ------------------------------------------------
    r = api(
        "POST",
        "/api/v1/auth/token/",
        json={"username": "stack_staff", "password": "staff-pass-123"},
    )
    assert r.status_code == 200, r.text
    staff = r.json()["token"]
    r = api("POST", "/api/v1/staff/training-runs/", staff, json={"algorithm": "wedlae"},
            headers={"X-Request-ID": "stack-train-1"})  # fmt: skip
    assert r.status_code == 202, r.text
    assert r.headers["x-request-id"] == "stack-train-1"
    v1 = r.json()["id"]
    first = s.wait(
        "the first version", lambda: (v := version(v1))["status"] in ("active", "failed") and v
    )
    assert first["status"] == "active", first
    assert first["timings"]["total"] > 0

    r = s.web.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["model"] == {"ok": True, "version": v1, "algorithm": "wedlae"}

    # --- recommendations over HTTP, counted in the latency histogram across processes ----------
    before = scrape()
    count_key = ("recsite_recommendation_duration_seconds_count", ())
    r = api("GET", "/api/v1/me/recommendations/", tokens[1])
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["model_version"] == v1 and listing["count"] == 20
    assert all(rec["evidence"] and rec["reason"] for rec in listing["results"])
    after = scrape()
    assert after[count_key] == before.get(count_key, 0) + 1
    assert after[("recsite_recommendation_duration_seconds_sum", ())] > before.get(
        ("recsite_recommendation_duration_seconds_sum", ()), 0
    )
    view = ("recsite_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "api:recommendations")))  # fmt: skip
    assert after[view] == 1

    # --- a chat answer over HTTP, the LLM answer repaired by the guard -------------------------------
    def rerank(request):
        first_label = schema_labels(request)[0]
        picks = [
            {"label": "C999", "reason": "not a candidate"},
            {"label": first_label, "reason": "A lighter take on what you like."},
            {"label": first_label, "reason": "the same again"},
        ]
        return Reply(content=json.dumps({"intro": "Here are some picks.", "picks": picks}))

    s.fake.push(Reply(content=""), rerank)  # understanding: no tool calls; then the rerank
    r = api("POST", "/api/v1/conversations/", tokens[1], json={})
    assert r.status_code == 201, r.text
    conversation = r.json()["id"]
    r = api("POST", f"/api/v1/conversations/{conversation}/messages/", tokens[1],
            json={"text": "something like Alien but funnier"})  # fmt: skip
    assert r.status_code == 201, r.text
    turn = r.json()
    assert turn["produced_by"] == "llm"
    answer = turn["message"]
    assert answer["text"] == "Here are some picks." and len(answer["results"]) == 6
    assert answer["repairs"]["outside_candidates"] == 1 and answer["repairs"]["duplicate"] == 1
    # the same, streamed as server-sent events through gunicorn (default LLM answer)
    events = s.web.events(
        f"/api/v1/conversations/{conversation}/messages/stream/",
        headers={"Authorization": f"Token {tokens[1]}", "X-Request-ID": "stack-chat-stream"},
        json={"text": "more like the second one"},
    )
    assert events[0] == "intro" and events[-1] == "done" and events.count("rec") >= 1

    # --- home page: templates and the hashed static files of the production storage -------------
    r = s.web.get("/")
    assert r.status_code == 200 and "/static/" in r.text
    css = [p for p in r.text.split('"') if p.startswith("/static/") and p.endswith(".css")]
    assert css and s.web.get(css[0]).status_code == 200

    # --- throttle counters are in Redis, shared by the processes -------------------------------------
    statuses = [
        api("POST", "/api/v1/auth/token/", json={"username": "stack_staff", "password": "wrong"}).status_code
        for _ in range(5)
    ]  # fmt: skip
    assert statuses == [400, 400, 400, 400, 429], statuses  # 5/min, one used by the staff login
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    assert list(client.scan_iter(f"{s.env['CACHE_KEY_PREFIX']}:1:throttle_auth_*"))

    # --- /metrics: training, LLM, guard, queue; the worker's own task metrics ---------------------------
    m = scrape()
    assert m[("recsite_model_active_version", (("algorithm", "wedlae"),))] == v1
    assert m[("recsite_training_last_duration_seconds", (("algorithm", "wedlae"), ("stage", "total")))] == first["timings"]["total"]  # fmt: skip
    assert m[("recsite_training_last_duration_seconds", (("algorithm", "wedlae"), ("stage", "fit")))] > 0  # fmt: skip
    assert m[("recsite_training_running", ())] == 0
    assert m[("recsite_llm_requests_total", (("mode", "complete"), ("outcome", "ok")))] == 2
    assert m[("recsite_llm_requests_total", (("mode", "stream"), ("outcome", "ok")))] == 2
    assert m[("recsite_llm_tokens_total", (("type", "prompt"),))] == 4 * 120  # the fake's usage
    assert m[("recsite_llm_tokens_total", (("type", "completion"),))] == 4 * 40
    assert m[("recsite_llm_request_duration_seconds_count", (("mode", "stream"),))] == 2
    assert m[("recsite_chat_guard_repairs_total", (("kind", "outside_candidates"),))] == 1
    assert m[("recsite_chat_guard_repairs_total", (("kind", "duplicate"),))] == 1
    assert m[("recsite_chat_turns_total", (("produced_by", "llm"),))] == 2
    assert m[("recsite_metrics_source_up", (("source", "redis"),))] == 1
    drained()
    w = metrics(Web(worker_port, proxied=False).get("/metrics").text)
    # once, or twice if a slow run outlived the (short) visibility timeout: the copy is a no-op
    assert (
        w[("recsite_task_duration_seconds_count", (("outcome", "ok"), ("task", "model_train")))]
        >= 1
    )

    # --- JSON logs with request ids, from web and from the worker -----------------------------------
    # every line gunicorn and Django wrote is JSON; each request is logged once, by us
    web_lines = [json.loads(line) for line in web.log.read_text().splitlines() if line.strip()]
    assert not [r for r in web_lines if r["logger"] == "gunicorn.access"]
    access = [r for r in web_lines if r.get("logger") == "recsite.request" and r.get("request_id") == "stack-train-1"]  # fmt: skip
    assert (
        len(access) == 1
        and access[0]["status"] == 202
        and access[0]["path"] == "/api/v1/staff/training-runs/"
    )
    streamed = [r for r in web_lines if r.get("request_id") == "stack-chat-stream"]
    assert streamed and streamed[-1]["streamed"] is True
    worker_lines = [
        json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")
    ]
    done = [r for r in worker_lines if r["logger"] == "recommender.tasks"]
    assert done and done[0]["request_id"] == "stack-train-1" and done[0]["status"] == "active"

    # --- beat is up and its compose health check passes ------------------------------------------
    assert beat.alive, tail(beat.log)
    beat_check = s.compose_check("beat", **{"/tmp/celerybeat.pid": str(s.tmp / "beat.pid")})
    assert beat_check.returncode == 0, beat_check.stderr

    # --- a second run, and the worker killed in the middle of it ------------------------------------
    r = api("POST", "/api/v1/staff/training-runs/", staff, json={"algorithm": "session_ease"})
    assert r.status_code == 202, r.text
    v2 = r.json()["id"]
    assert v2 != v1
    running = s.wait(
        "the second run to be training",
        lambda: (v := version(v2))["status"] == "training" and v["progress"] > 0 and v,
        timeout=120,
    )
    worker.kill()
    assert not worker.alive
    killed = version(v2)
    assert killed["status"] == "training" and killed["progress"] < 1.0, killed
    with django_db_blocker.unblock():
        owner = ModelVersion.objects.get(pk=v2).claimed_by
    assert owner.startswith(socket.gethostname() + ":")

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    # the pool process that claimed the run dies with its group (reaped by init a moment later)
    # (claimed_by is host:pid:start)
    s.wait("the claiming process to be gone", lambda: gone(int(owner.split(":")[1])), 30)

    # the old version keeps serving, a fresh user's list included
    r = api("GET", "/api/v1/me/recommendations/", tokens[2])
    assert r.status_code == 200 and r.json()["model_version"] == v1 and r.json()["count"] == 20
    r = s.web.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["model"]["version"] == v1
    m = scrape()
    assert m[("recsite_training_running", ())] == 1
    assert m[("recsite_celery_unacked_messages", ())] == 1  # the killed worker's task
    assert 0 < m[("recsite_training_progress_ratio", ())] < 1

    # --- a restarted worker gets the task back and takes the run over ---------------------------
    worker2, _ = start_worker(s, "worker2")
    done = s.wait(
        "the second run to finish on the restarted worker",
        lambda: (v := version(v2))["status"] in ("active", "failed") and v,
        timeout=240,
    )
    assert done["status"] == "active", done
    assert version(v1)["status"] == "retired"
    assert f"taking over training run v{v2} from dead process {owner}" in worker2.log.read_text()
    r = api("GET", "/api/v1/me/recommendations/", tokens[3])
    assert r.status_code == 200 and r.json()["model_version"] == v2
    m = scrape()
    assert m[("recsite_model_active_version", (("algorithm", "session_ease"),))] == v2
    assert m[("recsite_training_running", ())] == 0
    drained()
    assert running["progress"] > 0
    assert web.alive and beat.alive and worker2.alive, s.logs
