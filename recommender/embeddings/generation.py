"""A count of this process's embedding writes: readers' per-process caches (the cold-item ids)
start over at once after a write here, and within their time-to-live after another process's."""

from __future__ import annotations

import itertools
import threading

_lock = threading.Lock()
_counter = itertools.count(1)
_current = 0


def writes_bump() -> None:
    """Called by every write of item vectors."""
    global _current
    with _lock:
        _current = next(_counter)


def writes_generation() -> int:
    return _current
