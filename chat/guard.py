"""The guard between the LLM and the user.

Whatever the LLM answers, what leaves here names only candidates, each once, never a seen,
dismissed or hidden item (read again for each pick and once more when the answer is stored), with
a reason that is plain text and cites only the item's own evidence, else the template reason from
that evidence; the intro is held to the same rules against the user's own history. A short list
is filled back from the candidate order. Every repair is counted by kind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from catalog.models import Interaction, Item
from recommender.reasons import reason_for
from recommender.selectors import History
from recommender.types import Evidence, Filters, Recommendation

from . import claims
from .candidates import Candidate, CandidateSet, Retrieval
from .claims import WORD_RE, user_words
from .plaintext import fold, plain_text

MAX_REASON = 280
MAX_INTRO = 280
QUESTION_BLOCKED = (
    "That one is not on your list: you have rated or dismissed it, or it is no longer available."
)


def blocked_now(*, user_id: int, ids: set[int]) -> dict[int, str]:
    """Which of ``ids`` may not be shown to this user right now, and why (``hidden``,
    ``dismissed``, ``seen``): read from the database at the moment of the call."""
    if not ids:
        return {}
    out = {
        pk: "hidden"
        for pk in Item.objects.filter(pk__in=ids, is_hidden=True).values_list("pk", flat=True)
    }
    rows = Interaction.objects.filter(
        user_id=user_id,
        item_id__in=ids,
        kind__in=[Interaction.Kind.DISMISS, Interaction.Kind.RATING, Interaction.Kind.LIKE],
    ).values_list("item_id", "kind")
    for pk, kind in rows:
        if pk not in out or kind == Interaction.Kind.DISMISS:
            out[pk] = "dismissed" if kind == Interaction.Kind.DISMISS else "seen"
    return out


def retrieval_screened(found: Retrieval, history: History) -> tuple[Retrieval, bool]:
    """A question about an item the user rated or dismissed (read just now) is answered without
    it: no item at all, rather than the one they put away. Returns (retrieval, blocked?)."""
    if found.question is None or found.question.pk not in history.excluded:
        return found, False
    empty = CandidateSet([], Filters())
    return Retrieval(empty, 0, set(history.excluded), None, []), True


@dataclass
class Guard:
    cset: CandidateSet
    n: int
    user_id: int
    excluded: set[int]  # seen + dismissed (read fresh) + the conversation's own exclusions
    dismissed: set[int]
    hidden: set[int]
    facts: claims.Facts
    history: set[int]  # what the user rated or liked: what an intro may say they liked
    requested: set[int]  # items the user named in this turn (references, the question)
    words: set[str]  # the user's own words (folded): what a query_match label may echo
    accepted: list[Recommendation] = field(default_factory=list)
    repairs: Counter = field(default_factory=Counter)

    @classmethod
    def create(
        cls,
        *,
        found: Retrieval,
        user,  # noqa: ANN001
        history: History,
        facts: claims.Facts,
        user_texts: list[str],
    ) -> Guard:
        """The guard of one answer from ``found``, for ``user`` whose ``history`` was just read.
        ``user_texts``: the user's messages in this conversation (what an echo may repeat).
        Hidden items are read here, fresh."""
        cset = found.cset
        hidden = set(
            Item.objects.filter(pk__in=cset.ids, is_hidden=True).values_list("pk", flat=True)
        )
        requested = {r.pk for r in found.refs}
        if found.question is not None:
            requested.add(found.question.pk)
        return cls(
            cset,
            found.n,
            user.pk,
            set(found.excluded),
            set(history.dismissed),
            hidden,
            facts,
            set(history.seen) - set(history.dismissed),
            requested,
            user_words(user_texts),
        )

    @property
    def accepted_ids(self) -> set[int]:
        return {r.item.pk for r in self.accepted}

    def full(self) -> bool:
        return len(self.accepted) >= self.n

    def allows(self, cand: Candidate) -> bool:
        """Whether the candidate may still join the answer (not taken, excluded or hidden)."""
        pk = cand.item.pk
        return pk not in self.accepted_ids and pk not in self.excluded and pk not in self.hidden

    def answer_size(self) -> int:
        """How many items the answer holds once filled from the candidates."""
        return min(self.n, len(self.accepted) + sum(map(self.allows, self.cset.candidates)))

    def _block(self, ids: set[int]) -> dict[int, str]:
        """Read hidden / dismissed / seen again; what is blocked now stays out of this turn."""
        now = blocked_now(user_id=self.user_id, ids=ids)
        for pk, why in now.items():
            (self.hidden if why == "hidden" else self.excluded).add(pk)
            if why == "dismissed":
                self.dismissed.add(pk)
        return now

    def accept(self, pick: Any) -> Recommendation | None:
        """One pick of the LLM ({"label", "reason"}): the recommendation to show, or None."""
        if not isinstance(pick, dict):
            self.repairs["malformed_pick"] += 1
            return None
        label = pick.get("label")
        cand = self.cset.by_label.get(label) if isinstance(label, str) else None
        if cand is None:
            key = "seen" if isinstance(label, str) and label[:1] == "H" else "outside_candidates"
            self.repairs[key] += 1
            return None
        pk = cand.item.pk
        if pk in self.accepted_ids:
            self.repairs["duplicate"] += 1
            return None
        self._block({pk})
        if pk in self.hidden:
            self.repairs["hidden"] += 1
            return None
        if pk in self.excluded:
            self.repairs["dismissed" if pk in self.dismissed else "seen"] += 1
            return None
        if self.full():
            self.repairs["over_limit"] += 1
            return None
        rec = self._rec(cand)
        rec.reason = self._reason(rec, pick.get("reason"))
        self.accepted.append(rec)
        return rec

    def _rec(self, cand: Candidate) -> Recommendation:
        """The candidate's recommendation at its new rank, with only evidence a person may read:
        a query match echoes the user's own words (never text the LLM put in a tool call)."""
        evidence: list[Evidence] = []
        for e in cand.rec.evidence:
            if e.kind == "query_match" and not self._echo_ok(e.label):
                self.repairs["foreign_query"] += 1
                continue
            evidence.append(e)
        rec = replace(cand.rec, rank=len(self.accepted) + 1, evidence=evidence)
        rec.reason = reason_for(rec)
        return rec

    def _echo_ok(self, label: str) -> bool:
        genres = {w for g in self.facts.index.genres for w in WORD_RE.findall(fold(g))}
        plain = plain_text(label, limit=MAX_REASON)
        words = set(WORD_RE.findall(plain.folded))
        return plain.ok and words <= self.words | genres | {"as", "you", "asked"}

    def _evidence_items(self, rec: Recommendation) -> set[int]:
        ids = {e.item_id for e in rec.evidence if e.item_id is not None}
        for e in rec.evidence:
            found, _ = claims.mentions(e.label, self.facts)
            for m in found:
                ids |= m.ids
        return ids - self.facts.blocked_ids()

    def _reason(self, rec: Recommendation, reason: Any) -> str:
        template = rec.reason
        text = self.text(
            reason,
            limit=MAX_REASON,
            claim_allowed=self._evidence_items(rec),
            mention_allowed={rec.item.pk},
        )
        return template if text is None else text

    def text(
        self, raw: Any, *, limit: int, claim_allowed: set[int], mention_allowed: set[int]
    ) -> str | None:
        """``raw`` as the plain text to show, or None (and the repair counted) when it may not be
        shown: the caller shows its template instead."""
        plain = plain_text(raw, limit=limit)
        if "long" in plain.problems:
            self.repairs["too_long"] += 1
        problems = [p for p in plain.problems if p != "long"]
        if problems:
            self.repairs[problems[0]] += 1
            return None
        verdict = claims.check(
            plain.text,
            plain.folded,
            self.facts,
            claim_allowed=claim_allowed,
            mention_allowed=mention_allowed,
        )
        if verdict.problem:
            self.repairs[verdict.problem] += 1
            return None
        return plain.text

    def intro(self, raw: Any) -> str | None:
        """The LLM's intro if it may be shown: it may say the user liked only what they did."""
        return self.text(
            raw,
            limit=MAX_INTRO,
            claim_allowed=self.history | self.requested,
            mention_allowed=self.cset.ids | self.history | self.requested,
        )

    def fill(self) -> list[Recommendation]:
        """Fill a short list back from the candidate order, with template reasons."""
        added: list[Recommendation] = []
        pending = [c for c in self.cset.candidates if self.allows(c)]
        if pending and not self.full():
            self._block({c.item.pk for c in pending[: 2 * self.n]})
        for cand in self.cset.candidates:
            if self.full():
                break
            if not self.allows(cand):
                continue
            rec = self._rec(cand)
            self.accepted.append(rec)
            added.append(rec)
        if added:
            self.repairs["filled_from_candidates"] += len(added)
        return added

    def recheck(self) -> list[int]:
        """Once more, as the answer is stored (call inside its transaction): drop what became
        hidden, dismissed or seen meanwhile, renumber, refill. Returns the dropped item ids."""
        now = self._block(self.accepted_ids)
        if not now:
            return []
        for why in now.values():
            self.repairs[f"{why}_late"] += 1
        self.accepted = [r for r in self.accepted if r.item.pk not in now]
        for rank, rec in enumerate(self.accepted, start=1):
            rec.rank = rank
        while not self.full():
            added = self.fill()
            if not added:
                break
            late = self._block({r.item.pk for r in added})
            if not late:
                break
            self.accepted = [r for r in self.accepted if r.item.pk not in late]
            for rank, rec in enumerate(self.accepted, start=1):
                rec.rank = rank
        return sorted(now)
