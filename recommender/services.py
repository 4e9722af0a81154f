"""Writes of the recommender: training runs, model versions, activation, per-user refresh.

A training run (``model_train``) reads interactions from PostgreSQL, fits the engine model, writes
the version's rows *beside* the active version, optionally indexes them, and activates the new
version in one transaction. Any failure marks the run failed and removes its rows; the active
version keeps serving. Runs are idempotent: a run that is already done (or running in a live
process) is not run again; one whose process died is taken over.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Interaction
from recsite.exceptions import ApplicationError

from . import engine, evaluation, selection
from .models import ModelVersion, UserVector, VersionItem

logger = logging.getLogger(__name__)

TRAIN_KINDS = (Interaction.Kind.RATING, Interaction.Kind.LIKE)


def _setting(name: str, default):
    return getattr(settings, name, default)


# --- reading the training data --------------------------------------------------------------------


@dataclass
class TrainingData:
    X: sp.csr_matrix  # users x items, 1.0 per positive interaction
    user_ids: np.ndarray  # row -> auth_user.id
    item_ids: np.ndarray  # column -> catalog_item.id
    interactions: evaluation.Interactions  # the same rows, for the offline protocol
    timestamps: sp.csr_matrix  # seconds, with exactly the sparsity of X

    @property
    def n_interactions(self) -> int:
        return int(self.X.nnz)


def interactions_read() -> evaluation.Interactions:
    """Every positive interaction (any rating, any like), one per (user, item), with its latest
    timestamp: the implicit-feedback input of training and of the evaluation protocol."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, item_id, max(extract(epoch FROM timestamp))::bigint"
            " FROM catalog_interaction WHERE kind = ANY(%s) GROUP BY user_id, item_id",
            [list(TRAIN_KINDS)],
        )
        rows = cursor.fetchall()
    if not rows:
        raise ApplicationError("there are no interactions to train on yet")
    arr = np.asarray(rows, dtype=np.int64)
    return evaluation.Interactions(
        users=arr[:, 0], items=arr[:, 1], timestamps=arr[:, 2], values=np.ones(len(arr), np.float32)
    )


def training_data_read() -> TrainingData:
    interactions = interactions_read()
    matrix = evaluation.build_train_matrix(interactions)
    return TrainingData(
        X=matrix.X,
        user_ids=matrix.user_ids,
        item_ids=matrix.item_ids,
        interactions=interactions,
        timestamps=evaluation.build_timestamp_matrix(interactions, matrix),
    )


# --- starting a run -----------------------------------------------------------------------------


