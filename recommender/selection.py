"""Model selection per site: which model, with which parameters, serves *this* catalog.

A default tuned on one dataset loses on others (docs/MODELS.md: the same EDLAE penalty that
beats EASE on ml-latest-small loses to a well-tuned EASE on a denser movie set), so every
retrain picks again on the site's own interactions:

1. a validation slice is held out of the training data: each user with at least 5
   interactions loses 20 % of them, the latest ones where timestamps exist (the site serves
   the future), else a random 20 % (``validation_split``);
2. the candidate families are fitted on the rest with a small search over their main
   hyper-parameters, and each scores the validation users (NDCG@10, Recall@20):
   EASE, EASE with a popularity-scaled penalty (``pop_exponent``) and EDLAE (penalty ``lam``
   walked on a log scale, user weighting and dropout), the best EASE plus a low-rank
   correction fitted on its residual (``engine.lowrank``: rank and weight) and, where that
   correction beats EASE on the slice, the same correction on the best popularity-scaled
   setting, the
   session-window Gram term and the recency weight where timestamps exist, RP3beta
   (``alpha``, ``beta``) and ALS (factors, regularisation); where the interactions' values
   (ratings) weigh users' interactions differently, the value-weighted twins of the best
   EDLAE setting and of the session term (``engine.values``: fitted on and scoring the value
   weights, recorded as the ``value_weight`` parameter, which serving's history follows);
3. blends of the best item-item families (weights on the validation slice) compete with
   them; a blend must beat the best single model by ``BLEND_MARGIN`` to be chosen
   (the candidates and their scoring: ``recommender.selection_search``);
4. the winner's ``(algorithm, params)`` is returned; the caller refits it on all the data.

A catalog above the dense ceiling (``dense_max_items``) has ALS and, while its users are few
enough to score by Woodbury, EASE, the popularity-scaled penalty and their low-rank
corrections fitted on the ceiling's worth of its most popular items (the refitted model
restricts itself to the same head and never recommends the others).

Item-item families are scored on the validation users without their items x items matrix
(``engine.edlae_query_scores``, ``engine.rp3_query_scores``), which is what makes a search of
a dozen settings fit in a retrain. Pure functions of the training data (no Django).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import engine, selection_search
from .selection_search import VALUE_WEIGHT, Trial

__all__ = [
    "AUTO",
    "Selection",
    "SelectedModel",
    "Trial",
    "select",
    "fit_selected",
    "fit_model",
    "engine_params",
    "model_input",
    "VersionModel",
    "validation_split",
    "has_time_order",
]

#: the algorithm name that asks a training run for the per-site selection
AUTO = "auto"
# What a run may be asked to train: every model by name, or the selection. A blend needs its
# parts, which only the selection chooses, so it is not a name to ask for.
TRAINABLE: tuple[str, ...] = tuple(sorted([*(n for n in engine.MODEL_NAMES if n != "blend"), AUTO]))
VALIDATION_FRACTION = 0.2
MIN_INTERACTIONS = 5


@dataclass
class Selection:
    algorithm: str
    params: dict[str, Any]
    label: str
    validation: str  # "time" or "random"
    n_validation_users: int
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> list[dict[str, Any]]:
        """The validation table, best first (JSON-ready: the version's ``metrics``)."""
        rows = sorted(self.trials, key=lambda t: -t.ndcg)
        return [
            {
                "label": t.label,
                "family": t.family,
                "ndcg@10": round(t.ndcg, 5),
                "recall@20": round(t.recall, 5),
                "seconds": round(t.seconds, 2),
                "chosen": t.label == self.label,
            }
            for t in rows
        ]

    def report(self) -> dict[str, Any]:
        return {
            "chosen": self.label,
            "algorithm": self.algorithm,
            "validation": self.validation,
            "validation_users": self.n_validation_users,
            "seconds": round(self.seconds, 2),
            "table": self.table(),
        }


def has_time_order(timestamps: sp.csr_matrix | None) -> bool:
    """True when the timestamps order interactions at all (not missing, not all equal)."""
    if timestamps is None or timestamps.nnz < 2:
        return False
    data = timestamps.data
    return bool(np.any(data != data[0]))


def validation_split(
    X: sp.csr_matrix,
    timestamps: sp.csr_matrix | None,
    *,
    method: str,
    seed: int = 0,
    max_users: int | None = 1500,
) -> tuple[sp.csr_matrix, sp.csr_matrix | None, np.ndarray, sp.csr_matrix]:
    """(fit part of ``X``, its timestamps, validation user rows, their held-out items as a
    CSR with one row per validation user). ``method``: "time" (each user's latest 20 %,
    ties by item index) or "random" (``default_rng(seed)``). At most ``max_users`` users
    (a random subset) are validated, which bounds the cost on a large site."""
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    T = None
    if timestamps is not None:
        T = sp.csr_matrix(timestamps, dtype=np.float64)
        T.sort_indices()
    held, eligible = held_out(X, T, method=method, seed=seed, max_users=max_users)
    counts = np.diff(X.indptr)
    rows = np.repeat(np.arange(X.shape[0]), counts)
    keep = ~held

    def part(mask: np.ndarray, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data[mask], (rows[mask], X.indices[mask])), shape=X.shape)

    X_fit = part(keep, X.data)
    T_fit = part(keep, T.data) if T is not None else None
    truth = part(held, np.ones(X.nnz, dtype=np.float32))[eligible]
    return X_fit.astype(np.float32), T_fit, eligible, truth.tocsr()


