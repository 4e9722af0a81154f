"""The only place in the project that imports ``implicit`` (lazily, on first model use)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._threads import implicit_threads, refresh

__all__ = ["implicit_modules", "implicit_threads"]

_cache: dict[str, Any] = {}


def implicit_modules() -> dict[str, ModuleType]:
    """``{"als": implicit.cpu.als, "bpr": implicit.cpu.bpr, "nn": implicit.nearest_neighbours}``.

    The CPU classes are used directly so a CUDA build never switches device silently."""
    if not _cache:
        import implicit.cpu.als
        import implicit.cpu.bpr
        import implicit.nearest_neighbours

        _cache.update(als=implicit.cpu.als, bpr=implicit.cpu.bpr, nn=implicit.nearest_neighbours)
        refresh()  # let threadpoolctl see the OpenMP runtime implicit brought in
    return dict(_cache)
