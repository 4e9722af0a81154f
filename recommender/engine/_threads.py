"""Thread control for BLAS (numpy/scipy) and implicit's OpenMP kernels.

The machines have 2 cores shared with other jobs, so every engine computation runs with at most
``max_threads()`` threads (default 2; ``RECSITE_ENGINE_THREADS`` overrides it).

- Our own dense linear algebra (EASE-family inverses, Gram matrices) runs inside
  ``blas_threads()``: BLAS limited to ``max_threads()``.
- implicit runs its own OpenMP thread pool (we pass ``num_threads=max_threads()``) and wants
  BLAS single-threaded underneath, otherwise the two pools oversubscribe the cores. Its
  ``check_blas_config()`` warns when BLAS has more than one thread *when a model is
  constructed*; every implicit model is constructed and used inside ``implicit_threads()``
  (BLAS limited to 1 thread), so the warning never fires and nothing is monkey-patched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

__all__ = ["max_threads", "blas_threads", "implicit_threads", "threads_for", "refresh"]

#: batches of at most this many users are scored single-threaded (see threads_for)
SMALL_BATCH = 32

_controller: ThreadpoolController | None = None


def _get_controller() -> ThreadpoolController:
    # Scanning the loaded libraries costs ~30 ms, so it is done once (not per request).
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def refresh() -> None:
    """Forget the scanned libraries (call after loading a new native library)."""
    global _controller
    _controller = None


def threads_for(n_rows: int) -> int:
    """Threads for scoring ``n_rows`` users: 1 for a small batch (a web request).

    Waking a second thread costs ~20-30 ms on a busy 2-core machine (measured: a 1-user
    ALS fold-in takes 27 ms with 2 OpenMP threads, 0.12 ms with one), far more than the
    work itself."""
    return 1 if n_rows <= SMALL_BATCH else max_threads()


def max_threads() -> int:
    """Thread budget of the engine: ``RECSITE_ENGINE_THREADS`` or min(2, CPU count)."""
    env = os.environ.get("RECSITE_ENGINE_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"RECSITE_ENGINE_THREADS must be an integer, got {env!r}") from None
    return max(1, min(2, os.cpu_count() or 1))


@contextmanager
def blas_threads(n: int | None = None) -> Iterator[None]:
    """Limit BLAS (OpenBLAS/MKL behind numpy and scipy) to ``n`` threads (default budget)."""
    with _get_controller().limit(limits=n or max_threads(), user_api="blas"):
        yield


@contextmanager
def implicit_threads() -> Iterator[None]:
    """BLAS single-threaded while implicit's own OpenMP pool does the parallel work."""
    with _get_controller().limit(limits=1, user_api="blas"):
        yield