def held_out(
    X: sp.csr_matrix,
    T: sp.csr_matrix | None,
    *,
    method: str,
    seed: int = 0,
    max_users: int | None = 1500,
) -> tuple[np.ndarray, np.ndarray]:
    """(per stored entry of ``X`` (sorted indices): held out for validation, the validated
    user rows): the choice :func:`validation_split` cuts by, for any matrix of the same
    sparsity (a site's values)."""
    rng = np.random.default_rng(seed)
    counts = np.diff(X.indptr)
    eligible = np.flatnonzero(counts >= MIN_INTERACTIONS)
    if max_users is not None and len(eligible) > max_users:
        eligible = np.sort(rng.choice(eligible, max_users, replace=False))
    held = np.zeros(X.nnz, dtype=bool)
    for u in eligible.tolist():
        a, b = X.indptr[u], X.indptr[u + 1]
        n_out = max(1, int(round(VALIDATION_FRACTION * (b - a))))
        if method == "time" and T is not None:
            order = np.lexsort((X.indices[a:b], T.data[a:b]))
            picked = order[-n_out:]
        else:
            picked = rng.permutation(b - a)[:n_out]
        held[a + picked] = True
    return held, eligible


def fit_values(
    X: sp.csr_matrix,
    T: sp.csr_matrix | None,
    values: sp.csr_matrix,
    method: str,
    seed: int,
    max_users: int | None,
) -> sp.csr_matrix:
    """The fit part of ``values`` (the sparsity of ``X``) as :func:`validation_split` cuts
    ``X``: the value weights are normalised on what the candidates are fitted on."""
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    V = sp.csr_matrix(values, dtype=np.float64, copy=True)
    V.sort_indices()
    if V.shape != X.shape or not (
        np.array_equal(V.indptr, X.indptr) and np.array_equal(V.indices, X.indices)
    ):
        raise ValueError("values must have exactly the sparsity of X")
    if T is not None:
        T = sp.csr_matrix(T, dtype=np.float64)
        T.sort_indices()
    held, _ = held_out(X, T, method=method, seed=seed, max_users=max_users)
    keep = ~held
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    indptr = np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=X.shape[0]))]
    return sp.csr_matrix((V.data[keep], V.indices[keep], indptr), shape=X.shape)


def dense_ceiling() -> int:
    """The dense item x item models' own refusal size (``EASE``'s default ``max_items``)."""
    return int(engine.get_model("ease").params["max_items"])


