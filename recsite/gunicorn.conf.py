"""Gunicorn settings for production: ``gunicorn -c recsite/gunicorn.conf.py recsite.wsgi:application``.

Threaded workers (a chat answer waits on the LLM for seconds; threads keep the other requests
moving), the access log written by recsite.observability (JSON, with the request id), and
Prometheus' multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set: the folder is emptied
when gunicorn starts and the files of a dead worker are marked, so /metrics adds up the live
and past workers of this server. Every knob comes from the environment (see .env.example).
"""

import os
import tempfile

# Several processes answer /metrics in turn: without a shared folder each would report only its
# own counts. Compose sets the folder; otherwise a private one per server.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recsite-prometheus-")

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# above LLM_TURN_BUDGET_SECONDS (45): a chat turn that uses its whole budget is not killed
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "75"))
graceful_timeout = 30
keepalive = 5
# recycle workers after this many requests (0 = never; bench_soak shows memory stays flat)
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # recsite.observability logs each request (LOG_REQUESTS)
control_socket_disable = True  # gunicorn 24+'s control socket: unused, and one path per host
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()

if os.environ.get("LOG_JSON", "true").strip().lower() in {"1", "true", "yes", "on"}:
    # gunicorn's own lines (start, worker boot/exit, timeouts) as JSON too
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": loglevel.upper(), "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {
                "level": loglevel.upper(),
                "handlers": ["console"],
                "propagate": False,
            },
            # off: with a logging config gunicorn would log each request a second time
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "formatters": {"json": {"()": "recsite.observability.JsonFormatter"}},
        "filters": {"request_id": {"()": "recsite.observability.RequestIdFilter"}},
    }


def on_starting(server) -> None:  # noqa: ANN001
    from recsite import metrics

    metrics.multiprocess_dir_reset()


def child_exit(server, worker) -> None:  # noqa: ANN001
    from recsite import metrics

    metrics.process_dead(worker.pid)


def post_worker_init(worker) -> None:  # noqa: ANN001
    """The local embedding model loads in the background while the worker already serves, so
    the first semantic search does not wait for it (``EMBEDDINGS_WARM_UP``)."""
    import threading

    from recommender.embeddings import backends

    threading.Thread(target=backends.warm_up, name="embeddings-warm-up", daemon=True).start()
