"""A process-local cache of Python objects, kept by reference: for values whose key says
everything they depend on (a model version, the catalog's fingerprint), read on every request.

Django's cache pickles each value on ``set`` and unpickles it on every ``get``: for a list of
model rows that is most of what a similar-items request costs. Here a ``get`` returns the very
object stored, so callers treat what they get as read-only. Each process keeps its own entries
(as the local-memory cache does); the keys make a stale entry unreachable, the size bound and the
expiry free it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from weakref import WeakSet

_ALL: WeakSet[Memo] = WeakSet()


def clear_all() -> None:
    """Empty every memo of this process (tests that start from a cold process)."""
    for memo in list(_ALL):
        memo.clear()


class Memo:
    """A thread-safe LRU of at most ``size`` entries, each kept at most ``seconds``."""

    def __init__(self, size: int, seconds: float) -> None:
        self.size = size
        self.seconds = seconds
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        _ALL.add(self)

    def get(self, key: Hashable) -> Any | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def set(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