def select(
    X: sp.csr_matrix,
    timestamps: sp.csr_matrix | None = None,
    *,
    validation: str = "auto",
    seed: int = 0,
    budget_seconds: float = 30.0,
    max_users: int | None = 1500,
    progress: Callable[[float], None] | None = None,
    dense_max_items: int | None = None,
    values: sp.csr_matrix | None = None,
) -> Selection:
    """Pick the model for the users x items matrix ``X`` (see the module docstring).
    ``validation``: "auto" (time where ``timestamps`` order the interactions, else random),
    "time" or "random". ``budget_seconds`` caps the optional part of the search: the penalty
    walks always complete and every family gets its first setting (and the first recency
    weight); further RP3beta, ALS and recency settings are tried while time is left.
    ``dense_max_items``: above this many items ALS and the EASE families fitted on that many of
    the most popular items are the candidates (a site passes its RECOMMENDER_DENSE_MAX_ITEMS;
    None: the dense models' own ceiling). ``values``: the
    interactions' values with exactly the sparsity of ``X`` (NaN: none); where they weigh
    users' interactions differently (``engine.has_value_signal``) the value-weighted
    candidates compete too."""
    started = time.perf_counter()
    timed = has_time_order(timestamps)
    method = "time" if timed and validation in ("auto", "time") else "random"
    X = sp.csr_matrix(X, dtype=np.float32)
    X.data[:] = 1.0
    X_fit, T_fit, users, truth = validation_split(
        X, timestamps if timed else None, method=method, seed=seed, max_users=max_users
    )
    if len(users) == 0 or X.shape[1] < 2:
        # nobody to validate on (every user has fewer than 5 interactions): the fixed default
        model = engine.default_model()
        trial = Trial(
            f"{model.name} (no validation users)", "fixed", model.name, model.params, 0.0, 0.0, 0.0
        )
        return Selection(
            algorithm=trial.algorithm,
            params=trial.params,
            label=trial.label,
            validation=method,
            n_validation_users=0,
            trials=[trial],
            seconds=time.perf_counter() - started,
        )
    queries = X_fit[users]
    ceiling = dense_ceiling() if dense_max_items is None else int(dense_max_items)
    search = selection_search.Search(X_fit, T_fit, queries, truth, budget_seconds, ceiling)
    search.T_q = T_fit[users] if T_fit is not None else None
    if values is not None and engine.has_value_signal(values, VALUE_WEIGHT):
        V_fit = fit_values(X, timestamps if timed else None, values, method, seed, max_users)
        search.W = engine.value_weights(V_fit, VALUE_WEIGHT)
        search.W_q = search.W[users]
    step = progress or (lambda f: None)
    n_items = X.shape[1]
    if n_items > ceiling:
        search.budget = float("inf")
        selection_search.als_family(search)
        selection_search.head_families(search)
    else:
        selection_search.edlae_family(search, n_items, 0.0, 0.0, "ease")
        selection_search.edlae_family(
            search, n_items, 0.0, 0.0, "ease_pop", selection_search.POP_EXPONENT
        )
        selection_search.lowrank_family(search)
        if selection_search.lowrank_gains(search):
            selection_search.lowrank_family(search, "ease_pop")
        step(0.3)
        selection_search.edlae_family(search, n_items, 0.5, 0.1, "edlae")
        step(0.5)
        selection_search.rp3_family(search)
        step(0.6)
        if timed:
            selection_search.session_family(search, search.best("edlae") or search.best("ease"))
        if search.W is not None:
            selection_search.values_family(search, search.best("edlae") or search.best("ease"))
        step(0.8)
        selection_search.als_family(search)
        selection_search.recency_and_blends(search, timed)
    step(1.0)
    winner = selection_search.winner(search)
    return Selection(
        algorithm=winner.algorithm,
        params=winner.params,
        label=winner.label,
        validation=method,
        n_validation_users=len(users),
        trials=search.trials,
        seconds=time.perf_counter() - started,
    )


def engine_params(params: dict[str, Any]) -> dict[str, Any]:
    """A version's ``params`` as the engine model takes them: ``value_weight`` (the candidate
    was fitted and scores on value-weighted rows) is how its input is made, not a model's."""
    return {k: v for k, v in params.items() if k != "value_weight"}


def model_input(
    X: sp.csr_matrix, values: sp.csr_matrix | None, params: dict[str, Any]
) -> sp.csr_matrix:
    """The rows a model with ``params`` is fitted on and scores: ``X`` (binary), or the value
    weights of ``values`` (same sparsity) for a value-weighted version."""
    kind = params.get("value_weight")
    if not kind:
        return X
    if values is None:
        raise ValueError(f"a value-weighted model ({kind}) needs the interactions' values")
    return engine.value_weights(values, kind)


