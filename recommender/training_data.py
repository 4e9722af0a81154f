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

    @property
    def n_interactions(self) -> int:
        return int(self.X.nnz)


def interactions_read() -> evaluation.Interactions:
    """Every positive interaction (any rating, any like), one per (user, item), with its latest
    timestamp: the implicit-feedback input of training and of the evaluation protocol."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, item_id, max(extract(epoch FROM timestamp))::bigint"
            " FROM catalog_interaction WHERE kind = ANY(%s) GROUP BY user_id, item_id",
            [list(POSITIVE_KINDS)],
        )
        rows = cursor.fetchall()
    if not rows:
        raise ApplicationError("there are no interactions to train on yet")
    arr = np.asarray(rows, dtype=np.int64)
    return evaluation.Interactions(
        users=arr[:, 0], items=arr[:, 1], timestamps=arr[:, 2], values=np.ones(len(arr), np.float32)
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
    )
