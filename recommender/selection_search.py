"""The candidates of model selection (``recommender.selection``) and how each is scored on
the validation slice: EASE / EDLAE penalty walks, the low-rank residual correction (on EASE and
on the popularity-scaled EASE), RP3beta, the session-window term, ALS,
the value-weighted twins of EDLAE and the session term, recency weights and two-part blends,
then the winner.

Item-item families score the validation users without their items x items matrix
(``engine.edlae_query_scores``, ``engine.rp3_query_scores``), which is what makes a search of a
dozen settings fit in a retrain.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import engine

__all__ = [
    "ALS_GRID",
    "ALS_MAX_DENSITY",
    "BLEND_MARGIN",
    "HEAD_MAX_USERS",
    "POP_EXPONENT",
    "RECENCY_GRID",
    "RECENCY_TAU",
    "Search",
    "Trial",
    "LOWRANK_GRID",
    "LOWRANK_MU",
    "LOWRANK_PRIMAL_MAX_ITEMS",
    "VALUE_WEIGHT",
    "als_family",
    "edlae_family",
    "head_families",
    "lowrank_family",
    "lowrank_gains",
    "ranking_metrics",
    "recency_and_blends",
    "rp3_family",
    "session_family",
    "values_family",
    "winner",
]

#: a blend or a recency weight must beat the simpler winner by this share of NDCG@10
BLEND_MARGIN = 0.01
# blends pair the best few families only: a blend must beat the best single model by
# BLEND_MARGIN, which two parts far below it never did on any dataset measured (docs/MODELS.md),
# and every pair of eight families cost 3 s of ml-latest-small's retrain
BLEND_FAMILIES = 4
#: the first is always tried (time-split quality hangs on it), the others within the budget
RECENCY_GRID = (1.0, 0.5, 2.0)
RECENCY_TAU = 10.0
#: x3 steps of a penalty walk in one direction (3^6 = 729x the starting penalty)
MAX_STEPS = 6
#: the popularity-scaled penalty family's exponent: ``lam`` per item grows as sqrt(popularity),
#: about 1 % over a uniform ``lam`` on sparse catalogs (engine.ease, docs/MODELS.md)
POP_EXPONENT = 0.5
#: the low-rank correction of EASE's residual (engine.lowrank): its penalty is this share of the
#: base's best ``lam``, and (rank, weight) take these values; with its parameters chosen on the
#: test part it gains 1.3-3.4 % on the sparse and play-count shapes, and 0.2-0.9 % more on the
#: popularity-scaled base (docs/MODELS.md, issue #15's third and fifth passes)
LOWRANK_MU = 0.25
LOWRANK_GRID = ((32, 1.0), (32, 1.5), (64, 1.0), (64, 1.5))
#: with at least as many users as items its factorisation costs about four EASE inverses
#: (engine.lowrank): above this many items the family is left out of the selection
LOWRANK_PRIMAL_MAX_ITEMS = 8_000
#: above the dense ceiling the head families score by Woodbury, a users x users inverse per
#: penalty: beyond this many users (a 400 MB matrix) the selection keeps to ALS
HEAD_MAX_USERS = 10_000
#: ALS settings (factors, regularisation), on BM25 confidences (IDF-weighted: a rare item's
#: interaction says more of a taste than a blockbuster's); a larger rank needs a larger penalty.
#: With BM25, 32 factors beat best-lambda EASE by 2-7 % on the sparse and play-count shapes,
#: where the unweighted 64 / 128 factors lost 5-20 % (docs/MODELS.md, issue #15's eighth pass)
ALS_GRID = ((32, 10.0), (64, 30.0), (128, 30.0))
#: below the dense ceiling ALS competes only on catalogs sparser than this (interactions over
#: users x items). On a denser one the item-item regressions have the co-occurrences: ALS lost
#: 3-25 % to best-lambda EASE on ml-latest-small (1.7 % dense) and the synthetic ml100k set
#: (6.3 %). Yet ``evaluate``'s nested slice (cut from a training part whose test items stay
#: hidden) put it ahead on ml100k: it led the slice by 1.2 % and lost 8.6 % on the test part
#: (docs/MODELS.md, eighth pass)
ALS_MAX_DENSITY = 0.01
#: how the value-weighted candidates weigh an interaction (``engine.values``)
VALUE_WEIGHT = "log1p"


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


def ranking_metrics(
    scores: np.ndarray, history: sp.csr_matrix, truth: sp.csr_matrix
) -> tuple[float, float]:
    """(NDCG@10, Recall@20) of score rows against held-out rows, history items excluded."""
    s = np.array(scores, dtype=np.float32)
    r, c = history.nonzero()
    s[r, c] = -np.inf
    k = min(20, s.shape[1])
    top = engine.top_k(s, k)
    dense_truth = truth.toarray() > 0
    hits = np.take_along_axis(dense_truth, top, axis=1)
    n_true = np.asarray(truth.getnnz(axis=1))
    ok = n_true > 0
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = (hits[:, :10] * discounts[: min(10, k)]).sum(axis=1)
    idcg = np.cumsum(discounts)[np.minimum(10, np.maximum(n_true, 1)) - 1]
    ndcg = float(np.mean((dcg / idcg)[ok])) if ok.any() else 0.0
    if not ok.any():
        return 0.0, 0.0
    recall = float(np.mean((hits.sum(axis=1) / np.minimum(20, np.maximum(n_true, 1)))[ok]))
    return ndcg, recall


class Search:
    """The trials of one selection: fits, scores and the time spent."""

    def __init__(self, X_fit, T_fit, queries, truth, budget: float, dense_max_items: int) -> None:
        self.X, self.T, self.truth = X_fit, T_fit, truth
        # the dense item x item candidates' ceiling (the site's RECOMMENDER_DENSE_MAX_ITEMS)
        self.dense_max_items = dense_max_items
        self.q = queries  # the validation users' fit histories (binary)
        self.T_q: sp.csr_matrix | None = None  # and their timestamps
        # the value weights of the fit part and of the queries (None: the site's values, if
        # any, weigh every interaction alike)
        self.W: sp.csr_matrix | None = None
        self.W_q: sp.csr_matrix | None = None
        self.trials: list[Trial] = []
        self.scores: dict[str, np.ndarray] = {}  # label -> validation scores (kept for blends)
        # the best setting of each item-item family: label -> (its trial, scores of any query)
        self.rescore: dict[str, tuple[Trial, Callable[[sp.csr_matrix], np.ndarray]]] = {}
        self.started = time.perf_counter()
        self.budget = budget
        # a search of the popular head (``head``): the catalog columns its X, queries and
        # scores have, and the queries over the whole catalog its metrics exclude
        self.columns: np.ndarray | None = None
        self.q_all: sp.csr_matrix = queries

    def head(self, columns: np.ndarray) -> Search:
        """A search of the catalog's ``columns`` only, recording into this one's trials: its
        candidates are scored over the whole catalog (the other items never recommended), as
        the refitted model restricted to the same head serves them."""
        sub = Search(
            self.X[:, columns].tocsr(),
            None,
            self.q[:, columns].tocsr(),
            self.truth,
            self.budget,
            self.dense_max_items,
        )
        sub.columns, sub.q_all, sub.trials, sub.started = columns, self.q, self.trials, self.started
        return sub

    def full_width(self, scores: np.ndarray) -> np.ndarray:
        if self.columns is None:
            return scores
        out = np.full((scores.shape[0], self.q_all.shape[1]), -np.inf, dtype=np.float32)
        out[:, self.columns] = scores
        return out

    def over_budget(self) -> bool:
        return time.perf_counter() - self.started > self.budget

    def record(self, label, family, algorithm, params, scores, started, keep=True) -> Trial:
        ndcg, recall = ranking_metrics(self.full_width(scores), self.q_all, self.truth)
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


def wedlae_params(
    s: Search, lam: float, dropout: float, exponent: float, **extra: Any
) -> dict[str, Any]:
    """A ``wedlae`` trial's parameters (unpruned, the site's dense ceiling), plus ``extra``."""
    return dict(
        lam=lam,
        dropout=dropout,
        user_exponent=exponent,
        neighbours=None,
        max_items=s.dense_max_items,
        **extra,
    )


def edlae_family(
    s: Search,
    n_items: int,
    exponent: float,
    dropout: float,
    family: str,
    pop_exponent: float = 0.0,
) -> None:
    """Walk ``lam`` on a log scale (x3 steps, then x1.7 around the best) for one EDLAE
    setting (``pop_exponent``: the popularity-scaled penalty of ``engine.ease``)."""
    Z = engine.user_weighted(s.X, exponent)
    diag = np.asarray(Z.multiply(Z).sum(axis=0)).ravel()
    base = float(max(np.mean(diag[diag > 0]) if np.any(diag > 0) else 1.0, 1e-3)) * 10.0
    tried: dict[float, float] = {}

    def run(lam: float) -> float:
        lam = float(f"{lam:.3g}")
        if lam in tried:
            return tried[lam]
        t0 = time.perf_counter()
        scores = engine.edlae_query_scores(
            Z, s.q, lam=lam, dropout=dropout, pop_exponent=pop_exponent
        )
        if exponent == 0 and dropout == 0 and pop_exponent == 0 and s.columns is None:
            algo, params = "ease", {"lam": lam, "max_items": s.dense_max_items}
        else:
            algo = "wedlae"
            extra = {"pop_exponent": pop_exponent} if pop_exponent else {}
            params = wedlae_params(s, lam, dropout, exponent, **extra)
        label = f"{family} lam={lam:g}"
        tried[lam] = s.record(label, family, algo, params, scores, t0).ndcg
        return tried[lam]

    # the walk always completes (at most MAX_STEPS a way): a walk the budget cut short on a
    # loaded machine chose lam 74 where 394 was the slice's best (synthetic sparse set)
    lam, step = base, 3.0
    best = run(lam)
    for direction in (step, 1.0 / step):
        for _ in range(MAX_STEPS):
            nxt = run(lam * direction)
            if nxt <= best:
                break
            lam, best = lam * direction, nxt
        if lam != base:
            break
    for f in (1.7, 1.0 / 1.7):
        run(lam * f)
    s.keep_best(
        family,
        lambda t: built_once(
            lambda: engine.edlae_query_scorer(
                Z, lam=t.params["lam"], dropout=dropout, pop_exponent=pop_exponent
            )
        ),
    )


def built_once(build: Callable[[], Callable[[sp.csr_matrix], np.ndarray]]) -> Callable:
    """A scorer made by ``build`` on its first call: a family's best setting is rescored once
    per recency weight (timestamps only), and its Woodbury factors are then computed once."""
    scorer = functools.cache(build)
    return lambda queries: scorer()(queries)


def lowrank_family(s: Search, base: str = "ease") -> None:
    """The best setting of the ``base`` family (EASE, or the popularity-scaled ``ease_pop``) plus
    the low-rank correction of its residual, one residual fit and a factorisation per rank (as
    the refitted model computes it): the validation scores are the base's, already computed,
    plus ``weight * (q Q V) V'``. Family ``ease_lowrank`` on EASE, ``ease_pop_lowrank`` on the
    popularity-scaled penalty."""
    n_users, n_items = s.X.shape
    if base not in s.rescore or (n_users >= n_items > LOWRANK_PRIMAL_MAX_ITEMS):
        return
    base_trial, _ = s.rescore[base]
    lam = float(base_trial.params["lam"])
    pop = float(base_trial.params.get("pop_exponent", 0.0))
    scores_base = s.scores[base_trial.label]
    family = f"{base}_lowrank"
    mu = float(f"{lam * LOWRANK_MU:.3g}")
    t0 = time.perf_counter()
    ranks = tuple(sorted({r for r, _ in LOWRANK_GRID}))
    fits = engine.residual_lowrank_ranks(s.X, lam=lam, mu=mu, ranks=ranks, pop_exponent=pop)
    factors = dict(zip(ranks, fits, strict=True))
    for rank, weight in LOWRANK_GRID:
        QV, V = factors[rank]
        scores = scores_base + np.float32(weight) * (np.asarray(s.q @ QV) @ V.T)
        params = dict(lam=lam, mu=mu, rank=rank, weight=weight, max_items=s.dense_max_items)
        if pop:
            params["pop_exponent"] = pop
        label = f"{family} lam={lam:g} r={rank} w={weight:g}"
        s.record(label, family, "ease_lowrank", params, scores, t0)
        t0 = time.perf_counter()
    s.keep_best(
        family,
        lambda t: built_once(
            lambda: engine.lowrank_query_scorer(
                s.X,
                *factors[t.params["rank"]],
                lam=lam,
                weight=t.params["weight"],
                pop_exponent=pop,
            )
        ),
    )


def lowrank_gains(s: Search) -> bool:
    """True when the low-rank correction of EASE beats EASE on the slice: only then is it
    tried on the popularity-scaled base too (a second residual fit; on catalogs where the
    correction loses, ml-latest-small and the dense synthetic set, it would lose there too)."""
    low, ease = s.best("ease_lowrank"), s.best("ease")
    return low is not None and ease is not None and low.ndcg > ease.ndcg


def values_family(s: Search, like: Trial | None) -> None:
    """The value-weighted twins of the best EDLAE setting ``like``: EDLAE on the value-weighted
    rows (``engine.values``), its ``lam`` walked from ``like``'s in x1.7 steps (weighted rows
    want a smaller one: 19 against 33 on ml-latest-small), scored with the weighted histories;
    with timestamps, the session-window term on its best. A site whose values carry taste
    (explicit ratings) wins on them; one whose values are noise loses on its slice."""
    if s.W is None or s.W_q is None or like is None:
        return
    p = like.params
    exponent, dropout = p.get("user_exponent", 0.0), p.get("dropout", 0.0)
    Z = engine.user_weighted(s.W, exponent)
    tried: dict[float, float] = {}

    def run(lam: float) -> float:
        lam = float(f"{lam:.3g}")
        if lam not in tried:
            t0 = time.perf_counter()
            scores = engine.edlae_query_scores(Z, s.W_q, lam=lam, dropout=dropout)
            params = wedlae_params(s, lam, dropout, exponent, value_weight=VALUE_WEIGHT)
            label = f"edlae_values lam={lam:g}"
            tried[lam] = s.record(label, "edlae_values", "wedlae", params, scores, t0).ndcg
        return tried[lam]

    lam = float(p["lam"])
    best = run(lam)
    start = lam
    for step in (1 / 1.7, 1.7):
        for _ in range(MAX_STEPS):
            nxt = run(lam * step)
            if nxt <= best:
                break
            lam, best = float(f"{lam * step:.3g}"), nxt
        if lam != start:
            break
    if s.T is None:
        s.keep_best(
            "edlae_values",
            lambda t: built_once(
                lambda: engine.edlae_query_scorer(Z, lam=t.params["lam"], dropout=dropout)
            ),
        )
        return
    # with timestamps the walk only finds the session term's ``lam``: its recency weights are
    # the session term's to try (a recency weight on the weighted EDLAE did not win anywhere and
    # costs a Woodbury scoring each)
    for t in s.trials:
        if t.family == "edlae_values":
            s.scores.pop(t.label, None)
    t0 = time.perf_counter()
    window = dict(window=30, stride=15, window_weight=0.3, window_exponent=0.5)
    Zs = engine.session_design(s.W, s.T, user_exponent=exponent, **window)
    scorer = engine.edlae_query_scorer(Zs, lam=lam, dropout=dropout)
    scores = scorer(s.W_q)
    params = dict(
        lam=lam,
        dropout=dropout,
        user_exponent=exponent,
        **window,
        recency=0.0,
        recency_tau=RECENCY_TAU,
        max_items=s.dense_max_items,
        value_weight=VALUE_WEIGHT,
    )
    s.record(f"session_values lam={lam:g}", "session_values", "session_ease", params, scores, t0)
    s.keep_best("session_values", lambda t: scorer)


def rp3_family(s: Search) -> None:
    for n, (alpha, beta) in enumerate((a, b) for a in (0.7, 1.0) for b in (0.3, 0.5, 0.7)):
        if n and s.over_budget():
            break
        t0 = time.perf_counter()
        scores = engine.rp3_query_scores(s.X, s.q, alpha=alpha, beta=beta)
        params = dict(alpha=alpha, beta=beta, K=None, max_items=s.dense_max_items)
        s.record(f"rp3beta a={alpha:g} b={beta:g}", "rp3beta", "rp3beta", params, scores, t0)
    s.keep_best(
        "rp3beta",
        lambda t: (
            lambda Q: engine.rp3_query_scores(
                s.X, Q, alpha=t.params["alpha"], beta=t.params["beta"]
            )
        ),
    )


def session_family(s: Search, like: Trial) -> None:
    """The session-window Gram term on top of the best EDLAE setting (timestamps only)."""
    p = like.params
    exponent, dropout = p.get("user_exponent", 0.0), p.get("dropout", 0.0)
    for weight in (0.3,):
        t0 = time.perf_counter()
        window = dict(window=30, stride=15, window_weight=weight, window_exponent=0.5)
        Z = engine.session_design(s.X, s.T, user_exponent=exponent, **window)
        # the validation rows' scores without the items x items matrix (as the penalty walks
        # score): 3.7 s against 4.9 s for ml-latest-small's 5.7k rows of users and windows
        scorer = engine.edlae_query_scorer(Z, lam=p["lam"], dropout=dropout)
        scores = scorer(s.q)
        params = dict(
            lam=p["lam"],
            dropout=dropout,
            user_exponent=exponent,
            **window,
            recency=0.0,
            recency_tau=RECENCY_TAU,
            max_items=s.dense_max_items,
        )
        label = f"session w={weight:g} lam={p['lam']:g}"
        s.record(label, "session", "session_ease", params, scores, t0)
        s.keep_best("session", lambda t, scorer=scorer: scorer)


def head_families(s: Search) -> None:
    """A catalog above the dense ceiling: EASE, the popularity-scaled penalty and the low-rank
    correction on each, fitted on the ceiling's worth of the most popular items (``wedlae`` and
    ``ease_lowrank`` restrict themselves to that head when refitted). Only while the users are
    few enough for the Woodbury scoring (HEAD_MAX_USERS): a larger site keeps to ALS."""
    if s.X.shape[0] > HEAD_MAX_USERS:
        return
    head = engine.popular_head(s.X, s.dense_max_items)
    sub = s.head(head) if head is not None else s
    n_items = sub.X.shape[1]
    edlae_family(sub, n_items, 0.0, 0.0, "ease")
    edlae_family(sub, n_items, 0.0, 0.0, "ease_pop", POP_EXPONENT)
    lowrank_family(sub)
    if lowrank_gains(sub):
        lowrank_family(sub, "ease_pop")


def als_family(s: Search) -> None:
    """ALS on BM25 confidences, up :data:`ALS_GRID` while the slice improves; below the dense
    ceiling only on a catalog sparser than :data:`ALS_MAX_DENSITY`."""
    n_users, n_items = s.X.shape
    if n_items <= s.dense_max_items and s.X.nnz > ALS_MAX_DENSITY * n_users * n_items:
        return
    best = None
    for n, (factors, reg) in enumerate(ALS_GRID):
        if n and s.over_budget():
            return
        t0 = time.perf_counter()
        params = {"factors": factors, "regularization": reg, "weighting": "bm25"}
        model = engine.get_model("als", **params).fit(s.X)
        scores = model.score_users(s.q)
        label = f"als bm25 f={factors} reg={reg:g}"
        trial = s.record(label, "als", "als", model.params, scores, t0, keep=False)
        if best is not None and trial.ndcg <= best.ndcg:
            return
        best = trial


def blend_part(trial: Trial, weight: float) -> dict[str, Any]:
    params = {k: v for k, v in trial.params.items() if k != "value_weight"}
    if trial.algorithm == "session_ease":
        params["recency"] = 0.0  # the blend weighs recent history itself
    return {"model": trial.algorithm, "params": params, "weight": weight}


def with_recency(trial: Trial, recency: float) -> tuple[str, dict[str, Any]]:
    if trial.algorithm == "session_ease":
        return "session_ease", {**trial.params, "recency": recency, "recency_tau": RECENCY_TAU}
    params: dict[str, Any] = {
        "parts": [blend_part(trial, 1.0)],
        "recency": recency,
        "recency_tau": RECENCY_TAU,
    }
    if trial.params.get("value_weight"):  # the blend's input and history are weighted
        params["value_weight"] = trial.params["value_weight"]
    return "blend", params


def recency_and_blends(s: Search, timed: bool) -> None:
    """Recency weights on each family's best (timestamps only), then two-part blends of the
    BLEND_FAMILIES best families' best at the best recency, weights on the validation slice."""
    by_r: dict[float, dict[str, np.ndarray]] = {0.0: {}}
    for family, (trial, _) in s.rescore.items():
        by_r[0.0][family] = s.scores[trial.label]
    scales = {f: engine.score_scale(sc) for f, sc in by_r[0.0].items()}
    if timed:
        for n, r in enumerate(RECENCY_GRID):
            if n and s.over_budget():
                break
            Q = engine.recency_history(s.q, s.T_q, r, RECENCY_TAU)
            QW = engine.recency_history(s.W_q, s.T_q, r, RECENCY_TAU) if s.W_q is not None else Q
            by_r[r] = {}
            for family, (trial, rescore) in s.rescore.items():
                t0 = time.perf_counter()
                scores = rescore(QW if trial.params.get("value_weight") else Q)
                algo, params = with_recency(trial, r)
                s.record(f"{trial.label} rec={r:g}", family, algo, params, scores, t0, keep=False)
                by_r[r][family] = scores
    rec_trials = [t for t in s.trials if " rec=" in t.label]
    best_r = 0.0
    if rec_trials:
        top = max(rec_trials, key=lambda t: t.ndcg)
        best_r = float(top.label.rsplit("rec=", 1)[1])
    pool = by_r.get(best_r, by_r[0.0])
    # a blend scores one history: the value-weighted families (their own history) stay out
    ndcg = {t.label: t.ndcg for t in s.trials}

    def at_best_r(family: str) -> float:
        label = s.rescore[family][0].label
        return ndcg.get(f"{label} rec={best_r:g}" if best_r else label, 0.0)

    eligible = [f for f in pool if not s.rescore[f][0].params.get("value_weight")]
    families = sorted(sorted(eligible, key=at_best_r, reverse=True)[:BLEND_FAMILIES])
    for i, a in enumerate(families):
        for b in families[i + 1 :]:
            ta, tb = s.rescore[a][0], s.rescore[b][0]
            for w in (0.2, 0.35, 0.5):
                t0 = time.perf_counter()
                mixed = (1 - w) * pool[a] / scales[a] + w * pool[b] / scales[b]
                params = {
                    "parts": [blend_part(ta, 1 - w), blend_part(tb, w)],
                    "recency": best_r,
                    "recency_tau": RECENCY_TAU,
                }
                label = f"blend {a}+{b} w={w:g}" + (f" rec={best_r:g}" if best_r else "")
                s.record(label, "blend", "blend", params, mixed, t0, keep=False)


def complexity(trial: Trial) -> int:
    p = trial.params
    parts = len(p.get("parts", [None]))
    return parts - 1 + (1 if p.get("recency") else 0)


def winner(s: Search) -> Trial:
    """The best NDCG@10, each blend part and a recency weight discounted by BLEND_MARGIN."""
    return max(s.trials, key=lambda t: t.ndcg * (1 - BLEND_MARGIN * complexity(t)))
