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

from threadpoolctl import threadpool_limits

__all__ = ["max_threads", "blas_threads", "implicit_threads"]


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
    with threadpool_limits(limits=n or max_threads(), user_api="blas"):
        yield


@contextmanager
def implicit_threads() -> Iterator[None]:
    """BLAS single-threaded while implicit's own OpenMP pool does the parallel work."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