def fit_model(
    algorithm: str,
    params: dict[str, Any],
    X: sp.csr_matrix,
    timestamps: sp.csr_matrix | None = None,
    values: sp.csr_matrix | None = None,
    progress: Callable[[float], None] | None = None,
) -> engine.Recommender:
    """``algorithm`` with ``params`` (a version's), fitted on all of ``X`` (value-weighted where
    the params say so; timestamps only where they order things)."""
    model = engine.get_model(algorithm, **engine_params(params))
    X_in = model_input(X, values, params)
    if model.uses_timestamps and has_time_order(timestamps):
        return model.fit(X_in, progress=progress, timestamps=timestamps)  # type: ignore[call-arg]
    return model.fit(X_in, progress=progress)


def fit_selected(
    selection: Selection,
    X: sp.csr_matrix,
    timestamps: sp.csr_matrix | None = None,
    progress: Callable[[float], None] | None = None,
    values: sp.csr_matrix | None = None,
) -> engine.Recommender:
    """The selected model, fitted on all of ``X`` (see :func:`fit_model`)."""
    return fit_model(selection.algorithm, selection.params, X, timestamps, values, progress)


class VersionModel:
    """A version's ``(algorithm, params)`` as ``evaluation.evaluate`` measures it: fitted and
    scored on the rows serving gives it (value weights, recency weights)."""

    uses_timestamps = True
    uses_values = True

    def __init__(self, algorithm: str, params: dict[str, Any]) -> None:
        self.name, self.params = algorithm, dict(params)
        self.model: engine.Recommender | None = None
        self._timed = False

    def fit(
        self,
        X: sp.csr_matrix,
        progress: Callable[[float], None] | None = None,
        timestamps: sp.csr_matrix | None = None,
        values: sp.csr_matrix | None = None,
    ) -> VersionModel:
        self._timed = has_time_order(timestamps)
        self.model = fit_model(self.name, self.params, X, timestamps, values, progress)
        return self

    def score_users(
        self,
        X_rows: sp.csr_matrix,
        timestamps_rows: sp.csr_matrix | None = None,
        values_rows: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        if self.model is None:
            raise engine.NotFittedError(f"{self.name} is not fitted")
        X_rows = model_input(X_rows, values_rows, self.params)
        if self.model.uses_timestamps and self._timed and timestamps_rows is not None:
            return self.model.score_users(X_rows, timestamps_rows=timestamps_rows)  # type: ignore[call-arg]
        return self.model.score_users(X_rows)


class SelectedModel:
    """What ``evaluate`` measures as the default: ``fit`` runs :func:`select` on the training
    part of the split only (with the values, where the data has them), then refits the winner
    on all of it (as a retrain does)."""

    name = "selected"
    uses_timestamps = True
    uses_values = True

    def __init__(
        self,
        validation: str = "auto",
        seed: int = 0,
        budget_seconds: float = 30.0,
        dense_max_items: int | None = None,
    ):
        self.validation, self.seed, self.budget_seconds = validation, seed, budget_seconds
        self.dense_max_items = dense_max_items
        self.selection: Selection | None = None
        self.chosen: VersionModel | None = None

    @property
    def model(self) -> engine.Recommender | None:
        return self.chosen.model if self.chosen is not None else None

    def fit(
        self,
        X: sp.csr_matrix,
        progress: Callable[[float], None] | None = None,
        timestamps: sp.csr_matrix | None = None,
        values: sp.csr_matrix | None = None,
    ) -> SelectedModel:
        self.selection = select(
            X,
            timestamps,
            validation=self.validation,
            seed=self.seed,
            budget_seconds=self.budget_seconds,
            dense_max_items=self.dense_max_items,
            values=values,
        )
        chosen = VersionModel(self.selection.algorithm, self.selection.params)
        self.chosen = chosen.fit(X, timestamps=timestamps, values=values)
        if progress is not None:
            progress(1.0)
        return self

    def score_users(
        self,
        X_rows: sp.csr_matrix,
        timestamps_rows: sp.csr_matrix | None = None,
        values_rows: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        if self.chosen is None:
            raise engine.NotFittedError("SelectedModel is not fitted")
        return self.chosen.score_users(X_rows, timestamps_rows, values_rows)
