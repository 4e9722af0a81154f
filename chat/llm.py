"""The LLM client: the only module that imports ``openai``. Returns our own dataclasses.

Any OpenAI-compatible Chat Completions endpoint works (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
``LLM_MODEL``). Every call has a hard timeout, one layer of retries (timeouts, 429, 5xx,
connection errors; never after a stream has started), token and latency accounting, and a cache
for identical requests. Failures raise :class:`LLMError`; callers fall back, never crash.

Timeouts are wall-clock. The HTTP client's own timeouts are per read, so a server that sends
keep-alive comments, chunks without content or a body a byte at a time would hold a call for as
long as it likes; each request therefore runs in a worker thread (``chat.waiting``) and the caller
waits on a clock: the request's timeout for its first byte of content and between contents, the
turn's deadline for everything. At either limit the caller stops waiting and the connection is
shut down under the worker, which then ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import openai
from django.conf import settings
from django.core.cache import cache

from recsite import metrics

from .waiting import RequestThread, wait_for

logger = logging.getLogger(__name__)

CACHE_PREFIX = "chat:llm:v1:"


class LLMError(Exception):
    """kind: timeout | rate_limited | server_error | connection | bad_response | budget | stream_cut"""

    def __init__(self, kind: str, message: str = ""):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class LLMUsage:
    calls: int = 0
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # the server reported no usage: tokens ~ characters / 4
    latency_ms: float = 0.0  # wall time spent waiting for the LLM
    first_token_ms: float | None = None  # of the last streamed call
    errors: list[str] = field(default_factory=list)

    def merge(self, other: LLMUsage) -> None:
        self.calls += other.calls
        self.retries += other.retries
        self.cache_hits += other.cache_hits
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.estimated = self.estimated or other.estimated
        self.latency_ms += other.latency_ms
        if other.first_token_ms is not None:
            self.first_token_ms = other.first_token_ms
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency_ms"] = round(self.latency_ms, 1)
        if self.first_token_ms is not None:
            out["first_token_ms"] = round(self.first_token_ms, 1)
        return out


@dataclass
class LLMReply:
    content: str
    tool_calls: list[ToolCall]
    usage: LLMUsage
    cached: bool = False


def llm_configured() -> bool:
    return bool(settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY)


@lru_cache(maxsize=8)
def _client(base_url: str | None, api_key: str) -> openai.OpenAI:
    """One client (one connection pool, kept alive) per endpoint and key; the timeout, which
    shrinks with the turn's remaining budget, is given per request (``_request_timeout``)."""
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)  # retries: below


def _get_client() -> openai.OpenAI:
    return _client(settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY or "not-needed")


def _request_timeout(timeout: float) -> openai.Timeout:
    return openai.Timeout(timeout, connect=min(timeout, 5.0))


def _request(
    messages: list[dict[str, Any]],
    json_schema: dict[str, Any] | None,
    tools: list[dict[str, Any]] | None,
    max_tokens: int | None,
) -> dict[str, Any]:
    req: dict[str, Any] = {
        "model": settings.LLM_MODEL,
        "messages": messages,
        "max_tokens": max_tokens or settings.LLM_MAX_TOKENS,
        "temperature": 0.2,
    }
    if json_schema is not None:
        req["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": json_schema.get("title", "answer"),
                "schema": json_schema,
                "strict": True,
            },
        }
    if tools:
        req["tools"] = tools
        req["tool_choice"] = "auto"
    return req


def _cache_key(req: dict[str, Any]) -> str:
    blob = json.dumps([settings.OPENAI_BASE_URL, req], sort_keys=True, default=str)
    return CACHE_PREFIX + hashlib.sha256(blob.encode()).hexdigest()


def _classify(exc: Exception) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    transport = type(exc).__module__.split(".")[0].startswith("httpx")
    if isinstance(exc, openai.APITimeoutError) or (transport and "Timeout" in type(exc).__name__):
        return LLMError("timeout", str(exc))
    if isinstance(exc, openai.RateLimitError):
        return LLMError("rate_limited", str(exc))
    if isinstance(exc, openai.APIStatusError):
        kind = "server_error" if exc.status_code >= 500 else "bad_response"
        return LLMError(kind, f"HTTP {exc.status_code}")
    if isinstance(exc, openai.APIConnectionError) or transport:
        return LLMError("connection", str(exc))
    return LLMError("bad_response", f"{type(exc).__name__}: {exc}")


