"""How numpy vectors travel to and from pgvector columns: one text form in, two forms out."""

from __future__ import annotations

import numpy as np


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form of ``vector``: nine significant digits, which read back as the very
    float32 written (seven, float32's usual precision, can land one unit off), so the stored
    vectors are the floats the fitted model this process holds scores with."""
    return "[" + ",".join(f"{x:.9g}" for x in np.asarray(vector, dtype=np.float32).tolist()) + "]"


def sql_literal(value: str) -> str:
    """A string as an SQL literal, for the predicates of partial indexes: the planner matches
    an index only to a query that repeats its predicate as a literal, not as a parameter."""
    return "'" + value.replace("'", "''") + "'"


def vector_from_text(value) -> np.ndarray:  # noqa: ANN001 - raw cursors return pgvector's text
    """A vector read by a raw cursor (pgvector's text form) or by the ORM (a numpy array)."""
    if isinstance(value, str):
        return np.array(value.strip("[]").split(","), dtype=np.float32)
    return np.asarray(value, dtype=np.float32)


def vector_from_binary(packed: bytes) -> np.ndarray:
    """A vector read as ``vector_send(column)``: uint16 dimensions, uint16 unused, big-endian
    float32s. The binary form spares the server a float-to-text conversion per dimension."""
    packed = bytes(packed)
    dims = int.from_bytes(packed[:2], "big")
    return np.frombuffer(packed, dtype=">f4", count=dims, offset=4).astype(np.float32)
