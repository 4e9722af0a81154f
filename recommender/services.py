"""Writes of the recommender: training runs, model versions, activation, per-user refresh.

A training run (``model_train``) reads interactions from PostgreSQL, fits the engine model, writes
the version's rows *beside* the active version, optionally indexes them, and activates the new
version in one transaction. Any failure before the activation marks the run failed and removes its
rows; the active version keeps serving. Once activated, the run's result stands: a failure of the
housekeeping after it (pruning old versions) is recorded on the version, never undoes it. Runs
are idempotent: a run that is already done (or running in a live process) is not run again; one
whose process died is taken over.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import POSITIVE_KINDS, Interaction
from recsite.celery import app as celery_app
from recsite.exceptions import ApplicationError

from . import engine, evaluation, runner, selection, storage
from .history_read import user_history_ids
from .models import ModelVersion
from .owners import owner_alive, process_owner
from .scoring import user_vector_compute
from .selectors import version_active
from .training_data import TrainingData, training_data_read
from .versions import version_activate, versions_prune

logger = logging.getLogger(__name__)
# Looked up in Celery's registry when a run is enqueued: the task module calls these services,
# so importing it here would make the two modules import each other.
MODEL_TRAIN_TASK = "recommender.model_train_task"


def _setting(name: str, default):
    return getattr(settings, name, default)


# --- starting a run -----------------------------------------------------------------------------


def _stale_after() -> timedelta:
    return timedelta(seconds=_setting("RECOMMENDER_STALE_SECONDS", 300))


def versions_fail_stale() -> int:
    """Mark runs whose process is gone (no heartbeat for a while, or a dead local pid) failed,
    and runs still pending that long (their task was lost: broker down, queue purged)."""
    count = 0
    cutoff = timezone.now() - _stale_after()
    for version in ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING):
        dead = (version.claimed_by and not owner_alive(version.claimed_by)) or (
            (version.heartbeat_at or version.created_at) < cutoff
        )
        if dead:
            _fail(
                version.pk,
                "the training process stopped (killed or lost); nothing was served from it",
            )
            count += 1
    for version in ModelVersion.objects.filter(
        status=ModelVersion.Status.PENDING, created_at__lt=cutoff
    ):
        _fail(version.pk, "the training task never started (lost by the broker?)")
        count += 1
    return count


def training_start(
    *,
    requested_by=None,
    algorithm: str | None = None,
    params: dict | None = None,
    trigger: str = "manual",
    enqueue: bool = True,
    background: bool = False,
) -> ModelVersion:
    """Create a training run and enqueue ``model_train_task`` once the transaction commits
    (``enqueue=False``: the caller runs ``model_train`` itself, as ``manage.py train`` does).

    ``background`` (a page's "train now"): without a Celery worker the run goes to a thread of
    this process (``runner``) instead of running inside the caller, so the page answers at once
    and polls the progress.

    If a run is already pending or training (in a live process), that run is returned instead:
    pressing "train now" twice starts one run.
    """
    algorithm = algorithm or _setting("RECOMMENDER_MODEL", selection.AUTO)
    if algorithm not in engine.MODEL_NAMES and algorithm != selection.AUTO:
        raise ApplicationError(
            f"unknown model {algorithm!r}",
            {"choices": sorted([*engine.MODEL_NAMES, selection.AUTO])},
        )
    versions_fail_stale()
    with transaction.atomic():
        running = (
            ModelVersion.objects.select_for_update()
            .filter(status__in=[ModelVersion.Status.PENDING, ModelVersion.Status.TRAINING])
            .first()
        )
        if running is not None:
            return running
        version = ModelVersion.objects.create(
            algorithm=algorithm,
            params=_full_params(algorithm, _dense_ceiling(algorithm, params or {})),
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            trigger=trigger,
            progress_message="queued",
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue(version.pk, background=background))
    return version


def training_request(*, requested_by, algorithm: str | None = None) -> ModelVersion:
    """Staff's "train now", from every entry point (the dashboard, the admin, the API): start a
    run, or return the one already pending or training, that trains beside the request.

    With a Celery worker the run goes to the queue; without one it trains in a thread of this
    process (``runner``), never inside the request, which answers at once with the run to poll.
    """
    return training_start(requested_by=requested_by, algorithm=algorithm, background=True)


def _full_params(algorithm: str, params: dict) -> dict:
    """Every constructor parameter of the model, defaults included (recorded on the version)."""
    if algorithm == selection.AUTO:
        return {}  # the run's selection records what it chose
    try:
        full = engine.get_model(algorithm, **selection.engine_params(params)).params
        if params.get("value_weight"):  # the rows it is fitted on and scores (engine.values)
            engine.row_value_weights([], params["value_weight"])  # an unknown kind raises
            full["value_weight"] = params["value_weight"]
        return full
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"bad parameters for {algorithm}: {exc}") from exc


# Models that hold a dense items x items matrix and refuse a larger catalog: their ``max_items``
# is RECOMMENDER_DENSE_MAX_ITEMS unless the run names one. (The ``max_items`` of WeightedEDLAE
# and EASELowRank is the size of the popular head they fit on, engine.HeadRestricted, not a
# ceiling.)
DENSE_MODELS = frozenset({engine.EASE.name, engine.RP3Beta.name, "session_ease"})


def _refuses_large_catalogs(algorithm: str) -> bool:
    return algorithm in DENSE_MODELS


def _dense_ceiling(algorithm: str, params: dict) -> dict:
    if "max_items" in params or not _refuses_large_catalogs(algorithm):
        return params
    return {**params, "max_items": dense_max_items()}


def dense_max_items() -> int:
    """RECOMMENDER_DENSE_MAX_ITEMS: the one ceiling of dense item x item models, for a fixed
    model's ``max_items`` and for the selection's candidates alike."""
    return int(_setting("RECOMMENDER_DENSE_MAX_ITEMS", selection.dense_ceiling()))


def _enqueue(version_id: int, *, background: bool = False) -> None:
    if background and not runner.has_worker():
        runner.run_in_background(
            partial(model_train, version_id=version_id), name=f"train-v{version_id}"
        )
        return
    # .delay() runs the task in this process when REDIS_URL is unset (task_always_eager)
    result = celery_app.tasks[MODEL_TRAIN_TASK].delay(version_id)
    ModelVersion.objects.filter(pk=version_id).exclude(task_id__gt="").update(
        task_id=result.id or ""
    )


def training_scheduled() -> ModelVersion | None:
    """Start a run if interactions changed since the active version was trained (beat)."""
    active = version_active()
    if active is not None and active.started_at is not None:
        newer = Interaction.objects.filter(
            kind__in=POSITIVE_KINDS, timestamp__gt=active.started_at
        ).exists()
        count = Interaction.objects.filter(kind__in=POSITIVE_KINDS).count()
        if not newer and count == active.n_interactions:
            return None
    elif not Interaction.objects.filter(kind__in=POSITIVE_KINDS).exists():
        return None
    return training_start(trigger="schedule")


# --- the run itself -----------------------------------------------------------------------------


def _claim(version_id: int) -> ModelVersion | None:
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            return None
        if version.status == ModelVersion.Status.TRAINING:
            if version.claimed_by and owner_alive(version.claimed_by):
                return None  # running elsewhere right now
            logger.warning(
                "taking over training run v%s from dead process %s", version.pk, version.claimed_by
            )
            storage.version_rows_delete(version_id=version.pk)
        elif version.status != ModelVersion.Status.PENDING:
            return None  # already done, failed or retired: nothing to do (idempotent)
        now = timezone.now()
        version.status = ModelVersion.Status.TRAINING
        version.claimed_by = process_owner()
        version.started_at = version.started_at or now
        version.heartbeat_at = now
        version.progress = 0.0
        version.progress_message = "reading interactions"
        version.save(
            update_fields=[
                "status",
                "claimed_by",
                "started_at",
                "heartbeat_at",
                "progress",
                "progress_message",
            ]
        )
        return version


def _progress(version_id: int, fraction: float, message: str) -> None:
    # Outside the run's own transactions, so the dashboard sees it at once.
    ModelVersion.objects.filter(pk=version_id).update(
        progress=round(min(max(fraction, 0.0), 1.0), 4),
        progress_message=message[:200],
        heartbeat_at=timezone.now(),
    )


def _fail(version_id: int, error: str) -> None:
    """Mark a run failed and remove what it wrote. A version that is active is serving: its
    rows, index and weights file stay whatever failed (the failure is the caller's to record)."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None or version.status == ModelVersion.Status.ACTIVE:
            return
        storage.version_rows_delete(version_id=version_id)
        ModelVersion.objects.filter(pk=version_id).update(
            status=ModelVersion.Status.FAILED,
            error=error[-4000:],
            finished_at=timezone.now(),
            progress_message="failed",
        )
    # failed now, so never activated again: its index and file can go
    storage.vector_index_drop(version_id=version_id)
    storage.dense_weights_delete(version_id=version_id)


def _prune_after(version_id: int) -> None:
    """Prune old versions after ``version_id`` went live. A failed prune is recorded on the
    version and logged; the run keeps its result (the new version serves, the old rows stay
    until a later prune)."""
    try:
        versions_prune()
    except Exception as exc:  # noqa: BLE001 - housekeeping never undoes a served version
        logger.exception("pruning old versions after v%s failed", version_id)
        ModelVersion.objects.filter(pk=version_id).update(
            error=f"pruning old versions failed: {type(exc).__name__}: {exc}"[-4000:]
        )


ProgressHook = Callable[[float, str], None]


def model_train(
    *, version_id: int, on_progress: ProgressHook | None = None, allow_fallback: bool = True
) -> ModelVersion | None:
    """Run training run ``version_id``: read, fit, write rows, index, activate, prune, evaluate.

    A dense model asked to train a catalog above its ``max_items`` trains
    RECOMMENDER_LARGE_CATALOG_MODEL instead when ``allow_fallback`` (scheduled and staff runs:
    a retrain must not fail forever), and fails with the reason otherwise (an explicit request
    for that model). Returns the version, or None when there was nothing to do (already done or
    running).
    """
    version = _claim(version_id)
    if version is None:
        return ModelVersion.objects.filter(pk=version_id).first()

    def progress(fraction: float, message: str) -> None:
        _progress(version_id, fraction, message)
        if on_progress is not None:
            on_progress(fraction, message)

    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        progress(0.0, "reading interactions")
        t = time.perf_counter()
        data = training_data_read()
        timings["read"] = time.perf_counter() - t
        ModelVersion.objects.filter(pk=version_id).update(
            n_users=data.X.shape[0], n_items=data.X.shape[1], n_interactions=data.n_interactions
        )
        progress(
            0.1,
            f"read {data.n_interactions:,} interactions of {data.X.shape[0]:,} users on"
            f" {data.X.shape[1]:,} items in {timings['read']:.1f} s;"
            f" fitting {version.algorithm}",
        )

        t = time.perf_counter()
        chosen = None
        if version.algorithm == selection.AUTO:
            chosen = _select(version, data, progress)
            timings["select"] = time.perf_counter() - t
            t = time.perf_counter()
        model = engine.get_model(version.algorithm, **selection.engine_params(version.params))
        max_items = model.params.get("max_items")
        if _refuses_large_catalogs(version.algorithm) and max_items and data.X.shape[1] > max_items:
            refusal = (
                f"{version.algorithm} cannot train {data.X.shape[1]:,} items: its dense"
                f" items x items matrix stops at max_items={max_items:,}"
                " (RECOMMENDER_DENSE_MAX_ITEMS)"
            )
            if not allow_fallback:
                raise ApplicationError(
                    f"{refusal}; raise RECOMMENDER_DENSE_MAX_ITEMS or train"
                    f" {_setting('RECOMMENDER_LARGE_CATALOG_MODEL', 'als')} (--allow-fallback)"
                )
            # a scheduled retrain of a dense model cannot hold this catalog: the run trains the
            # large-catalog model (ALS by default) and says so, rather than failing every time
            fallback = _setting("RECOMMENDER_LARGE_CATALOG_MODEL", "als")
            logger.warning(
                "training run v%s: %s; training %s instead", version_id, refusal, fallback
            )
            params = _full_params(fallback, {})
            ModelVersion.objects.filter(pk=version_id).update(algorithm=fallback, params=params)
            version.algorithm, version.params = fallback, params
            model = engine.get_model(fallback)
            progress(0.1, f"{refusal}: fitting {fallback} instead")
        start = 0.4 if chosen is not None else 0.1
        fit_progress = lambda f: progress(start + (0.6 - start) * f, "fitting")  # noqa: E731
        # a value-weighted version learns from its value weights (serving weighs the history
        # alike: history.history_for_version)
        X_in = selection.model_input(data.X, data.values, version.params)
        if getattr(model, "uses_timestamps", False) and selection.has_time_order(data.timestamps):
            model.fit(X_in, progress=fit_progress, timestamps=data.timestamps)
        else:
            model.fit(X_in, progress=fit_progress)
        timings["fit"] = time.perf_counter() - t
        progress(0.6, f"fitted in {timings['fit']:.1f} s; writing the version's rows")

        t = time.perf_counter()
        serving, dims, artifact = storage.version_rows_write(
            version=version,
            model=model,
            X=data.X,
            item_ids=data.item_ids,
            user_ids=data.user_ids,
        )
        timings["write"] = time.perf_counter() - t

        t = time.perf_counter()
        indexed = False
        if serving == ModelVersion.Serving.FACTORS and len(data.item_ids) >= _setting(
            "RECOMMENDER_HNSW_MIN_ITEMS", 20000
        ):
            progress(0.8, f"rows written in {timings['write']:.1f} s; indexing vectors (HNSW)")
            storage.vector_index_create(version_id=version.pk, dims=dims)
            indexed = True
        timings["index"] = time.perf_counter() - t

        progress(
            0.85, f"rows and index ready in {timings['write'] + timings['index']:.1f} s; activating"
        )
        evaluate = _setting("RECOMMENDER_EVALUATE_ON_TRAIN", True)
        t = time.perf_counter()
        # One transaction: no reader sees the version active with its progress still running
        # (the dashboard stops polling at "active", so it would freeze at 85 %).
        with transaction.atomic():
            ModelVersion.objects.filter(pk=version_id).update(
                serving=serving, dimensions=dims, indexed=indexed, artifact=artifact
            )
            version_activate(version_id=version_id)
            timings["activate"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - started
            ModelVersion.objects.filter(pk=version_id).update(
                timings={k: round(v, 3) for k, v in timings.items()},
                finished_at=timezone.now(),
                progress=1.0,
                progress_message=ModelVersion.MEASURING_MESSAGE if evaluate else "done",
                heartbeat_at=timezone.now(),
            )
    except ApplicationError as exc:
        # a refusal the run states itself (a model that cannot train this catalog): its reason
        # is the whole story, a traceback in the log would read as a crash
        logger.warning("training run v%s refused: %s", version_id, exc.message)
        _fail(version_id, exc.message)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure must leave the served version alone
        logger.exception("training run v%s failed", version_id)
        _fail(version_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
        raise

    # The version serves from here on: nothing below may fail the run.
    if on_progress is not None:
        on_progress(1.0, "serving")
    _prune_after(version_id)
    if evaluate:
        try:
            t = time.perf_counter()
            metrics = _evaluate(version.algorithm, version.params, data)
            if chosen is not None:
                metrics["selection"] = chosen.report()
            timings["evaluate"] = time.perf_counter() - t
            ModelVersion.objects.filter(pk=version_id).update(
                metrics=metrics, timings={k: round(v, 3) for k, v in timings.items()}
            )
        except Exception:  # noqa: BLE001 - metrics are a report, never a reason to fail a run
            logger.exception("evaluation of v%s failed", version_id)
        # the run is served already: only the message moves, never the progress back
        ModelVersion.objects.filter(pk=version_id).update(progress_message="done")
    if on_progress is not None:
        on_progress(1.0, "done")
    return ModelVersion.objects.get(pk=version_id)


def _select(version: ModelVersion, data: TrainingData, progress: ProgressHook):
    """Per-site model selection (recommender.selection): the version records the winner and
    the validation table."""
    progress(0.1, "choosing the model on a validation slice")
    chosen = selection.select(
        data.X,
        data.timestamps,
        progress=lambda f: progress(0.1 + 0.3 * f, "choosing the model"),
        dense_max_items=dense_max_items(),
        values=data.values,
    )
    version.algorithm, version.params = chosen.algorithm, chosen.params
    ModelVersion.objects.filter(pk=version.pk).update(
        algorithm=chosen.algorithm, params=chosen.params, metrics={"selection": chosen.report()}
    )
    progress(0.4, f"fitting {chosen.label} on {data.n_interactions:,} interactions")
    return chosen


def _evaluate(algorithm: str, params: dict, data: TrainingData) -> dict:
    """The offline protocol (random split, seed 0) on the same data the version was trained on.

    The model is fitted on the whole training split; the held-out lists of at most
    RECOMMENDER_EVALUATE_MAX_USERS tested users (a seeded sample) are scored, since scoring
    every user of a large catalog costs far more time and memory than the run's own fit.
    """
    train, test = evaluation.split(data.interactions, method="random", seed=0)
    if len(test) == 0:
        return {}
    cap = int(_setting("RECOMMENDER_EVALUATE_MAX_USERS", 2000))
    tested = np.unique(test.users)
    sampled = cap > 0 and len(tested) > cap
    if sampled:
        keep = np.random.default_rng(0).choice(tested, size=cap, replace=False)
        test = test.take(np.isin(test.users, keep))
    metrics = evaluation.evaluate(lambda: selection.VersionModel(algorithm, params), train, test)
    metrics = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}
    if sampled:
        metrics["users_sampled_from"] = int(len(tested))
    return metrics


# --- per-user refresh ---------------------------------------------------------------------------


def user_refresh(*, user_id: int) -> bool:
    """Recompute the user's vector for the active factor model after new interactions.

    Neighbour models need nothing: they score from the live history on every request.
    """
    version = version_active()
    if version is None or version.serving != ModelVersion.Serving.FACTORS:
        return False
    history = user_history_ids(user_id=user_id)
    vector = user_vector_compute(version=version, item_ids=history.liked)
    candidates = None
    if vector is not None:
        # the new vector's best items outside everything the user has now, exactly, so that
        # their lists read them instead of searching the catalog
        candidates = storage.Candidates.of(
            storage.nearest_exact(
                version=version,
                vector=vector,
                limit=storage.USER_CANDIDATES,
                excluded=history.excluded,
            )
        )
    storage.user_vector_write(
        version=version, user_id=user_id, vector=vector, candidates=candidates
    )
    return vector is not None


# --- first run ------------------------------------------------------------------------------------


def model_bootstrap() -> str | None:
    """For `make run`: train synchronously when there is data but no active version."""
    if ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
        return None
    if not Interaction.objects.filter(kind__in=POSITIVE_KINDS).exists():
        return "no interactions yet: import data, then train from the staff dashboard"
    version = training_start(trigger="bootstrap")
    if version.status != ModelVersion.Status.ACTIVE:
        version = model_train(version_id=version.pk) or version
    version.refresh_from_db()
    return f"model v{version.pk} ({version.algorithm}) is {version.status}"