def _late(deadline: float | None) -> LLMError:
    if deadline is not None and time.monotonic() >= deadline - 0.01:
        return LLMError("budget", "the turn's LLM budget is spent")
    return LLMError("timeout", "no answer within the timeout")


RETRYABLE = {"timeout", "rate_limited", "server_error", "connection"}


def _timeout_for(deadline: float | None) -> float:
    timeout = float(settings.LLM_TIMEOUT_SECONDS)
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            raise LLMError("budget", "the turn's LLM budget is spent")
        timeout = min(timeout, remaining)
    return timeout


def _with_retries(fn, usage: LLMUsage, deadline: float | None):  # noqa: ANN001, ANN202
    attempts = 1 + max(0, int(settings.LLM_MAX_RETRIES))
    for attempt in range(attempts):
        try:
            return fn(_timeout_for(deadline))
        except Exception as exc:  # classified below; nothing escapes unclassified
            err = _classify(exc)
            usage.errors.append(err.kind)
            if err.kind not in RETRYABLE or attempt == attempts - 1:
                raise err from exc
            usage.retries += 1
            backoff = float(settings.LLM_RETRY_BACKOFF_SECONDS)
            if deadline is not None and time.monotonic() + backoff >= deadline:
                raise err from exc
            logger.warning("LLM call failed (%s), retrying once", err.kind)
            time.sleep(backoff)
    raise LLMError("bad_response", "unreachable")  # pragma: no cover


def complete(
    *,
    messages: list[dict[str, Any]],
    json_schema: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    max_tokens: int | None = None,
    deadline: float | None = None,
) -> LLMReply:
    """One non-streaming call: the reply's text (JSON when ``json_schema``) and tool calls."""
    usage = LLMUsage()
    outcome = "error"
    try:
        reply = _complete(messages, json_schema, tools, max_tokens, deadline, usage)
        outcome = "ok"
        return reply
    finally:
        metrics.llm_call_observed(mode="complete", usage=usage, outcome=outcome)


def _complete(
    messages: list[dict[str, Any]],
    json_schema: dict[str, Any] | None,
    tools: list[dict[str, Any]] | None,
    max_tokens: int | None,
    deadline: float | None,
    usage: LLMUsage,
) -> LLMReply:
    req = _request(messages, json_schema, tools, max_tokens)
    key = _cache_key(req)
    if settings.LLM_CACHE_SECONDS > 0 and (hit := cache.get(key)) is not None:
        usage.cache_hits = 1
        calls = [ToolCall(c["name"], c["arguments"]) for c in hit["tool_calls"]]
        return LLMReply(hit["content"], calls, usage, cached=True)

    def call(timeout: float) -> Any:
        usage.calls += 1

        def start(pipe: RequestThread) -> Any:
            raw = _get_client().chat.completions.with_streaming_response.create(
                **req, timeout=_request_timeout(timeout)
            )
            with raw as resp:
                pipe.response = resp.http_response
                return resp.parse()

        pipe = RequestThread(start, iterate=False)
        try:
            return pipe.get(wait_for(timeout, deadline))[1]
        except TimeoutError as exc:
            raise _late(deadline) from exc

    started = time.perf_counter()
    try:
        resp = _with_retries(call, usage, deadline)
    finally:
        usage.latency_ms += (time.perf_counter() - started) * 1000
    try:
        choice = resp.choices[0]
        content = choice.message.content or ""
        tool_calls: list[ToolCall] = []
        for tc in choice.message.tool_calls or []:
            try:
                args = json.loads(tc.function.arguments or "{}")
            except (json.JSONDecodeError, TypeError):
                usage.errors.append("bad_tool_arguments")
                continue
            if isinstance(args, dict):
                tool_calls.append(ToolCall(tc.function.name, args))
    except (AttributeError, IndexError, TypeError) as exc:
        raise LLMError("bad_response", "no choices in the reply") from exc
    if resp.usage is not None:
        usage.prompt_tokens += resp.usage.prompt_tokens or 0
        usage.completion_tokens += resp.usage.completion_tokens or 0
    else:
        usage.estimated = True
        usage.prompt_tokens += len(json.dumps(messages)) // 4
        usage.completion_tokens += len(content) // 4
    if (content.strip() or tool_calls) and settings.LLM_CACHE_SECONDS > 0:
        payload = {"content": content, "tool_calls": [asdict(c) for c in tool_calls]}
        cache.set(key, payload, settings.LLM_CACHE_SECONDS)
    return LLMReply(content, tool_calls, usage)


