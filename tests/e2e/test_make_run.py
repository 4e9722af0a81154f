"""Issue #18, point 10: ``make run`` (scripts/run.sh) serves the site as a person uses it: DEBUG
off (a 404 lists no URL patterns), static files served, and the background embedder reaped when
it ends (no zombie process left behind).

The script runs for real against a database of its own in the embedded PostgreSQL, with the
embedder on the ``none`` backend so that it finishes at once (the zombie appeared exactly when it
finished under an exec'd server).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command) of every process below ``pid``."""
    # -ww: without a terminal ps cuts each line at 80 columns, and a deep checkout's path
    # leaves no room for the command's name.
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(None, 3) for line in out.splitlines() if line.strip()]
    children: dict[int, list[tuple[int, str, str]]] = {}
    for row in rows:
        cpid, ppid, stat, args = int(row[0]), int(row[1]), row[2], row[3] if len(row) > 3 else ""
        children.setdefault(ppid, []).append((cpid, stat, args))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child[0])
    return found


@pytest.fixture(scope="module")
def served() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "RECSITE_DB_NAME": "recsite_runcheck",
        "EMBEDDINGS_BACKEND": "none",
        "WEB_CONCURRENCY": "1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA": "",
    }
    env.pop("DJANGO_DEBUG", None)
    venv = Path(sys.executable).parents[1]
    log = open(ROOT / "var" / "run-check.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh", str(venv)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    if proc.poll() is not None:
        pytest.fail(f"run.sh ended: {(ROOT / 'var' / 'run-check.log').read_text()[-2000:]}")
    yield proc, f"http://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def test_10_make_run_serves_without_debug_pages_and_with_static_files(served, browser):
    _proc, base = served
    page = browser.new_page()
    response = page.goto(f"{base}/no-such-page/")
    assert response.status == 404
    text = page.locator("body").inner_text()
    assert "URLconf" not in text and "admin/" not in text, "no debug page listing URL patterns"
    expect(page.locator("h1")).to_have_text("Page not found")
    css = page.goto(f"{base}/static/recsite/site.css")
    assert css.status == 200 and "text/css" in css.headers["content-type"]
    page.close()


def test_10_make_run_leaves_no_zombie(served):
    proc, _base = served
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not any("manage.py embed" in args for _p, _s, args in _descendants(proc.pid)):
            break
        time.sleep(0.5)
    time.sleep(1)  # the shell reaps a finished child when it next waits
    procs = _descendants(proc.pid)
    zombies = [p for p in procs if p[1].startswith("Z")]
    assert not zombies, zombies
    assert any("gunicorn" in args for _p, _s, args in procs), procs
