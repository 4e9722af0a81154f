"""Model selection per site: which model, with which parameters, serves *this* catalog.

A default tuned on one dataset loses on others (docs/MODELS.md: the same EDLAE penalty that
beats EASE on ml-latest-small loses to a well-tuned EASE on a denser movie set), so every
retrain picks again on the site's own interactions:

1. a validation slice is held out of the training data: each user with at least 5
   interactions loses 20 % of them, the latest ones where timestamps exist (the site serves
   the future), else a random 20 % (``validation_split``);
2. the candidate families are fitted on the rest with a small search over their main
   hyper-parameters, and each scores the validation users (NDCG@10, Recall@20):
   EASE and EDLAE (penalty ``lam`` walked on a log scale, user weighting and dropout), the
   session-window Gram term and the recency weight where timestamps exist, RP3beta
   (``alpha``, ``beta``) and ALS (factors, regularisation);
3. blends of the best item-item families (weights on the validation slice) compete with
   them; a blend must beat the best single model by ``BLEND_MARGIN`` to be chosen;
4. the winner's ``(algorithm, params)`` is returned; the caller refits it on all the data.

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

from . import engine

__all__ = [
    "AUTO",
    "Selection",
    "SelectedModel",
    "Trial",
    "select",
    "fit_selected",
    "validation_split",
    "has_time_order",
]

#: the algorithm name that asks a training run for the per-site selection
AUTO = "auto"
VALIDATION_FRACTION = 0.2
MIN_INTERACTIONS = 5
#: a blend or a recency weight must beat the simpler winner by this share of NDCG@10
BLEND_MARGIN = 0.01
RECENCY_GRID = (0.5, 1.0, 2.0)
RECENCY_TAU = 10.0
#: catalogs above this are too large for a dense item x item model: ALS only
DENSE_MAX_ITEMS = 20_000


@dataclass(frozen=True)
class Trial:
    """One candidate's figures on the validation slice."""

    label: str
    family: str
    algorithm: str
    params: dict[str, Any]
    ndcg: float
    recall: float
    seconds: float


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
    rows = np.repeat(np.arange(X.shape[0]), counts)
    keep = ~held

    def part(mask: np.ndarray, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data[mask], (rows[mask], X.indices[mask])), shape=X.shape)

    X_fit = part(keep, X.data)
    T_fit = part(keep, T.data) if T is not None else None
    truth = part(held, np.ones(X.nnz, dtype=np.float32))[eligible]
    return X_fit.astype(np.float32), T_fit, eligible, truth.tocsr()


def _metrics(
    scores: np.ndarray, history: sp.csr_matrix, truth: sp.csr_matrix
) -> tuple[float, float]:
    """(NDCG@10, Recall@20) of score rows against held-out rows, history items excluded."""
    s = np.array(scores, dtype=np.float32)
    r, c = history.nonzero()
    s[r, c] = -np.inf
    top = np.argpartition(-s, 20, axis=1)[:, :20]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, axis=1), axis=1), axis=1)
    dense_truth = truth.toarray() > 0
    hits = np.take_along_axis(dense_truth, top, axis=1)
    n_true = np.asarray(truth.getnnz(axis=1))
    ok = n_true > 0
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = (hits[:, :10] * discounts).sum(axis=1)
    idcg = np.cumsum(discounts)[np.minimum(10, np.maximum(n_true, 1)) - 1]
    ndcg = float(np.mean((dcg / idcg)[ok])) if ok.any() else 0.0
    recall = float(np.mean((hits.sum(axis=1) / np.minimum(20, np.maximum(n_true, 1)))[ok]))
    return ndcg, recall


