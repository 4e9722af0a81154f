"""What training learns from: every positive interaction in PostgreSQL, as the engine's matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.db import connection

from catalog.models import POSITIVE_KINDS
from recsite.exceptions import ApplicationError

from . import evaluation


@dataclass
class TrainingData:
    X: sp.csr_matrix  # users x items, 1.0 per positive interaction
    user_ids: np.ndarray  # row -> auth_user.id
    item_ids: np.ndarray  # column -> catalog_item.id
    interactions: evaluation.Interactions  # the same rows, for the offline protocol
    timestamps: sp.csr_matrix  # seconds, with exactly the sparsity of X
    values: sp.csr_matrix  # the rating, NaN for a like (no value); the sparsity of X

    @property
    def n_interactions(self) -> int:
        return int(self.X.nnz)


def interactions_read() -> evaluation.Interactions:
    """Every positive interaction (any rating, any like), one per (user, item), with its latest
    timestamp and its value: the rating (a rated and liked item keeps its rating), NaN for a
    like, which has none. The protocol counts each as one positive; only a value-weighted model
    reads the values (``engine.values``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, item_id, max(extract(epoch FROM timestamp))::bigint, max(value)"
            " FROM catalog_interaction WHERE kind = ANY(%s) GROUP BY user_id, item_id",
            [list(POSITIVE_KINDS)],
        )
        rows = cursor.fetchall()
    if not rows:
        raise ApplicationError("there are no interactions to train on yet")
    arr = np.asarray([r[:3] for r in rows], dtype=np.int64)
    values = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float32)
    return evaluation.Interactions(
        users=arr[:, 0], items=arr[:, 1], timestamps=arr[:, 2], values=values
    )


def training_data_read() -> TrainingData:
    interactions = interactions_read()
    matrix = evaluation.build_train_matrix(interactions)
    return TrainingData(
        X=matrix.X,
        user_ids=matrix.user_ids,
        item_ids=matrix.item_ids,
        interactions=interactions,
        timestamps=evaluation.build_timestamp_matrix(interactions, matrix),
        values=evaluation.build_value_matrix(interactions, matrix),
    )
