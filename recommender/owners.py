"""Which process owns a training run: ``host:pid:start``, and whether that process still lives.

A redelivered task takes over a run only when its owner is gone; the start time tells a live
owner from a new process that was given a dead owner's pid (containers restart with low pids).
"""

from __future__ import annotations

import os
import socket


def _process_start(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process from /proc, None if there is
    no such process or no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return ("?", "")
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    return (fields[0], fields[19]) if len(fields) > 19 else ("?", "")


def process_owner() -> str:
    """This process, as ``host:pid:start``."""
    pid = os.getpid()
    started = _process_start(pid)
    return f"{socket.gethostname()}:{pid}:{started[1] if started else ''}"


def owner_alive(owner: str) -> bool:
    """False only when the owner is on this host and its process is gone (or a zombie)."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: only the heartbeat can tell
    if os.path.isdir("/proc"):
        seen = _process_start(int(pid))
        if seen is None or seen[0] in ("Z", "X"):  # gone, or a zombie nobody reaped yet
            return False
        return not (start and seen[1] and seen[1] != start)  # else: the pid was reused
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