class _Search:
    """The trials of one selection: fits, scores and the time spent."""

    def __init__(self, X_fit, T_fit, queries, truth, budget: float) -> None:
        self.X, self.T, self.truth = X_fit, T_fit, truth
        self.q = queries  # the validation users' fit histories (binary)
        self.T_q: sp.csr_matrix | None = None  # and their timestamps
        self.trials: list[Trial] = []
        self.scores: dict[str, np.ndarray] = {}  # label -> validation scores (kept for blends)
        # the best setting of each item-item family: label -> (its trial, scores of any query)
        self.rescore: dict[str, tuple[Trial, Callable[[sp.csr_matrix], np.ndarray]]] = {}
        self.started = time.perf_counter()
        self.budget = budget

    def over_budget(self) -> bool:
        return time.perf_counter() - self.started > self.budget

    def record(self, label, family, algorithm, params, scores, started, keep=True) -> Trial:
        ndcg, recall = _metrics(scores, self.q, self.truth)
        trial = Trial(label, family, algorithm, params, ndcg, recall, time.perf_counter() - started)
        self.trials.append(trial)
        if keep:
            self.scores[label] = scores
        return trial

    def best(self, family: str | None = None) -> Trial | None:
        pool = [t for t in self.trials if family is None or t.family == family]
        return max(pool, key=lambda t: t.ndcg) if pool else None

    def keep_best(self, family: str, scorer: Callable[[Trial], Callable]) -> None:
        """Drop the family's other scores; remember how to rescore its best setting."""
        best = self.best(family)
        for t in self.trials:
            if t.family == family and (best is None or t.label != best.label):
                self.scores.pop(t.label, None)
        if best is not None:
            self.rescore[family] = (best, scorer(best))


def _edlae_family(s: _Search, n_items: int, exponent: float, dropout: float, family: str) -> None:
    """Walk ``lam`` on a log scale (x3 steps, then x1.7 around the best) for one EDLAE
    setting."""
    Z = engine.user_weighted(s.X, exponent)
    diag = np.asarray(Z.multiply(Z).sum(axis=0)).ravel()
    base = float(max(np.mean(diag[diag > 0]) if np.any(diag > 0) else 1.0, 1e-3)) * 10.0
    tried: dict[float, float] = {}

    def run(lam: float) -> float:
        lam = float(f"{lam:.3g}")
        if lam in tried:
            return tried[lam]
        t0 = time.perf_counter()
        scores = engine.edlae_query_scores(Z, s.q, lam=lam, dropout=dropout)
        if exponent == 0 and dropout == 0:
            algo, params = "ease", {"lam": lam, "max_items": DENSE_MAX_ITEMS}
        else:
            algo = "wedlae"
            params = dict(
                lam=lam,
                dropout=dropout,
                user_exponent=exponent,
                neighbours=None,
                max_items=DENSE_MAX_ITEMS,
            )
        label = f"{family} lam={lam:g}"
        tried[lam] = s.record(label, family, algo, params, scores, t0).ndcg
        return tried[lam]

    lam, step = base, 3.0
    best = run(lam)
    for direction in (step, 1.0 / step):
        while not s.over_budget():
            nxt = run(lam * direction)
            if nxt <= best:
                break
            lam, best = lam * direction, nxt
        if lam != base:
            break
    for f in (1.7, 1.0 / 1.7):
        if not s.over_budget():
            run(lam * f)
    s.keep_best(
        family,
        lambda t: lambda Q: engine.edlae_query_scores(Z, Q, lam=t.params["lam"], dropout=dropout),
    )


def _rp3_family(s: _Search) -> None:
    for n, (alpha, beta) in enumerate((a, b) for a in (0.7, 1.0) for b in (0.3, 0.5, 0.7)):
        if n and s.over_budget():
            break
        t0 = time.perf_counter()
        scores = engine.rp3_query_scores(s.X, s.q, alpha=alpha, beta=beta)
        params = dict(alpha=alpha, beta=beta, K=None, max_items=DENSE_MAX_ITEMS)
        s.record(f"rp3beta a={alpha:g} b={beta:g}", "rp3beta", "rp3beta", params, scores, t0)
    s.keep_best(
        "rp3beta",
        lambda t: (
            lambda Q: engine.rp3_query_scores(
                s.X, Q, alpha=t.params["alpha"], beta=t.params["beta"]
            )
        ),
    )


