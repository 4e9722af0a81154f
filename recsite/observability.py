"""Request ids and structured logs.

* :class:`RequestIdMiddleware` (first in ``MIDDLEWARE``) takes the request's ``X-Request-ID``
  (when it is a sane token) or makes one, echoes it in the response header, keeps it in a context
  variable for the whole request (streamed bodies included), writes one access-log line per
  request when ``LOG_REQUESTS`` is on, and counts the request in the HTTP metrics.
* :class:`RequestIdFilter` (on the console handler) puts that id on every log record as
  ``request_id``; :class:`JsonFormatter` writes one JSON object per line (``LOG_JSON``).
* Celery: the id of the request that enqueued a task travels in the task's headers, so the
  worker's log lines of that task carry it too (:func:`connect_celery`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
TASK_HEADER = "recsite_request_id"
# what we accept from a client or a proxy: a token, never free text (it ends up in every log line)
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_request_id: ContextVar[str | None] = ContextVar("recsite_request_id", default=None)

access_logger = logging.getLogger("recsite.request")


def request_id_get() -> str | None:
    """The id of the request (or task) this code runs for, if any."""
    return _request_id.get()


def request_id_from(value: str | None) -> str:
    """The client's id when it is a sane token, else a new one."""
    if value and VALID_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


# --- logging ---------------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (None outside a request or task) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            # Django logs a 4xx/5xx response after the middleware has returned, with the request
            record.request_id = _request_id.get() or getattr(
                getattr(record, "request", None), "request_id", None
            )
        return True


# attributes every LogRecord has: anything else on a record came from ``extra=`` and is logged
# (and Django's ``request``: an HttpRequest object, summed up by the access log)
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "request_id", "taskName", "request"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, process, the fields
    passed with ``extra=``, and ``exc`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _request_id.get()
        if not request_id:
            request_id = getattr(getattr(record, "request", None), "request_id", None)
        if request_id:
            out["request_id"] = request_id
        out["process"] = record.process
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain development format, with `` [request_id]`` appended inside a request."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} [{request_id}]" if request_id else text


# --- the middleware --------------------------------------------------------------------------------


def _view_label(request: Any) -> str:
    """A bounded label for metrics: the URL name (``api:recommendations``), else the route."""
    path = request.path.rstrip("/")
    if path in PROBE_PATHS:
        return path.lstrip("/")
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unmatched"


class RequestIdMiddleware:
    def __init__(self, get_response: Callable) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.log_requests = bool(getattr(settings, "LOG_REQUESTS", False))

    def __call__(self, request):  # noqa: ANN001, ANN204
        from django.http import StreamingHttpResponse

        rid = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = rid
        token = _request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = rid
            view = _view_label(request)
            if isinstance(response, StreamingHttpResponse):
                # the body is produced after this returns: keep the id (and time it) until it ends
                response.streaming_content = self._streamed(
                    response.streaming_content, rid, request, response, view, started
                )
            else:
                self._finished(request, response, view, started)
        finally:
            _request_id.reset(token)
        return response

    def _streamed(self, content, rid, request, response, view, started) -> Iterator[bytes]:  # noqa: ANN001
        token = _request_id.set(rid)
        try:
            yield from content
        finally:
            self._finished(request, response, view, started, streamed=True)
            _request_id.reset(token)

    def _finished(self, request, response, view, started, streamed: bool = False) -> None:  # noqa: ANN001
        from recsite import metrics

        seconds = time.perf_counter() - started
        metrics.http_request_observed(
            method=request.method, view=view, status=response.status_code, seconds=seconds
        )
        if not self.log_requests:
            return
        level = logging.DEBUG if request.path.rstrip("/") in PROBE_PATHS else logging.INFO
        access_logger.log(
            level,
            "%s %s %s %.1f ms",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            extra={
                "http_method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "view": view,
                "streamed": streamed,
                "remote_addr": request.META.get("REMOTE_ADDR"),
            },
        )


# --- Celery ----------------------------------------------------------------------------------------


def connect_celery() -> None:
    """Carry the request id into the tasks a request enqueues (headers), and set it in the
    worker while the task runs (the task id when no request started it)."""
    from celery.signals import before_task_publish, task_postrun, task_prerun

    tokens: dict[str, Any] = {}

    @before_task_publish.connect(weak=False)
    def _publish(headers: dict | None = None, **_: Any) -> None:
        rid = _request_id.get()
        if rid and headers is not None:
            headers.setdefault(TASK_HEADER, rid)

    @task_prerun.connect(weak=False)
    def _prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if task is None or getattr(task.request, "is_eager", False):
            return  # in-process: the calling request's id stays
        rid = getattr(task.request, TASK_HEADER, None) or task_id
        if task_id:
            tokens[task_id] = _request_id.set(request_id_from(rid))

    @task_postrun.connect(weak=False)
    def _postrun(task_id: str | None = None, **_: Any) -> None:
        token = tokens.pop(task_id, None) if task_id else None
        if token is not None:
            _request_id.reset(token)
