"""The chat protocol: simulated users hold scripted conversations with the real pipeline
(``chat.services``: candidates, guard, storage; the LLM at a configurable endpoint or none), and
each turn is scored against what the simulator asked, beside the CF-only list for the same user.

Figures per turn type (``scripts.TURN_TYPES``):

* hard: share of picks that satisfy what was asked for certain (a genre left out, a decade and
  a genre asked for) and are new to the user; goal 100 %.
* soft: share of picks in the genre wished for ("funnier" -> Comedy), also after the next turn.
* hits: held-out favourites among the picks, and among the CF-only list of the same length
  under the same hard constraints (goal: not below CF).
* why: the answer to "why did you suggest X?" gives the same reason and evidence as X's card.
* resolved: "the second one" / "why ... X" resolved to the item meant.
* anchored: picks whose reason names the item the turn is anchored on ("like Alien").
* latency: the whole turn (LLM included), p50 / p95.

Everything runs in one transaction that is rolled back: no simulated user, conversation or
interaction stays in the database.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from catalog.models import Interaction, Item
from recommender import engine
from recommender import selectors as rec_selectors
from recommender import services as rec_services
from recommender.models import ModelVersion
from recommender.types import Filters, Recommendation
from recsite.exceptions import ApplicationError

from ..services import conversation_create, message_post
from ..titles import TitleIndex, title_index, title_mentions
from .scripts import (
    NOUNS,
    SCRIPTS,
    TURN_TYPES,
    WISHES,
    Turn,
    decade_words,
    nameable,
    why_text,
    written_title,
)
from .users import SimUser, sim_users_create

POPULAR_REFERENCES = 10  # "like <X>": X among the user's best-known liked items


@dataclass
class TurnResult:
    kind: str
    text: str
    picks: int
    hard_ok: int | None = None  # picks that satisfy the hard constraints
    soft_ok: int | None = None  # picks in the wished genre
    hits: int | None = None
    hits_cf: int | None = None
    consistent: bool | None = None
    resolved: bool | None = None
    anchored: int | None = None
    ms: float = 0.0
    produced_by: str = ""


@contextmanager
def _settings(**values: Any) -> Iterator[None]:  # noqa: ANN401
    saved = {name: getattr(settings, name, None) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)


def llm_endpoint(base_url: str | None, api_key: str | None = None):  # noqa: ANN201
    """Point the chat at ``base_url`` (None: no LLM, the built-in path) for a ``with`` block."""
    return _settings(
        OPENAI_BASE_URL=base_url or None,
        OPENAI_API_KEY=(api_key or "simulation") if base_url else None,
    )


def _train_without(source_user_ids: list[int]) -> None:
    """Train the served model with the simulated users' originals left out, so that their
    held-out favourites are unknown to it (the simulated users' training rows stay in). The
    version serves from its rows (no weights file), so the rollback leaves nothing behind."""
    # the served model as it is (no per-site selection run: it would search for minutes)
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    served = active is not None and active.algorithm in engine.MODEL_NAMES
    algorithm = active.algorithm if served else engine.DEFAULT_MODEL
    params = dict(active.params or {}) if served else None
    Interaction.objects.filter(user_id__in=source_user_ids).delete()
    with _settings(RECOMMENDER_DENSE_MAX_ITEMS=0, RECOMMENDER_EVALUATE_ON_TRAIN=False):
        version = rec_services.training_start(
            trigger="evaluation", algorithm=algorithm, params=params
        )
        if version.status != ModelVersion.Status.PENDING:
            raise ApplicationError("a training run is in progress: evaluate when it is done")
        rec_services.model_train(version_id=version.pk)


def _pick(rng: np.random.Generator, values: list) -> Any:  # noqa: ANN401
    return values[int(rng.integers(len(values)))] if values else None


def _turn_like_but(sim: SimUser, items: dict[int, Item], index: TitleIndex) -> Turn | None:
    targets = [i for i in sim.favourites if any(g in WISHES for g in items[i].genres)]
    target = _pick(sim.rng, targets)
    if target is None:
        return None
    genre = _pick(sim.rng, sorted(g for g in items[target].genres if g in WISHES))
    liked = [items[i] for i in sim.liked if i in items and nameable(items[i], index)]
    pool = [i for i in liked if genre not in i.genres] or liked
    pool.sort(key=lambda i: (-index.popularity.get(i.pk, 0), i.pk))
    ref = _pick(sim.rng, pool[:POPULAR_REFERENCES])
    if ref is None:
        return None
    text = f"something like {written_title(ref, index)} but {WISHES[genre]}"
    return Turn("like_but", text, genre=genre, item_id=ref.pk)


def _turn_negation(previous: list[Recommendation], wished: str | None) -> Turn:
    counts = Counter(g for r in previous for g in r.item.genres if g in NOUNS and g != wished)
    genre = min(counts, key=lambda g: (-counts[g], g)) if counts else "Horror"
    return Turn("negation", f"not {NOUNS[genre]}", genre=genre)


def _turn_decade_genre(sim: SimUser, items: dict[int, Item]) -> Turn | None:
    targets = [
        i for i in sim.favourites if items[i].year and any(g in NOUNS for g in items[i].genres)
    ]
    target = _pick(sim.rng, targets)
    if target is None:
        return None
    item = items[target]
    genre = _pick(sim.rng, sorted(g for g in item.genres if g in NOUNS))
    words, start, end = decade_words(int(item.year))
    text = f"a {words} {NOUNS[genre]} film I haven't seen"
    return Turn("decade_genre", text, genre=genre, year_min=start, year_max=end)


def _turn_why(sim: SimUser, previous: list[Recommendation], index: TitleIndex) -> Turn | None:
    shown = [r.item for r in previous if nameable(r.item, index)]
    item = _pick(sim.rng, shown)
    if item is None:
        return None
    return Turn("why", why_text(item, index), item_id=item.pk)


def _hard_filters(turn: Turn) -> Filters:
    if turn.kind == "negation":
        return Filters(exclude_genres=(turn.genre,))
    if turn.kind == "decade_genre":
        return Filters(genres=(turn.genre,), year_min=turn.year_min, year_max=turn.year_max)
    return Filters()


def _satisfies(turn: Turn, item: Item, seen: set[int]) -> bool:
    if item.pk in seen:
        return False
    if turn.kind == "negation":
        return turn.genre not in item.genres
    if turn.kind == "decade_genre":
        year = item.year or 0
        return turn.genre in item.genres and turn.year_min <= year <= turn.year_max
    return True


def _evidence_key(rec: Recommendation) -> list[tuple]:
    return sorted((e.kind, e.label, e.item_id) for e in rec.evidence)


def _conversation(
    sim: SimUser, script: tuple[str, ...], items: dict[int, Item], index: TitleIndex
) -> list[TurnResult]:
    conversation = conversation_create(user=sim.user, title="simulated conversation")
    favourites, seen = set(sim.favourites), set(sim.train)
    previous: list[Recommendation] = []
    cards: dict[int, Recommendation] = {}  # the card last shown for each item
    shown: set[int] = set()
    wished: str | None = None
    out: list[TurnResult] = []
    for kind in script:
        anchor: int | None = None
        if kind == "like_but":
            turn = _turn_like_but(sim, items, index)
        elif kind == "negation":
            turn = _turn_negation(previous, wished)
        elif kind == "decade_genre":
            turn = _turn_decade_genre(sim, items)
        elif kind == "followup":
            turn = Turn("followup", "more like the second one")
            anchor = previous[1].item.pk if len(previous) > 1 else None
        else:
            turn = _turn_why(sim, previous, index)
        if turn is None:
            break
        started = time.perf_counter()
        answer = message_post(conversation=conversation, user=sim.user, text=turn.text)
        ms = (time.perf_counter() - started) * 1000
        recs = answer.recommendations
        result = TurnResult(
            kind, turn.text, len(recs), ms=round(ms, 1), produced_by=str(answer.produced_by)
        )
        if kind == "why":
            card = cards.get(turn.item_id)
            got = recs[0] if recs else None
            result.resolved = got is not None and got.item.pk == turn.item_id
            result.consistent = bool(
                result.resolved
                and card is not None
                and got.reason == card.reason
                and _evidence_key(got) == _evidence_key(card)
            )
        else:
            result.hard_ok = sum(_satisfies(turn, r.item, seen) for r in recs)
            if kind == "like_but":
                wished = turn.genre
                anchor = turn.item_id
            if wished is not None:
                result.soft_ok = sum(wished in r.item.genres for r in recs)
            # CF alone under the same constraints and leaving out what the chat must leave
            # out: the reference items, and what was shown when "more" asks for new ones
            conversation.refresh_from_db(fields=["state"])
            state = conversation.state or {}
            left_out = set(state.get("references") or []) | (shown if answer.intent.more else set())
            filters = replace(_hard_filters(turn), exclude_ids=frozenset(left_out))
            cf = rec_selectors.recommendations_for_user(
                user=sim.user, n=int(settings.CHAT_RESULTS), filters=filters
            )
            result.hits = sum(r.item.pk in favourites for r in recs)
            result.hits_cf = sum(r.item.pk in favourites for r in cf)
            if kind == "followup":
                refs = state.get("references") or []
                result.resolved = anchor is not None and refs == [anchor]
            if anchor is not None:
                name = {anchor: str(items.get(anchor) or Item.objects.get(pk=anchor))}
                result.anchored = sum(bool(title_mentions(r.reason, name)) for r in recs)
            previous = list(recs)
            shown.update(r.item.pk for r in recs)
            cards.update({r.item.pk: r for r in recs})
        out.append(result)
    return out


def _share(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 1) if den else None


def _summary(kind: str, rows: list[TurnResult]) -> dict[str, Any]:
    picks = sum(r.picks for r in rows)
    ms = np.array([r.ms for r in rows]) if rows else np.array([0.0])

    def pooled(attr: str) -> float | None:
        values = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        den = sum(r.picks for r in rows if getattr(r, attr) is not None)
        return _share(sum(values), den) if values else None

    def mean(attr: str) -> float | None:
        values = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        return round(float(np.mean(values)), 3) if values else None

    def rate(attr: str) -> float | None:
        values = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        return _share(sum(values), len(values)) if values else None

    return {
        "turn": kind,
        "turns": len(rows),
        "empty": sum(1 for r in rows if r.picks == 0),
        "picks": picks,
        "hard_pct": pooled("hard_ok"),
        "soft_pct": pooled("soft_ok"),
        "hits": mean("hits"),
        "hits_cf": mean("hits_cf"),
        "why_consistent_pct": rate("consistent"),
        "resolved_pct": rate("resolved"),
        "anchored_pct": pooled("anchored"),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "llm_turns": sum(1 for r in rows if r.produced_by == "llm"),
    }


def chat_quality_run(
    *,
    users: int,
    seed: int = 0,
    llm_base_url: str | None = None,
    llm_api_key: str | None = None,
    retrain: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the protocol for ``users`` simulated users; returns the summary rows per turn type
    (every type of ``TURN_TYPES``, in that order) and every turn's result.

    ``retrain``: train a model without the simulated users' originals first (about 20 s on
    ml-latest-small); without it the active model has seen their held-out favourites and the
    hits of both lists are inflated."""
    results: list[TurnResult] = []
    with transaction.atomic():
        sims = sim_users_create(n=users, seed=seed)
        if retrain:
            _train_without([s.source_user_id for s in sims])
        index = title_index()
        wanted = {i for s in sims for i in (*s.favourites, *s.liked)}
        items = Item.objects.in_bulk(wanted)
        with llm_endpoint(llm_base_url, llm_api_key):
            for k, sim in enumerate(sims):
                results += _conversation(sim, SCRIPTS[k % len(SCRIPTS)], items, index)
                if progress is not None:
                    progress(k + 1, len(sims))
        transaction.set_rollback(True)
    rows = [_summary(kind, [r for r in results if r.kind == kind]) for kind in TURN_TYPES]
    return {
        "protocol": "chat",
        "users": len(sims),
        "seed": seed,
        "retrained": retrain,
        "llm": llm_base_url or "none (built-in)",
        "rows": rows,
        "turns": [asdict(r) for r in results],
    }


COLUMNS = (
    ("turn", "turn type", "{}"),
    ("turns", "n", "{}"),
    ("hard_pct", "hard %", "{:.1f}"),
    ("soft_pct", "soft %", "{:.1f}"),
    ("hits", "hits", "{:.2f}"),
    ("hits_cf", "hits CF", "{:.2f}"),
    ("why_consistent_pct", "why same %", "{:.1f}"),
    ("resolved_pct", "resolved %", "{:.1f}"),
    ("anchored_pct", "anchored %", "{:.1f}"),
    ("p50_ms", "p50 ms", "{:.0f}"),
    ("p95_ms", "p95 ms", "{:.0f}"),
    ("empty", "empty", "{}"),
)


def chat_quality_format(report: dict[str, Any]) -> str:
    """The summary as a Markdown table (a dash where a figure does not apply)."""
    head = f"chat protocol: {report['users']} simulated users, seed {report['seed']}, LLM: {report['llm']}"
    lines = [
        head,
        "",
        "| " + " | ".join(c[1] for c in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in report["rows"]:
        cells = [fmt.format(row[key]) if row[key] is not None else "–" for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