def _session_family(s: _Search, like: Trial) -> None:
    """The session-window Gram term on top of the best EDLAE setting (timestamps only)."""
    p = like.params
    exponent, dropout = p.get("user_exponent", 0.0), p.get("dropout", 0.0)
    for weight in (0.3,):
        t0 = time.perf_counter()
        window = dict(window=30, stride=15, window_weight=weight, window_exponent=0.5)
        Z = engine.session_design(s.X, s.T, user_exponent=exponent, **window)
        B = engine.ease.sparse_dual_ease(Z, p["lam"], dropout)
        scores = np.asarray(s.q @ B, dtype=np.float32)
        params = dict(
            lam=p["lam"],
            dropout=dropout,
            user_exponent=exponent,
            **window,
            recency=0.0,
            recency_tau=RECENCY_TAU,
            max_items=DENSE_MAX_ITEMS,
        )
        label = f"session w={weight:g} lam={p['lam']:g}"
        s.record(label, "session", "session_ease", params, scores, t0)
        s.keep_best("session", lambda t, B=B: lambda Q: np.asarray(Q @ B, dtype=np.float32))


def _als_family(s: _Search) -> None:
    for n, (factors, reg) in enumerate(((64, 0.05), (128, 0.1))):
        if n and s.over_budget():
            return
        t0 = time.perf_counter()
        params = {"factors": factors, "regularization": reg}
        model = engine.get_model("als", **params).fit(s.X)
        scores = model.score_users(s.q)
        s.record(f"als f={factors} reg={reg:g}", "als", "als", model.params, scores, t0, keep=False)


def _part(trial: Trial, weight: float) -> dict[str, Any]:
    params = dict(trial.params)
    if trial.algorithm == "session_ease":
        params["recency"] = 0.0  # the blend weighs recent history itself
    return {"model": trial.algorithm, "params": params, "weight": weight}


def _with_recency(trial: Trial, recency: float) -> tuple[str, dict[str, Any]]:
    if trial.algorithm == "session_ease":
        return "session_ease", {**trial.params, "recency": recency, "recency_tau": RECENCY_TAU}
    return "blend", {"parts": [_part(trial, 1.0)], "recency": recency, "recency_tau": RECENCY_TAU}


def _recency_and_blends(s: _Search, timed: bool) -> None:
    """Recency weights on each family's best (timestamps only), then two-part blends of the
    families' best at the best recency, weights on the validation slice."""
    by_r: dict[float, dict[str, np.ndarray]] = {0.0: {}}
    for family, (trial, _) in s.rescore.items():
        by_r[0.0][family] = s.scores[trial.label]
    scales = {f: engine.score_scale(sc) for f, sc in by_r[0.0].items()}
    if timed:
        for r in RECENCY_GRID:
            if s.over_budget():
                break
            Q = engine.recency_history(s.q, s.T_q, r, RECENCY_TAU)
            by_r[r] = {}
            for family, (trial, rescore) in s.rescore.items():
                t0 = time.perf_counter()
                scores = rescore(Q)
                algo, params = _with_recency(trial, r)
                s.record(f"{trial.label} rec={r:g}", family, algo, params, scores, t0, keep=False)
                by_r[r][family] = scores
    rec_trials = [t for t in s.trials if " rec=" in t.label]
    best_r = 0.0
    if rec_trials:
        top = max(rec_trials, key=lambda t: t.ndcg)
        best_r = float(top.label.rsplit("rec=", 1)[1])
    pool = by_r.get(best_r, by_r[0.0])
    families = sorted(pool)
    for i, a in enumerate(families):
        for b in families[i + 1 :]:
            ta, tb = s.rescore[a][0], s.rescore[b][0]
            for w in (0.2, 0.35, 0.5):
                t0 = time.perf_counter()
                mixed = (1 - w) * pool[a] / scales[a] + w * pool[b] / scales[b]
                params = {
                    "parts": [_part(ta, 1 - w), _part(tb, w)],
                    "recency": best_r,
                    "recency_tau": RECENCY_TAU,
                }
                label = f"blend {a}+{b} w={w:g}" + (f" rec={best_r:g}" if best_r else "")
                s.record(label, "blend", "blend", params, mixed, t0, keep=False)


def _complexity(trial: Trial) -> int:
    p = trial.params
    parts = len(p.get("parts", [None]))
    return parts - 1 + (1 if p.get("recency") else 0)


