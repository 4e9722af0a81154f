"""The embedded PostgreSQL 16 + pgvector used when ``DATABASE_URL`` is unset.

``pgserver`` ships PostgreSQL binaries (with pgvector) inside a wheel. We start one server per
data directory (``var/pgdata`` by default) and *leave it running* when the process exits
(``cleanup_mode=None``): the web process, Django's autoreloader child, management commands and
Celery workers all call :func:`database_url`, and every caller after the first finds the running
postmaster through its ``postmaster.pid`` and reuses it.  pgserver serialises start-up with an
inter-process file lock, so two processes starting at the same moment still get one server.

The server listens on a Unix socket only (no TCP port to collide with).  A killed client leaves
nothing to repair; a killed postmaster is restarted on the next call, and PostgreSQL's own WAL
recovery keeps the data consistent.  ``manage.py embedded_db stop`` stops it cleanly.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_DB_NAME = "recsite"


def data_dir(base_dir: Path) -> Path:
    return Path(os.environ.get("RECSITE_PGDATA", base_dir / "var" / "pgdata")).resolve()


def _server(pgdata: Path):  # -> pgserver.PostgresServer
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        return pgserver.get_server(pgdata, cleanup_mode=None)


def database_url(base_dir: Path, db_name: str = DEFAULT_DB_NAME) -> str:
    """Start (or reuse) the embedded server and return a URL for ``db_name``, creating it."""
    pgdata = data_dir(base_dir)
    server = _server(pgdata)
    uri = server.get_uri()
    socket_dir = uri.split("host=", 1)[1]
    _ensure_database(server, db_name)
    return f"postgresql://postgres@/{db_name}?host={socket_dir}"


def _ensure_database(server, db_name: str) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        # Serialise check-and-create across processes starting at the same moment.
        conn.execute("SELECT pg_advisory_lock(7357001)")
        try:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [db_name]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{db_name}"')
                logger.info("embedded PostgreSQL: created database %s", db_name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(7357001)")


def postmaster_pid(base_dir: Path, pgdata: Path | None = None) -> int | None:
    import pgserver.utils

    info = pgserver.utils.PostmasterInfo.read_from_pgdata(pgdata or data_dir(base_dir))
    return info.pid if info is not None and info.is_running() else None


def stop(base_dir: Path, pgdata: Path | None = None) -> bool:
    """Stop the embedded server cleanly (fast shutdown). Returns False if it was not running."""
    from pgserver._commands import pg_ctl

    pgdata = pgdata or data_dir(base_dir)
    if postmaster_pid(base_dir, pgdata) is None:
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        return False
    return True
