"""The guard between the LLM and the user.

Whatever the LLM answers, what leaves here names only candidates, each once, never a seen,
dismissed or hidden item, with a reason that cites only the item's own evidence (else the
template reason); a short list is filled back from the candidate order. Every repair is counted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from catalog.models import Item
from recommender.reasons import reason_for
from recommender.types import Recommendation

from .candidates import Candidate, CandidateSet, Retrieval
from .titles import TitleIndex, title_key, title_mentions

LABEL_RE = re.compile(r"\b([CHP])(\d{1,3})\b")
MAX_REASON = 280


@dataclass
class Guard:
    cset: CandidateSet
    n: int
    excluded: set[int]  # seen + dismissed (read fresh) + the conversation's own exclusions
    dismissed: set[int]
    hidden: set[int]
    known_titles: dict[int, str]  # every item named in the prompt: {id: "Title (year)"}
    history_labels: dict[str, int]  # "H1" -> item id
    accepted: list[Recommendation] = field(default_factory=list)
    repairs: Counter = field(default_factory=Counter)
    index: TitleIndex | None = None

    @classmethod
    def create(
        cls,
        *,
        found: Retrieval,
        dismissed: set[int],
        history: list[Item],
        index: TitleIndex | None = None,
    ) -> Guard:
        """The guard of one answer from ``found``. ``history`` is the prompt's history in order
        (labelled H1.., as ``prompts.rerank_messages`` labels it); its titles, the candidates'
        and the references' are the titles a reason is checked against. Hidden items are read
        here, fresh."""
        cset = found.cset
        hidden = set(
            Item.objects.filter(pk__in=cset.ids, is_hidden=True).values_list("pk", flat=True)
        )
        known_titles = {item.pk: str(item) for item in history}
        known_titles.update({c.item.pk: str(c.item) for c in cset.candidates})
        known_titles.update({r.pk: str(r) for r in found.refs})
        history_labels = {f"H{i}": item.pk for i, item in enumerate(history, start=1)}
        return cls(
            cset,
            found.n,
            found.excluded,
            dismissed,
            hidden,
            known_titles,
            history_labels,
            index=index,
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

    def accept(self, pick: Any) -> Recommendation | None:
        """One pick of the LLM ({"label", "reason"}): the recommendation to show, or None."""
        if not isinstance(pick, dict):
            self.repairs["malformed_pick"] += 1
            return None
        label = pick.get("label")
        cand = self.cset.by_label.get(label) if isinstance(label, str) else None
        if cand is None:
            key = (
                "seen"
                if isinstance(label, str) and label in self.history_labels
                else "outside_candidates"
            )
            self.repairs[key] += 1
            return None
        pk = cand.item.pk
        if pk in self.accepted_ids:
            self.repairs["duplicate"] += 1
            return None
        if pk in self.hidden:
            self.repairs["hidden"] += 1
            return None
        if pk in self.excluded:
            self.repairs["dismissed" if pk in self.dismissed else "seen"] += 1
            return None
        if self.full():
            self.repairs["over_limit"] += 1
            return None
        rec = replace(cand.rec, rank=len(self.accepted) + 1, evidence=list(cand.rec.evidence))
        rec.reason = self._reason(cand, pick.get("reason"))
        self.accepted.append(rec)
        return rec

    def _reason(self, cand: Candidate, reason: Any) -> str:
        template = reason_for(cand.rec)
        if not isinstance(reason, str) or not reason.strip():
            self.repairs["empty_reason"] += 1
            return template
        reason = " ".join(reason.split())
        if len(reason) > MAX_REASON:
            self.repairs["long_reason"] += 1
            reason = reason[:MAX_REASON].rsplit(" ", 1)[0] + "…"
        # the candidate itself, its history items, and any item its evidence names
        allowed = {cand.item.pk} | cand.rec.history_item_ids
        allowed |= title_mentions(" | ".join(e.label for e in cand.rec.evidence), self.known_titles)
        cited = title_mentions(reason, self.known_titles)
        if self.index is not None:  # any other catalog title of two words or more
            for pk in self.index.mentions(reason) - cited:
                cited.add(pk)
                self.known_titles.setdefault(pk, self.index.titles[pk])
        for kind, num in LABEL_RE.findall(reason):
            label = f"{kind}{num}"
            if kind == "C" and label in self.cset.by_label:
                cited.add(self.cset.by_label[label].item.pk)
            elif kind == "H" and label in self.history_labels:
                cited.add(self.history_labels[label])
            else:
                cited.add(-1)  # a label that names nothing: not grounded
        # a title that contains the candidate's own title ("Alien" inside "Aliens") is not a citation
        own = f" {title_key(str(cand.item))} "
        foreign = {
            i
            for i in cited - allowed
            if i == -1 or f" {title_key(self.known_titles.get(i, ''))} " not in own
        }
        if foreign:
            self.repairs["foreign_citation"] += 1
            return template
        return reason

    def fill(self) -> list[Recommendation]:
        """Fill a short list back from the candidate order, with template reasons."""
        added: list[Recommendation] = []
        for cand in self.cset.candidates:
            if self.full():
                break
            if not self.allows(cand):
                continue
            rec = replace(cand.rec, rank=len(self.accepted) + 1, evidence=list(cand.rec.evidence))
            rec.reason = reason_for(rec)
            self.accepted.append(rec)
            added.append(rec)
        if added:
            self.repairs["filled_from_candidates"] += len(added)
        return added