def _winner(s: _Search) -> Trial:
    """The best NDCG@10, each blend part and a recency weight discounted by BLEND_MARGIN."""
    return max(s.trials, key=lambda t: t.ndcg * (1 - BLEND_MARGIN * _complexity(t)))


def select(
    X: sp.csr_matrix,
    timestamps: sp.csr_matrix | None = None,
    *,
    validation: str = "auto",
    seed: int = 0,
    budget_seconds: float = 20.0,
    progress: Callable[[float], None] | None = None,
) -> Selection:
    """Pick the model for the users x items matrix ``X`` (see the module docstring).
    ``validation``: "auto" (time where ``timestamps`` order the interactions, else random),
    "time" or "random". ``budget_seconds`` caps the search (the candidates are tried in order
    of their expected value; whatever the budget, every family gets its first setting)."""
    started = time.perf_counter()
    timed = has_time_order(timestamps)
    method = "time" if timed and validation in ("auto", "time") else "random"
    X = sp.csr_matrix(X, dtype=np.float32)
    X.data[:] = 1.0
    X_fit, T_fit, users, truth = validation_split(
        X, timestamps if timed else None, method=method, seed=seed
    )
    queries = X_fit[users]
    search = _Search(X_fit, T_fit, queries, truth, budget_seconds)
    search.T_q = T_fit[users] if T_fit is not None else None
    step = progress or (lambda f: None)
    n_items = X.shape[1]
    if n_items > DENSE_MAX_ITEMS:
        search.budget = float("inf")
        _als_family(search)
    else:
        _edlae_family(search, n_items, 0.0, 0.0, "ease")
        step(0.3)
        _edlae_family(search, n_items, 0.5, 0.1, "edlae")
        step(0.5)
        _rp3_family(search)
        step(0.6)
        if timed:
            _session_family(search, search.best("edlae") or search.best("ease"))
        step(0.8)
        _als_family(search)
        _recency_and_blends(search, timed)
    step(1.0)
    winner = _winner(search)
    return Selection(
        algorithm=winner.algorithm,
        params=winner.params,
        label=winner.label,
        validation=method,
        n_validation_users=len(users),
        trials=search.trials,
        seconds=time.perf_counter() - started,
    )


def fit_selected(
    selection: Selection,
    X: sp.csr_matrix,
    timestamps: sp.csr_matrix | None = None,
    progress: Callable[[float], None] | None = None,
) -> engine.Recommender:
    """The selected model, fitted on all of ``X`` (timestamps only where they order things)."""
    model = engine.get_model(selection.algorithm, **selection.params)
    if model.uses_timestamps and has_time_order(timestamps):
        return model.fit(X, progress=progress, timestamps=timestamps)  # type: ignore[call-arg]
    return model.fit(X, progress=progress)


class SelectedModel:
    """What ``evaluate`` measures as the default: ``fit`` runs :func:`select` on the training
    part of the split only, then refits the winner on all of it (as a retrain does)."""

    name = "selected"
    uses_timestamps = True

    def __init__(self, validation: str = "auto", seed: int = 0, budget_seconds: float = 20.0):
        self.validation, self.seed, self.budget_seconds = validation, seed, budget_seconds
        self.selection: Selection | None = None
        self.model: engine.Recommender | None = None
        self._timed = False

    def fit(
        self,
        X: sp.csr_matrix,
        progress: Callable[[float], None] | None = None,
        timestamps: sp.csr_matrix | None = None,
    ) -> SelectedModel:
        self.selection = select(
            X,
            timestamps,
            validation=self.validation,
            seed=self.seed,
            budget_seconds=self.budget_seconds,
        )
        self._timed = has_time_order(timestamps)
        self.model = fit_selected(self.selection, X, timestamps)
        if progress is not None:
            progress(1.0)
        return self

    def score_users(
        self, X_rows: sp.csr_matrix, timestamps_rows: sp.csr_matrix | None = None
    ) -> np.ndarray:
        if self.model is None:
            raise engine.NotFittedError("SelectedModel is not fitted")
        if self.model.uses_timestamps and self._timed and timestamps_rows is not None:
            return self.model.score_users(X_rows, timestamps_rows=timestamps_rows)  # type: ignore[call-arg]
        return self.model.score_users(X_rows)
