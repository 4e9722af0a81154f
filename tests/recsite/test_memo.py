"""The process-local memo: values by reference, least recently used out first, expiry."""

from __future__ import annotations

import threading
import time

from recsite import memo
from recsite.memo import Memo


def test_a_value_comes_back_as_the_same_object():
    cache = Memo(size=4, seconds=60)
    rows = [("a", 1)]
    cache.set("k", rows)
    assert cache.get("k") is rows
    assert cache.get("other") is None


def test_the_least_recently_used_entry_goes_first():
    cache = Memo(size=2, seconds=60)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.set("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_an_entry_expires():
    cache = Memo(size=2, seconds=0.05)
    cache.set("a", 1)
    time.sleep(0.1)
    assert cache.get("a") is None
    assert len(cache) == 0


def test_clear_all_empties_every_memo():
    first, second = Memo(size=2, seconds=60), Memo(size=2, seconds=60)
    first.set("a", 1)
    second.set("b", 2)
    memo.clear_all()
    assert first.get("a") is None and second.get("b") is None


def test_threads_never_see_more_than_the_bound():
    cache = Memo(size=50, seconds=60)

    wrong: list[tuple] = []

    def fill(offset: int) -> None:
        for i in range(2000):
            cache.set((offset, i), (offset, i))
            for key in ((offset, i), (offset, i // 2), ((offset + 1) % 4, i)):
                value = cache.get(key)
                if value is not None and value != key:
                    wrong.append((key, value))

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50
    assert wrong == []