def _process_start(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process from /proc, None if there is
    no such process or no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return ("?", "")
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    return (fields[0], fields[19]) if len(fields) > 19 else ("?", "")


def _owner() -> str:
    """``host:pid:start``: the start time tells a live process from a new one that was given a
    dead claimant's pid (containers restart with low pids)."""
    pid = os.getpid()
    started = _process_start(pid)
    return f"{socket.gethostname()}:{pid}:{started[1] if started else ''}"


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: only the heartbeat can tell
    if os.path.isdir("/proc"):
        seen = _process_start(int(pid))
        if seen is None or seen[0] in ("Z", "X"):  # gone, or a zombie nobody reaped yet
            return False
        return not (start and seen[1] and seen[1] != start)  # else: the pid was reused
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_after() -> timedelta:
    return timedelta(seconds=_setting("RECOMMENDER_STALE_SECONDS", 300))


def versions_fail_stale() -> int:
    """Mark runs whose process is gone (no heartbeat for a while, or a dead local pid) failed,
    and runs still pending that long (their task was lost: broker down, queue purged)."""
    count = 0
    cutoff = timezone.now() - _stale_after()
    for version in ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING):
        dead = (version.claimed_by and not _owner_alive(version.claimed_by)) or (
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
) -> ModelVersion:
    """Create a training run and enqueue ``model_train_task`` once the transaction commits.

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
            params=_full_params(algorithm, params or {}),
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            trigger=trigger,
            progress_message="queued",
        )
        transaction.on_commit(lambda: _enqueue(version.pk))
    return version


def _full_params(algorithm: str, params: dict) -> dict:
    """Every constructor parameter of the model, defaults included (recorded on the version)."""
    if algorithm == selection.AUTO:
        return {}  # the run's selection records what it chose
    try:
        return engine.get_model(algorithm, **params).params
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"bad parameters for {algorithm}: {exc}") from exc


def _enqueue(version_id: int) -> None:
    from .tasks import model_train_task

    result = model_train_task.delay(version_id)
    ModelVersion.objects.filter(pk=version_id).exclude(task_id__gt="").update(
        task_id=result.id or ""
    )


def training_scheduled() -> ModelVersion | None:
    """Start a run if interactions changed since the active version was trained (beat)."""
    from .selectors import version_active

    active = version_active()
    if active is not None and active.started_at is not None:
        newer = Interaction.objects.filter(
            kind__in=TRAIN_KINDS, timestamp__gt=active.started_at
        ).exists()
        count = Interaction.objects.filter(kind__in=TRAIN_KINDS).count()
        if not newer and count == active.n_interactions:
            return None
    elif not Interaction.objects.filter(kind__in=TRAIN_KINDS).exists():
        return None
    return training_start(trigger="schedule")


# --- the run itself -----------------------------------------------------------------------------


def _claim(version_id: int) -> ModelVersion | None:
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            return None
        if version.status == ModelVersion.Status.TRAINING:
            if version.claimed_by and _owner_alive(version.claimed_by):
                return None  # running elsewhere right now
            logger.warning(
                "taking over training run v%s from dead process %s", version.pk, version.claimed_by
            )
            VersionItem.objects.filter(version=version).delete()
            UserVector.objects.filter(version=version).delete()
        elif version.status != ModelVersion.Status.PENDING:
            return None  # already done, failed or retired: nothing to do (idempotent)
        now = timezone.now()
        version.status = ModelVersion.Status.TRAINING
        version.claimed_by = _owner()
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
        VersionItem.objects.filter(version_id=version_id).delete()
        UserVector.objects.filter(version_id=version_id).delete()
        ModelVersion.objects.filter(pk=version_id).exclude(
            status=ModelVersion.Status.ACTIVE
        ).update(
            status=ModelVersion.Status.FAILED,
            error=error[-4000:],
            finished_at=timezone.now(),
            progress_message="failed",
        )
    _drop_index(version_id)
    if not ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.ACTIVE).exists():
        _dense_weights_delete(version_id)


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
        chosen = None
        if version.algorithm == selection.AUTO:
            chosen = _select(version, data, progress)
            timings["select"] = time.perf_counter() - t
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
        start = 0.4 if chosen is not None else 0.1
        fit_progress = lambda f: progress(start + (0.6 - start) * f, "fitting")  # noqa: E731
        if getattr(model, "uses_timestamps", False) and selection.has_time_order(data.timestamps):
            model.fit(data.X, progress=fit_progress, timestamps=data.timestamps)
        else:
            model.fit(data.X, progress=fit_progress)
        timings["fit"] = time.perf_counter() - t
        progress(0.6, "writing vectors")

        t = time.perf_counter()
        serving, dims, artifact = _write_rows(version, model, data)
        timings["write"] = time.perf_counter() - t

        t = time.perf_counter()
        indexed = False
        if serving == ModelVersion.Serving.FACTORS and len(data.item_ids) >= _setting(
            "RECOMMENDER_HNSW_MIN_ITEMS", 20000
        ):
            progress(0.8, "indexing vectors (HNSW)")
            _create_index(version.pk, dims)
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
            if chosen is not None:
                metrics["selection"] = chosen.report()
            ModelVersion.objects.filter(pk=version_id).update(metrics=metrics)
        except Exception:  # noqa: BLE001 - metrics are a report, never a reason to fail a run
            logger.exception("evaluation of v%s failed", version_id)
    progress(1.0, "done")
    return ModelVersion.objects.get(pk=version_id)


def _select(version: ModelVersion, data: TrainingData, progress: ProgressHook):
    """Per-site model selection (recommender.selection): the version records the winner and
    the validation table."""
    progress(0.1, "choosing the model on a validation slice")
    chosen = selection.select(
        data.X, data.timestamps, progress=lambda f: progress(0.1 + 0.3 * f, "choosing the model")
    )
    version.algorithm, version.params = chosen.algorithm, chosen.params
    ModelVersion.objects.filter(pk=version.pk).update(
        algorithm=chosen.algorithm, params=chosen.params, metrics={"selection": chosen.report()}
    )
    progress(0.4, f"fitting {chosen.label} on {data.n_interactions:,} interactions")
    return chosen


def _write_rows(
    version: ModelVersion, model: engine.Recommender, data: TrainingData
) -> tuple[str, int | None, bytes | None]:
    """COPY the version's per-item rows (and user vectors) in one transaction.

    Item-item models: each item's top-K outgoing weights (K = RECOMMENDER_NEIGHBOURS).
    Factor models: item vectors and the trained users' vectors into pgvector, plus the fitted
    model (pickled) so that any process can fold a user in from their history.
    """
    popularity = np.asarray(data.X.getnnz(axis=0)).ravel()
    item_ids = data.item_ids
    if isinstance(model, engine.ItemItemRecommender):
        _dense_weights_write(version.pk, model, item_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        if isinstance(model, engine.ItemItemRecommender):
            table = model.neighbour_table(k=_setting("RECOMMENDER_NEIGHBOURS", 200))
            order = np.argsort(table.item, kind="stable")
            src, dst, wts = table.item[order], table.neighbour[order], table.weight[order]
            bounds = np.searchsorted(src, np.arange(len(item_ids) + 1))
            dst_ids = item_ids[dst]
            cols = "version_id, item_id, popularity, neighbors, weights"
            # Packed little-endian arrays, hex-encoded for COPY: all formatting in C.
            dst_hex = dst_ids.astype("<i8").tobytes().hex()
            w_hex = wts.astype("<f4").tobytes().hex()
            lines = []
            for idx, item_id in enumerate(item_ids.tolist()):
                lo, hi = int(bounds[idx]), int(bounds[idx + 1])
                lines.append(
                    f"{version.pk}\t{item_id}\t{int(popularity[idx])}"
                    f"\t\\\\x{dst_hex[lo * 16 : hi * 16]}\t\\\\x{w_hex[lo * 8 : hi * 8]}\n"
                )
            with raw.copy(f"COPY recommender_versionitem ({cols}) FROM STDIN") as copy:
                for start in range(0, len(lines), 1000):
                    copy.write("".join(lines[start : start + 1000]).encode())
            return ModelVersion.Serving.NEIGHBORS, None, None
        if not isinstance(model, engine.FactorRecommender):
            # popularity: rows with counts only; serving falls back to popularity
            with raw.copy(
                "COPY recommender_versionitem (version_id, item_id, popularity) FROM STDIN"
            ) as copy:
                for idx, item_id in enumerate(item_ids.tolist()):
                    copy.write_row((version.pk, item_id, int(popularity[idx])))
            return ModelVersion.Serving.NEIGHBORS, None, None
        factors = model.item_factors
        dims = int(factors.shape[1])
        with raw.copy(
            "COPY recommender_versionitem (version_id, item_id, popularity, vector) FROM STDIN"
        ) as copy:
            for idx, item_id in enumerate(item_ids.tolist()):
                copy.write_row((version.pk, item_id, int(popularity[idx]), _vec(factors[idx])))
        users = model.user_vectors(data.X)
        now = timezone.now()
        with raw.copy(
            "COPY recommender_uservector (version_id, user_id, vector, updated_at) FROM STDIN"
        ) as copy:
            for idx, user_id in enumerate(data.user_ids.tolist()):
                copy.write_row((version.pk, user_id, _vec(users[idx]), now))
        artifact = pickle.dumps({"model": model, "item_ids": item_ids}, protocol=5)
        return ModelVersion.Serving.FACTORS, dims, artifact


# --- dense item-item weights ------------------------------------------------------------------
# The neighbour table keeps each item's top-K weights (K = RECOMMENDER_NEIGHBOURS) in PostgreSQL;
# pruning EASE-family weights costs 1-3% NDCG (docs/MODELS.md). For catalogs up to
# RECOMMENDER_DENSE_MAX_ITEMS the full matrix is also saved as a .npy file under
# RECOMMENDER_MODEL_DIR and memory-mapped by every process (one copy in the page cache), so what
# is served is exactly what `evaluate` measures. A process that cannot see the file (another
# host without the shared volume) serves from the table.


def _model_dir() -> Path:
    # one folder per database: test databases and the development one never share files
    base = Path(_setting("RECOMMENDER_MODEL_DIR", Path(settings.BASE_DIR) / "var" / "models"))
    return base / str(connection.settings_dict["NAME"])


def _dense_paths(version_id: int) -> tuple[Path, Path]:
    folder = _model_dir()
    return folder / f"v{int(version_id)}-weights.npy", folder / f"v{int(version_id)}-items.npy"


def _dense_weights_write(version_id: int, model: engine.ItemItemRecommender, item_ids) -> None:
    W = model.weights
    if sp.issparse(W) or W.shape[0] > _setting("RECOMMENDER_DENSE_MAX_ITEMS", 20000):
        return
    weights_path, items_path = _dense_paths(version_id)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights_path.with_suffix(".tmp.npy")
    np.save(tmp, np.ascontiguousarray(W, dtype=np.float32))
    np.save(items_path, np.asarray(item_ids, dtype=np.int64))
    os.replace(tmp, weights_path)  # readers never see a half-written file


def dense_weights_load(*, version_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(item ids, memory-mapped dense weights) of a version, if its file is here."""
    weights_path, items_path = _dense_paths(version_id)
    if not (weights_path.exists() and items_path.exists()):
        return None
    return np.load(items_path), np.load(weights_path, mmap_mode="r")


