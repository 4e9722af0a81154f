"""The embedded PostgreSQL: started on demand, shared by processes, consistent after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import psycopg
    from recsite import embedded_db
    url = embedded_db.database_url(Path(sys.argv[1]), "probe")
    with psycopg.connect(url) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        started = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()[0]
        ext = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name='vector'").fetchone()[0]
    print(json.dumps({"postmaster": embedded_db.postmaster_pid(Path(sys.argv[1])),
                      "started": started, "backend": pid, "vector": ext}))
    """
)


def _env(pgdata: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RECSITE_PGDATA"] = str(pgdata)
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture
def pgdata():
    base = Path("/tmp") / f"recsite-pgtest-{os.getpid()}"
    subprocess.run(["rm", "-rf", str(base)], check=False)
    yield base / "pgdata"
    from recsite import embedded_db

    embedded_db.stop(Path(settings.BASE_DIR), base / "pgdata")
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_two_processes_start_one_server_and_share_it(pgdata):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE, str(settings.BASE_DIR)],
            env=_env(pgdata),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=settings.BASE_DIR,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert (pgdata / "PG_VERSION").read_text().strip() == "16"
    # one postmaster, started once, serving both processes on separate backends
    assert results[0]["postmaster"] == results[1]["postmaster"] is not None
    assert results[0]["started"] == results[1]["started"]
    assert results[0]["backend"] != results[1]["backend"]
    assert results[0]["vector"] == 1
    # the server outlives its clients: a third process reuses it
    third = subprocess.run(
        [sys.executable, "-c", PROBE, str(settings.BASE_DIR)],
        env=_env(pgdata),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
    )
    assert json.loads(third.stdout.strip().splitlines()[-1])["started"] == results[0]["started"]


def test_a_killed_client_leaves_the_database_consistent(pgdata):
    writer = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        import psycopg
        from recsite import embedded_db
        url = embedded_db.database_url(Path(sys.argv[1]), "probe")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (n int)")
            conn.execute("INSERT INTO t VALUES (1)")
        conn = psycopg.connect(url)
        conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        print("inserted", flush=True)
        time.sleep(60)  # killed here, mid-transaction
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", writer, str(settings.BASE_DIR)],
        env=_env(pgdata),
        stdout=subprocess.PIPE,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert proc.stdout.readline().strip() == "inserted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)
    reader = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import psycopg
        from recsite import embedded_db
        url = embedded_db.database_url(Path(sys.argv[1]), "probe")
        with psycopg.connect(url) as conn:
            print(conn.execute("SELECT count(*) FROM t").fetchone()[0])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", reader, str(settings.BASE_DIR)],
        env=_env(pgdata),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "1"  # the committed row only


def test_django_uses_postgres_with_pgvector(db):
    from django.db import connection

    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone()[0].startswith("0.")
        cursor.execute("SELECT '[1,2,3]'::vector <#> '[1,1,1]'::vector")
        assert cursor.fetchone()[0] == -6.0
