"""Waiting for an HTTP request on a wall clock: the request runs in a worker thread and the
caller reads its results from a queue with a timeout, so no server behaviour (keep-alive
comments, chunks without content, a body a byte at a time) can hold the caller past it. At the
limit the socket is shut down under the worker, which then ends."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any


class RequestThread:
    """One request run in a daemon thread; its results (``result``, or ``open`` then ``item``s
    and ``end``, or ``error``) come over a queue that the caller reads on a wall clock."""

    def __init__(self, start: Callable[[RequestThread], Any], *, iterate: bool):
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.response: Any = None  # the httpx response once its headers are in
        self.stopped = threading.Event()
        self._start = start
        self._iterate = iterate
        threading.Thread(target=self._run, daemon=True, name="llm-request").start()

    def _run(self) -> None:
        try:
            obj = self._start(self)
            if not self._iterate:
                self.queue.put(("result", obj))
                return
            self.queue.put(("open", None))
            for chunk in obj:
                if self.stopped.is_set():
                    return
                self.queue.put(("item", chunk))
            self.queue.put(("end", None))
        except BaseException as exc:  # handed to the caller, who classifies it
            if not self.stopped.is_set():
                self.queue.put(("error", exc))

    def get(self, wait: float) -> tuple[str, Any]:
        """The next result; past ``wait`` seconds the request is abandoned (TimeoutError)."""
        try:
            kind, value = self.queue.get(timeout=max(wait, 0.0))
        except queue.Empty:
            self.abort()
            raise TimeoutError("no answer in time") from None
        if kind == "error":
            raise value
        return kind, value

    def abort(self) -> None:
        """Stop the worker: shutting the socket down wakes a read blocked inside the client."""
        self.stopped.set()
        response = self.response
        stream = getattr(response, "extensions", {}).get("network_stream") if response else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def wait_for(timeout: float, deadline: float | None, since: float | None = None) -> float:
    """Seconds to wait: ``timeout`` from ``since`` (now), never past the turn's deadline."""
    now = time.monotonic()
    limit = (since if since is not None else now) + timeout
    if deadline is not None:
        limit = min(limit, deadline)
    return limit - now