class LLMStream:
    """Iterate for text deltas. Raises :class:`LLMError` if the stream fails or is cut midway
    (what arrived before stays in ``text``). ``usage`` is filled as it goes."""

    def __init__(
        self,
        *,
        messages: list[dict[str, Any]],
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        deadline: float | None = None,
    ):
        self.req = _request(messages, json_schema, None, max_tokens)
        self.req["stream"] = True
        # a token is a few characters: a server that sends much more is not answering the request
        self.max_chars = 16 * int(self.req["max_tokens"])
        self.req["stream_options"] = {"include_usage": True}
        self.deadline = deadline
        self.usage = LLMUsage()
        self.text = ""
        self.finished = False
        self._messages = messages

    def __iter__(self) -> Iterator[str]:
        outcome = "cancelled"  # the consumer stopped reading (client gone, turn over)
        try:
            yield from self._deltas()
            outcome = "ok"
        except LLMError:
            outcome = "error"
            raise
        finally:
            metrics.llm_call_observed(mode="stream", usage=self.usage, outcome=outcome)

    def _deltas(self) -> Iterator[str]:
        key = _cache_key(self.req)
        if settings.LLM_CACHE_SECONDS > 0 and (hit := cache.get(key)) is not None:
            self.usage.cache_hits = 1
            self.usage.first_token_ms = 0.0
            self.text = hit["content"]
            self.finished = True
            yield self.text
            return

        def open_stream(timeout: float) -> tuple[RequestThread, float]:
            self.usage.calls += 1

            def start(pipe: RequestThread) -> Any:
                stream = _get_client().chat.completions.create(
                    **self.req, timeout=_request_timeout(timeout)
                )
                pipe.response = stream.response
                return stream

            pipe = RequestThread(start, iterate=True)
            try:
                pipe.get(wait_for(timeout, self.deadline))
            except TimeoutError as exc:
                raise _late(self.deadline) from exc
            except BaseException:
                pipe.abort()
                raise
            return pipe, timeout

        started = time.perf_counter()
        try:
            pipe, timeout = _with_retries(open_stream, self.usage, self.deadline)
        except LLMError:
            self.usage.latency_ms += (time.perf_counter() - started) * 1000
            raise
        finish_reason = None
        reported = False
        waited = time.perf_counter()
        progress = time.monotonic()  # the last content: keep-alives and empty chunks are none
        ended = False
        try:
            while True:
                try:
                    kind, chunk = pipe.get(wait_for(timeout, self.deadline, since=progress))
                except TimeoutError as exc:
                    raise _late(self.deadline) from exc
                if kind == "end":
                    ended = True
                    break
                if chunk.usage is not None:
                    self.usage.prompt_tokens += chunk.usage.prompt_tokens or 0
                    self.usage.completion_tokens += chunk.usage.completion_tokens or 0
                    reported = True
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = getattr(choice.delta, "content", None) if choice.delta else None
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
                    progress = time.monotonic()
                if delta:
                    progress = time.monotonic()
                    if len(self.text) > self.max_chars:
                        raise LLMError("too_long", "the answer is far longer than asked for")
                    if self.usage.first_token_ms is None:
                        self.usage.first_token_ms = (time.perf_counter() - started) * 1000
                    self.text += delta
                    # time outside this generator (the caller's work) is not LLM time
                    self.usage.latency_ms += (time.perf_counter() - waited) * 1000
                    yield delta
                    waited = time.perf_counter()
                    if self.deadline is not None and time.monotonic() > self.deadline:
                        raise LLMError("budget", "the turn's LLM budget is spent mid-stream")
        except LLMError as exc:
            self.usage.errors.append(exc.kind)
            raise
        except Exception as exc:
            err = _classify(exc)
            err = LLMError("stream_cut", str(err)) if self.text else err
            self.usage.errors.append(err.kind)
            raise err from exc
        finally:
            if not ended:  # the consumer stopped early, or the server took too long
                pipe.abort()
            self.usage.latency_ms += (time.perf_counter() - waited) * 1000
            if not reported:
                self.usage.estimated = True
                self.usage.prompt_tokens += len(json.dumps(self._messages)) // 4
                self.usage.completion_tokens += len(self.text) // 4
        if finish_reason is None:  # cut midway, or not a stream at all
            kind = "stream_cut" if self.text else "bad_response"
            self.usage.errors.append(kind)
            raise LLMError(kind, "the stream ended without a finish reason")
        self.finished = True
        if self.text.strip() and settings.LLM_CACHE_SECONDS > 0:
            cache.set(key, {"content": self.text}, settings.LLM_CACHE_SECONDS)
