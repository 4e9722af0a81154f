"""A hostile OpenAI-compatible server: the fake server of ``openai_server`` plus what an attacker
(or a broken proxy) sends, scripted per test.

    with HostileOpenAI() as llm:
        llm.understand([("search_text", {"query": "Visit evil.com"})])
        llm.rerank(intro="<script>x</script>", reason="Because you liked H2.")
        llm.push(Stall("keepalive", every=0.2))      # SSE comments, never any content
        llm.push(Stall("empty_chunks", every=0.2))   # chunks whose choices are empty
        llm.push(Stall("drip", every=1.0))           # a valid body, one byte a second

``rerank`` answers the next rerank request with picks over the request's own candidate labels,
so a hostile text reaches the guard on an otherwise valid pick. ``reason`` may be a function of
(request, label) for texts that depend on the prompt (a title of the user's history, say).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from .openai_server import FakeOpenAI, Reply, default_responder, schema_labels

Text = str | Callable[[dict[str, Any], str], str]


@dataclass
class Stall(Reply):
    """A reply that holds the connection: ``mode`` keepalive | empty_chunks | drip."""

    mode: str = "drip"
    every: float = 1.0
    limit: float = 60.0  # the server gives up after this long (the client should long before)


def prompt_lines(request: dict[str, Any], prefix: str) -> dict[str, str]:
    """{label: title} of the prompt's lines starting with ``prefix`` ("C" candidates, "H" history)."""
    out: dict[str, str] = {}
    for message in request.get("messages", []):
        for line in str(message.get("content") or "").splitlines():
            m = re.match(rf"({prefix}\d+): (.+?)(?: · |$)", line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


class HostileOpenAI(FakeOpenAI):
    def __init__(self, default: Callable[[dict[str, Any]], Reply] = default_responder):
        super().__init__(default)

    def understand(self, calls: list[tuple[str, dict[str, Any] | str]]) -> HostileOpenAI:
        self.tool_calls(calls)
        return self

    def rerank(
        self,
        *,
        intro: Text = "Here are some picks.",
        reason: Text = "A good fit for what you asked.",
        picks: int = 3,
        **reply: Any,
    ) -> HostileOpenAI:
        def answer(request: dict[str, Any]) -> Reply:
            labels = schema_labels(request)[:picks]
            doc = {
                "intro": intro(request, "") if callable(intro) else intro,
                "picks": [
                    {"label": lb, "reason": reason(request, lb) if callable(reason) else reason}
                    for lb in labels
                ],
            }
            return Reply(content=json.dumps(doc), **reply)

        return self.push(answer)

    def _answer(self, h: BaseHTTPRequestHandler, request: dict[str, Any], reply: Reply) -> None:
        if not isinstance(reply, Stall):
            return super()._answer(h, request, reply)
        started = time.monotonic()
        streaming = bool(request.get("stream"))
        h.send_response(200)
        h.send_header("content-type", "text/event-stream" if streaming else "application/json")
        h.end_headers()
        if reply.mode == "drip":
            body = self._body(request, reply, streaming)
            for pos in range(len(body)):
                if time.monotonic() - started > reply.limit:
                    return
                h.wfile.write(body[pos : pos + 1])
                h.wfile.flush()
                time.sleep(reply.every)
            return
        chunk = {
            "id": "chatcmpl-hostile",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [],
        }
        line = (
            b": keep-alive\n\n"
            if reply.mode == "keepalive"
            else f"data: {json.dumps(chunk)}\n\n".encode()
        )
        while time.monotonic() - started < reply.limit:
            h.wfile.write(line if streaming else b" ")
            h.wfile.flush()
            time.sleep(reply.every)

    def _body(self, request: dict[str, Any], reply: Reply, streaming: bool) -> bytes:
        """What the drip sends: the default answer, complete and valid."""
        answer = self.default(request)
        content = answer.content or ""
        if not streaming:
            body = {
                "id": "chatcmpl-hostile",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            }
            return json.dumps(body).encode()
        chunk = {
            "id": "chatcmpl-hostile",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": "stop"}],
        }
        return f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
