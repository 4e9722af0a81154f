"""Writes of the recommender: training runs, model versions, activation, per-user refresh.

A training run (``model_train``) reads interactions from PostgreSQL, fits the engine model, writes
the version's rows *beside* the active version, optionally indexes them, and activates the new
version in one transaction. Any failure marks the run failed and removes its rows; the active
version keeps serving. Runs are idempotent: a run that is already done (or running in a live
process) is not run again; one whose process died is taken over.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import POSITIVE_KINDS, Interaction
from recsite.celery import app as celery_app
from recsite.exceptions import ApplicationError

from . import engine, evaluation, runner, storage
from .history import user_history_ids
from .models import ModelVersion, VersionItem
from .owners import owner_alive, process_owner
from .scoring import user_vector_compute
from .selectors import version_active
from .training_data import TrainingData, training_data_read

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
    background: bool = False,
) -> ModelVersion:
    """Create a training run and enqueue ``model_train_task`` once the transaction commits.

    ``background`` (a page's "train now"): without a Celery worker the run goes to a thread of
    this process (``runner``) instead of running inside the caller, so the page answers at once
    and polls the progress.

    If a run is already pending or training (in a live process), that run is returned instead:
    pressing "train now" twice starts one run.
    """
    algorithm = algorithm or _setting("RECOMMENDER_MODEL", engine.DEFAULT_MODEL)
    if algorithm not in engine.MODEL_NAMES:
        raise ApplicationError(
            f"unknown model {algorithm!r}", {"choices": sorted(engine.MODEL_NAMES)}
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
            params=_full_params(algorithm, params or {}),
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            trigger=trigger,
            progress_message="queued",
        )
        transaction.on_commit(lambda: _enqueue(version.pk, background=background))
    return version


def _full_params(algorithm: str, params: dict) -> dict:
    """Every constructor parameter of the model, defaults included (recorded on the version)."""
    try:
        return engine.get_model(algorithm, **params).params
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"bad parameters for {algorithm}: {exc}") from exc


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
    with transaction.atomic():
        storage.version_rows_delete(version_id=version_id)
        ModelVersion.objects.filter(pk=version_id).exclude(
            status=ModelVersion.Status.ACTIVE
        ).update(
            status=ModelVersion.Status.FAILED,
            error=error[-4000:],
            finished_at=timezone.now(),
            progress_message="failed",
        )
    storage.vector_index_drop(version_id=version_id)
    if not ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.ACTIVE).exists():
        storage.dense_weights_delete(version_id=version_id)


ProgressHook = Callable[[float, str], None]


def model_train(*, version_id: int, on_progress: ProgressHook | None = None) -> ModelVersion | None:
    """Run training run ``version_id``: read, fit, write rows, index, activate, prune, evaluate.

    Returns the version, or None when there was nothing to do (already done or running).
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
        t = time.perf_counter()
        data = training_data_read()
        timings["read"] = time.perf_counter() - t
        ModelVersion.objects.filter(pk=version_id).update(
            n_users=data.X.shape[0], n_items=data.X.shape[1], n_interactions=data.n_interactions
        )
        progress(0.1, f"fitting {version.algorithm} on {data.n_interactions:,} interactions")

        t = time.perf_counter()
        model = engine.get_model(version.algorithm, **version.params)
        max_items = model.params.get("max_items")
        if max_items and data.X.shape[1] > max_items:
            # a dense item-item model cannot hold this catalog: the run trains the large-catalog
            # model instead (ALS by default) and says so, rather than failing every retrain
            fallback = _setting("RECOMMENDER_LARGE_CATALOG_MODEL", "als")
            logger.warning(
                "training run v%s: %s refuses %d items (max_items=%d); training %s instead",
                version_id,
                version.algorithm,
                data.X.shape[1],
                max_items,
                fallback,
            )
            params = _full_params(fallback, {})
            ModelVersion.objects.filter(pk=version_id).update(algorithm=fallback, params=params)
            version.algorithm, version.params = fallback, params
            model = engine.get_model(fallback)
            progress(0.1, f"{data.X.shape[1]:,} items: fitting {fallback} instead")
        fit_progress = lambda f: progress(0.1 + 0.5 * f, "fitting")  # noqa: E731
        if getattr(model, "uses_timestamps", False):
            model.fit(data.X, progress=fit_progress, timestamps=data.timestamps)
        else:
            model.fit(data.X, progress=fit_progress)
        timings["fit"] = time.perf_counter() - t
        progress(0.6, "writing vectors")

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
            progress(0.8, "indexing vectors (HNSW)")
            storage.vector_index_create(version_id=version.pk, dims=dims)
            indexed = True
        timings["index"] = time.perf_counter() - t

        progress(0.85, "activating")
        t = time.perf_counter()
        ModelVersion.objects.filter(pk=version_id).update(
            serving=serving, dimensions=dims, indexed=indexed, artifact=artifact
        )
        version_activate(version_id=version_id)
        timings["activate"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        ModelVersion.objects.filter(pk=version_id).update(
            timings={k: round(v, 3) for k, v in timings.items()}, finished_at=timezone.now()
        )
        versions_prune()
    except Exception as exc:  # noqa: BLE001 - any failure must leave the served version alone
        logger.exception("training run v%s failed", version_id)
        _fail(version_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
        raise

    if _setting("RECOMMENDER_EVALUATE_ON_TRAIN", True):
        progress(0.9, "measuring quality on a held-out split")
        try:
            metrics = _evaluate(version.algorithm, version.params, data)
            ModelVersion.objects.filter(pk=version_id).update(metrics=metrics)
        except Exception:  # noqa: BLE001 - metrics are a report, never a reason to fail a run
            logger.exception("evaluation of v%s failed", version_id)
    progress(1.0, "done")
    return ModelVersion.objects.get(pk=version_id)


def version_activate(*, version_id: int) -> ModelVersion:
    """Make ``version_id`` the served version, retiring the previous one, in one transaction."""
    with transaction.atomic():
        versions = {
            v.pk: v
            for v in ModelVersion.objects.select_for_update().filter(
                status=ModelVersion.Status.ACTIVE
            )
        }
        target = ModelVersion.objects.select_for_update().get(pk=version_id)
        if target.status == ModelVersion.Status.ACTIVE:
            return target
        if (
            target.status
            not in {
                ModelVersion.Status.TRAINING,
                ModelVersion.Status.READY,
                ModelVersion.Status.RETIRED,
            }
            or not VersionItem.objects.filter(version=target).exists()
        ):
            raise ApplicationError(f"version {version_id} has no trained model to activate")
        ModelVersion.objects.filter(pk__in=list(versions)).update(
            status=ModelVersion.Status.RETIRED
        )
        target.status = ModelVersion.Status.ACTIVE
        target.activated_at = timezone.now()
        target.save(update_fields=["status", "activated_at"])
    return target


def versions_prune(*, keep: int | None = None) -> int:
    """Delete the rows of old retired and failed versions, keeping the newest ``keep`` of each."""
    keep = keep if keep is not None else _setting("RECOMMENDER_KEEP_VERSIONS", 3)
    pruned = 0
    for status in (ModelVersion.Status.RETIRED, ModelVersion.Status.FAILED):
        old = list(
            ModelVersion.objects.filter(status=status)
            .order_by("-created_at", "-id")
            .values_list("pk", flat=True)[keep:]
        )
        for version_id in old:
            storage.vector_index_drop(version_id=version_id)
            # the file goes once the rows' deletion commits: a rolled-back prune keeps serving
            # versions whole (a file deleted under a version that stays would silently switch
            # its serving to the top-K table)
            transaction.on_commit(partial(storage.dense_weights_delete, version_id=version_id))
        pruned += (
            ModelVersion.objects.filter(pk__in=old).delete()[1].get("recommender.ModelVersion", 0)
        )
    return pruned


def _evaluate(algorithm: str, params: dict, data: TrainingData) -> dict:
    """The offline protocol (random split, seed 0) on the same data the version was trained on."""
    train, test = evaluation.split(data.interactions, method="random", seed=0)
    if len(test) == 0:
        return {}
    metrics = evaluation.evaluate(lambda: engine.get_model(algorithm, **params), train, test)
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}


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
    storage.user_vector_write(version=version, user_id=user_id, vector=vector)
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
