"""A real HTTP server speaking the OpenAI Chat Completions protocol, scripted per test.

    with FakeOpenAI() as fake:              # 127.0.0.1, random port, in a thread
        fake.tool_calls([("set_filters", {"genres": ["Comedy"]})])
        fake.json({"intro": "Here you go", "picks": [{"label": "C1", "reason": "..."}]})
        ... OPENAI_BASE_URL=fake.url ...
        fake.requests                       # every request body (JSON), in order

Each request takes the next scripted response (a queue); with an empty queue the ``default``
responder answers (by default: no tool calls for a tools request; for a JSON-schema request, the
first candidate labels of the schema's enum with neutral reasons). A reply is streamed as SSE
chunks when the request asks for ``stream``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str | None = None  # the assistant's text (JSON text for schema answers)
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    status: int = 200
    raw_body: bytes | None = None  # sent as is (malformed bodies)
    delay: float = 0.0  # seconds before answering (timeouts)
    cut_after: int | None = None  # streaming: close the connection after this many characters
    chunk_delay: float = 0.0  # streaming: pause between chunks
    chunk_size: int = 12
    usage: tuple[int, int] = (120, 40)


def schema_labels(request: dict[str, Any]) -> list[str]:
    """The candidate labels a rerank request allows (from its JSON schema's enum)."""
    try:
        schema = request["response_format"]["json_schema"]["schema"]
        return list(schema["properties"]["picks"]["items"]["properties"]["label"]["enum"])
    except (KeyError, TypeError):
        return []


def default_responder(request: dict[str, Any]) -> Reply:
    if request.get("tools"):
        return Reply(content="")
    labels = schema_labels(request)
    picks = [{"label": label, "reason": "A good fit for what you asked."} for label in labels[:6]]
    return Reply(content=json.dumps({"intro": "Here are some picks for you.", "picks": picks}))


class FakeOpenAI:
    def __init__(self, default: Callable[[dict[str, Any]], Reply] = default_responder):
        self.queue: deque[Reply | Callable[[dict[str, Any]], Reply]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.default = default
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one response per connection, ends at close

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    item = fake.queue.popleft() if fake.queue else fake.default
                reply = item(body) if callable(item) else item
                try:
                    fake._answer(self, body, reply)
                except (TimeoutError, BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- scripting ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def push(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> FakeOpenAI:
        self.queue.extend(replies)
        return self

    def json(self, doc: Any, **kw: Any) -> FakeOpenAI:
        return self.push(Reply(content=json.dumps(doc), **kw))

    def text(self, content: str, **kw: Any) -> FakeOpenAI:
        return self.push(Reply(content=content, **kw))

    def tool_calls(self, calls: list[tuple[str, dict[str, Any] | str]]) -> FakeOpenAI:
        return self.push(Reply(tool_calls=calls))

    def status(self, code: int, times: int = 1) -> FakeOpenAI:
        return self.push(*[Reply(status=code) for _ in range(times)])

    def rerank_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("response_format")]

    def prompt_text(self) -> str:
        return "\n".join(
            str(m.get("content") or "") for r in self.requests for m in r.get("messages", [])
        )

    # --- serving --------------------------------------------------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler, request: dict[str, Any], reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.raw_body is not None:
            h.send_response(reply.status)
            h.send_header("content-type", "application/json")
            h.end_headers()
            h.wfile.write(reply.raw_body)
            return
        if reply.status != 200:
            body = json.dumps(
                {"error": {"message": f"scripted {reply.status}", "type": "fake", "code": None}}
            )
            h.send_response(reply.status)
            h.send_header("content-type", "application/json")
            if reply.status == 429:
                h.send_header("retry-after", "0")
            h.end_headers()
            h.wfile.write(body.encode())
            return
        model = request.get("model", "fake")
        created = int(time.time())
        prompt_tokens, completion_tokens = reply.usage
        if request.get("stream"):
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.send_header("cache-control", "no-cache")
            h.end_headers()

            def send(obj: Any) -> None:
                data = obj if isinstance(obj, str) else json.dumps(obj)
                h.wfile.write(f"data: {data}\n\n".encode())
                h.wfile.flush()

            def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                return {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }

            content = reply.content or ""
            send(chunk({"role": "assistant", "content": ""}))
            sent = 0
            while sent < len(content):
                piece = content[sent : sent + reply.chunk_size]
                if reply.cut_after is not None and sent + len(piece) > reply.cut_after:
                    piece = content[sent : reply.cut_after]
                    if piece:
                        send(chunk({"content": piece}))
                    h.wfile.flush()
                    h.close_connection = True
                    return  # cut: no finish_reason, no [DONE]
                send(chunk({"content": piece}))
                sent += len(piece)
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            send(chunk({}, finish="stop"))
            if (request.get("stream_options") or {}).get("include_usage"):
                send(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    }
                )
            send("[DONE]")
            return
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        finish = "stop"
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
                for i, (name, args) in enumerate(reply.tool_calls)
            ]
            finish = "tool_calls"
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        data = json.dumps(body).encode()
        h.send_response(200)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
