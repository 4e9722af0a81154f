"""The rerank stage: the LLM chooses and explains among the labelled candidates, streamed.

:class:`Rerank` turns the LLM's streamed JSON into ``("intro", text)`` and ``("pick", raw pick)``
as they arrive, so the first words reach the user before the answer is complete; the picks are
raw because only the guard decides what is shown. An LLM fault or a malformed answer ends the
iteration quietly: it is counted in ``repairs`` and named in ``why`` for the fallback notice.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from . import llm, prompts
from .candidates import CandidateSet


class Rerank:
    """One streamed rerank call; iterate once. ``usage`` is the call's, filled as it goes."""

    def __init__(
        self,
        *,
        messages: list[dict[str, Any]],
        cset: CandidateSet,
        n: int,
        deadline: float,
        repairs: Counter,
    ) -> None:
        self.stream = llm.LLMStream(
            messages=messages,
            json_schema=prompts.rerank_schema([c.label for c in cset.candidates], n),
            deadline=deadline,
        )
        self.repairs = repairs
        # why the answer failed ("empty answer", "malformed answer", "timeout"...), for the notice
        self.why = ""

    @property
    def usage(self) -> llm.LLMUsage:
        return self.stream.usage

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        parser = PicksParser()
        try:
            for delta in self.stream:
                intro, picks = parser.feed(delta)
                if intro:
                    yield "intro", intro
                for pick in picks:
                    yield "pick", pick
            if not parser.buffer.strip():
                self.repairs["empty_answer"] += 1
                self.why = "empty answer"
                return
            ok, rest, late_intro = parser.finish()
            if not ok:
                self.repairs["malformed_json"] += 1
                self.why = "malformed answer"
            if late_intro:
                yield "intro", late_intro
            for pick in rest:
                yield "pick", pick
        except llm.LLMError as exc:
            self.repairs[f"llm_{exc.kind}"] += 1
            self.why = exc.kind.replace("_", " ")


class PicksParser:
    """Reads a streamed ``{"intro": "...", "picks": [{...}, ...]}`` as it arrives: the intro's
    characters as soon as they are complete, and each pick once its object closes."""

    INTRO_RE = re.compile(r'"intro"\s*:\s*"')
    PICKS_RE = re.compile(r'"picks"\s*:\s*\[')
    ESCAPES = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        "b": "\b",
        "f": "\f",
        "n": "\n",
        "r": "\r",
        "t": "\t",
    }

    def __init__(self) -> None:
        self.buffer = ""
        self.intro = ""
        self._intro_pos: int | None = None
        self._intro_done = False
        self._picks_pos: int | None = None
        self._picks_done = False
        self.picks: list[Any] = []
        self._decoder = json.JSONDecoder()
        self._scanned = 0

    def feed(self, delta: str) -> tuple[str, list[Any]]:
        """Add text; return (new intro text, newly completed picks)."""
        self._scanned = max(0, len(self.buffer) - 32)  # what was searched needs no new search
        self.buffer += delta
        return self._intro(), self._picks()

    def _intro(self) -> str:
        if self._intro_done:
            return ""
        if self._intro_pos is None:
            m = self.INTRO_RE.search(self.buffer, self._scanned)
            if not m:
                return ""
            self._intro_pos = m.end()
        out = []
        pos = self._intro_pos
        buf = self.buffer
        while pos < len(buf):
            ch = buf[pos]
            if ch == '"':
                self._intro_done = True
                pos += 1
                break
            if ch == "\\":
                if pos + 1 >= len(buf):
                    break
                esc = buf[pos + 1]
                if esc == "u":
                    if pos + 6 > len(buf):
                        break
                    try:
                        out.append(chr(int(buf[pos + 2 : pos + 6], 16)))
                    except ValueError:
                        pass
                    pos += 6
                    continue
                out.append(self.ESCAPES.get(esc, esc))
                pos += 2
                continue
            out.append(ch)
            pos += 1
        self._intro_pos = pos
        text = "".join(out)
        self.intro += text
        return text

    def _picks(self) -> list[Any]:
        if self._picks_done:
            return []
        if self._picks_pos is None:
            if not self._intro_done and self._intro_pos is not None:
                return []  # inside the intro's string: no picks can start there
            m = self.PICKS_RE.search(self.buffer, self._scanned)
            if not m:
                return []
            self._picks_pos = m.end()
        found = []
        buf = self.buffer
        pos = self._picks_pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(buf):
                break
            if buf[pos] == "]":
                self._picks_done = True
                pos += 1
                break
            try:
                obj, end = self._decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                break  # incomplete (or broken: the final parse decides)
            found.append(obj)
            pos = end
        self._picks_pos = pos
        self.picks.extend(found)
        return found

    def finish(self) -> tuple[bool, list[Any], str]:
        """At the end of the answer: (valid JSON?, picks not yet returned, intro if not streamed)."""
        try:
            doc = json.loads(self.buffer)
        except json.JSONDecodeError:
            return False, [], ""
        if not isinstance(doc, dict):
            return False, [], ""
        picks = doc.get("picks")
        picks = picks if isinstance(picks, list) else []
        rest = picks[len(self.picks) :] if picks[: len(self.picks)] == self.picks else []
        intro = doc.get("intro") if isinstance(doc.get("intro"), str) and not self.intro else ""
        return True, rest, intro or ""