def _dense_weights_delete(version_id: int) -> None:
    for path in _dense_paths(version_id):
        path.unlink(missing_ok=True)


def _vec(values: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(values, dtype=np.float32).tolist()) + "]"


def _index_name(version_id: int) -> str:
    return f"recommender_vi_hnsw_v{int(version_id)}"


def _create_index(version_id: int, dims: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {_index_name(version_id)} ON recommender_versionitem"
            f" USING hnsw ((vector::vector({int(dims)})) vector_ip_ops)"
            f" WHERE version_id = {int(version_id)}"
        )


def _drop_index(version_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {_index_name(version_id)}")


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
            _drop_index(version_id)
            # the file goes once the rows' deletion commits: a rolled-back prune keeps serving
            # versions whole (a file deleted under a version that stays would silently switch
            # its serving to the top-K table)
            transaction.on_commit(partial(_dense_weights_delete, version_id))
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


_FITTED: dict[int, tuple[engine.FactorRecommender, np.ndarray]] = {}


def _fitted_model(version: ModelVersion) -> tuple[engine.FactorRecommender, np.ndarray] | None:
    """The fitted factor model of a version (unpickled once per process; only our trainer
    writes this column)."""
    if version.pk in _FITTED:
        return _FITTED[version.pk]
    artifact = ModelVersion.objects.filter(pk=version.pk).values_list("artifact", flat=True).first()
    if not artifact:
        return None
    state = pickle.loads(bytes(artifact))  # noqa: S301 - written by model_train, never by users
    if len(_FITTED) >= 2:
        _FITTED.clear()
    _FITTED[version.pk] = (state["model"], state["item_ids"])
    return _FITTED[version.pk]


def user_vector_compute(*, version: ModelVersion, item_ids: list[int]) -> np.ndarray | None:
    """A factor model's vector for a user with these liked items (fold-in, milliseconds)."""
    if version.serving != ModelVersion.Serving.FACTORS or not item_ids:
        return None
    fitted = _fitted_model(version)
    if fitted is None:
        return None
    model, known = fitted
    pos = np.searchsorted(known, np.asarray(item_ids, dtype=np.int64))
    pos = np.minimum(pos, len(known) - 1)
    history = pos[known[pos] == np.asarray(item_ids, dtype=np.int64)]
    if len(history) == 0:
        return None
    return np.asarray(model.user_vector(history), dtype=np.float32)


def user_refresh(*, user_id: int) -> bool:
    """Recompute the user's vector for the active factor model after new interactions.

    Neighbour models need nothing: they score from the live history on every request.
    """
    from .selectors import user_history_ids, version_active

    version = version_active()
    if version is None or version.serving != ModelVersion.Serving.FACTORS:
        return False
    history = user_history_ids(user_id=user_id)
    vector = user_vector_compute(version=version, item_ids=history.liked)
    if vector is None:
        UserVector.objects.filter(version=version, user_id=user_id).delete()
        return False
    UserVector.objects.update_or_create(
        version=version,
        user_id=user_id,
        defaults={"vector": vector.tolist(), "updated_at": timezone.now()},
    )
    return True


# --- first run ------------------------------------------------------------------------------------


def model_bootstrap() -> str | None:
    """For `make run`: train synchronously when there is data but no active version."""
    if ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
        return None
    if not Interaction.objects.filter(kind__in=TRAIN_KINDS).exists():
        return "no interactions yet: import data, then train from the staff dashboard"
    version = training_start(trigger="bootstrap")
    if version.status != ModelVersion.Status.ACTIVE:
        version = model_train(version_id=version.pk) or version
    version.refresh_from_db()
    return f"model v{version.pk} ({version.algorithm}) is {version.status}"
