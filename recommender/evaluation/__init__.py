"""Offline evaluation (``/work/shared/docs/EVALUATION.md``): pure Python (numpy + scipy), no
Django import, so a management command, a Celery task and ``benchmarks/`` can all use it.

- :mod:`.ratings_file`: reading a ratings file in the layouts public datasets ship;
- :mod:`.data`: the protocol's split, the training matrices;
- :mod:`.metrics`: fitting and scoring models on a split, the side-by-side table;
- :mod:`.fewshot`: the new-user protocol (k training interactions per tested user);
- :mod:`.compare`: EASE at its best penalty, the baseline the default is judged against.
"""

from .compare import QueryEASE, ease_best_lambda, ease_for
from .data import (
    MIN_INTERACTIONS_TO_TEST,
    NDCG_K,
    RECALL_K,
    TEST_FRACTION,
    Interactions,
    Split,
    TrainMatrix,
    build_timestamp_matrix,
    build_train_matrix,
    build_value_matrix,
    collapse_duplicates,
    n_test_for,
    split,
)
from .fewshot import fewshot_train, genres_by_item, load_genres, split_genres
from .metrics import (
    METRIC_KEYS,
    ModelLike,
    Scorer,
    evaluate,
    evaluate_models,
    format_rows,
    gini,
)
from .ratings_file import load_ratings_csv

__all__ = [
    "METRIC_KEYS",
    "MIN_INTERACTIONS_TO_TEST",
    "NDCG_K",
    "RECALL_K",
    "TEST_FRACTION",
    "Interactions",
    "QueryEASE",
    "ModelLike",
    "Scorer",
    "Split",
    "TrainMatrix",
    "build_timestamp_matrix",
    "build_train_matrix",
    "build_value_matrix",
    "collapse_duplicates",
    "ease_best_lambda",
    "ease_for",
    "evaluate",
    "evaluate_models",
    "fewshot_train",
    "format_rows",
    "gini",
    "load_genres",
    "genres_by_item",
    "split_genres",
    "load_ratings_csv",
    "n_test_for",
    "split",
]
