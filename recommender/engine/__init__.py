"""recsite's recommendation engine: pure Python (numpy, scipy, implicit, threadpoolctl).

No Django imports: usable from a management command, a Celery task and ``benchmarks/``.
This package is the only code in the project that imports ``implicit``, and it never hands
out implicit's objects - only the dataclasses of :mod:`recommender.engine.base`.

Typical use::

    from recommender.engine import build_matrix, get_model, DEFAULT_MODEL
    m = build_matrix(user_ids, item_ids)             # external ids -> CSR + id maps
    model = get_model(DEFAULT_MODEL).fit(m.X, progress=report)
    recs = model.recommend(m.history(user_item_ids), n=20, exclude=hidden_indices)
    why = model.explain(m.history(user_item_ids), recs[0].item, top=5)
    table = model.neighbour_table(k=200)             # -> SQL rows (item, neighbour, weight)
"""

from ._threads import blas_threads, implicit_threads, max_threads
from .base import (
    CatalogTooLargeError,
    Contribution,
    FactorRecommender,
    ItemItemRecommender,
    NeighbourTable,
    NotFittedError,
    Recommender,
    Scored,
    history_matrix,
)
from .blend import Blend, score_scale
from .data import InteractionMatrix, build_matrix, positions_of
from .ease import (
    EASE,
    HeadRestricted,
    WeightedEDLAE,
    ease_weights,
    edlae_query_scorer,
    edlae_query_scores,
    popular_head,
    user_weighted,
)
from .factor import ALS, BPR
from .knn import ItemKNN, RP3Beta, rp3_query_scores
from .lowrank import (
    EASELowRank,
    lowrank_query_scorer,
    lowrank_query_scores,
    residual_lowrank,
    residual_lowrank_ranks,
)
from .mips import NormOrder, top_inner_products, top_unseen
from .popularity import Popularity
from .registry import DEFAULT_MODEL, DEFAULT_PARAMS, MODEL_NAMES, default_model, get_model
from .temporal import SessionEASE, recency_history, session_design
from .topk import top_k
from .values import VALUE_WEIGHTS, has_value_signal, row_value_weights, value_weights

__all__ = [
    "ALS",
    "Blend",
    "SessionEASE",
    "edlae_query_scorer",
    "popular_head",
    "HeadRestricted",
    "edlae_query_scores",
    "recency_history",
    "rp3_query_scores",
    "score_scale",
    "session_design",
    "user_weighted",
    "VALUE_WEIGHTS",
    "has_value_signal",
    "row_value_weights",
    "value_weights",
    "BPR",
    "CatalogTooLargeError",
    "Contribution",
    "DEFAULT_MODEL",
    "DEFAULT_PARAMS",
    "EASE",
    "EASELowRank",
    "lowrank_query_scorer",
    "lowrank_query_scores",
    "residual_lowrank",
    "residual_lowrank_ranks",
    "FactorRecommender",
    "InteractionMatrix",
    "positions_of",
    "ItemItemRecommender",
    "ItemKNN",
    "MODEL_NAMES",
    "NeighbourTable",
    "NormOrder",
    "NotFittedError",
    "Popularity",
    "RP3Beta",
    "Recommender",
    "Scored",
    "WeightedEDLAE",
    "blas_threads",
    "build_matrix",
    "default_model",
    "ease_weights",
    "get_model",
    "history_matrix",
    "implicit_threads",
    "max_threads",
    "top_inner_products",
    "top_k",
    "top_unseen",
]
