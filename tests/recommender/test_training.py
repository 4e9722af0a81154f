"""Training runs: versions written beside the active one, atomic activation, failure safety."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from catalog.models import POSITIVE_KINDS, Interaction, Item
from recommender import history, owners, scoring, selectors, services, storage, versions
from recommender.models import ModelVersion, VersionItem

pytestmark = pytest.mark.django_db(transaction=False)


def _train(**kwargs) -> ModelVersion:
    # a fast dense neighbour model: these tests are about the run's bookkeeping
    kwargs.setdefault("algorithm", "wedlae")
    version = services.training_start(**kwargs)
    services.model_train(version_id=version.pk)
    version.refresh_from_db()
    return version


def test_training_writes_and_activates_a_version(trained_model):
    first = trained_model
    assert first.status == ModelVersion.Status.ACTIVE
    assert first.n_interactions == 100836 and first.n_users == 610
    rows = VersionItem.objects.filter(version=first)
    assert rows.count() == first.n_items == 9724
    assert first.timings["total"] > 0 and first.timings["fit"] > 0

    second = _train()
    first.refresh_from_db()
    assert second.status == ModelVersion.Status.ACTIVE
    assert first.status == ModelVersion.Status.RETIRED
    assert ModelVersion.objects.filter(status="active").count() == 1
    assert selectors.version_active() == second
    # the retired version can be re-activated (rollback) while its rows are kept
    versions.version_activate(version_id=first.pk)
    assert selectors.version_active() == first


def test_running_a_finished_run_again_changes_nothing(trained_model):
    before = VersionItem.objects.filter(version=trained_model).count()
    again = services.model_train(version_id=trained_model.pk)
    assert again.pk == trained_model.pk and again.status == ModelVersion.Status.ACTIVE
    assert VersionItem.objects.filter(version=trained_model).count() == before


def test_train_now_twice_starts_one_run(trained_model, django_db_blocker):
    # inside the test transaction on_commit never fires, so the first run stays pending
    first = services.training_start()
    second = services.training_start()
    assert first.pk == second.pk and first.status == ModelVersion.Status.PENDING


def test_a_run_failing_midway_leaves_the_active_version_serving(trained_model, django_user_model):
    user = django_user_model.objects.get(username="ml_1")
    served_before = [r.item.pk for r in selectors.recommendations_for_user(user=user, n=10)]
    # Make the database refuse the new version's rows, after the fit: a failure mid-write.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fail_write() RETURNS trigger AS $$ BEGIN"
            " RAISE EXCEPTION 'disk full (simulated by the test)'; END $$ LANGUAGE plpgsql;"
            " CREATE TRIGGER fail_write BEFORE INSERT ON recommender_versionitem"
            " FOR EACH ROW EXECUTE FUNCTION fail_write();"
        )
    version = services.training_start(algorithm="itemknn")
    with pytest.raises(Exception, match="disk full"):
        services.model_train(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED
    assert "disk full" in version.error
    assert not VersionItem.objects.filter(version=version).exists()
    assert selectors.version_active() == trained_model
    served_after = [r.item.pk for r in selectors.recommendations_for_user(user=user, n=10)]
    assert served_after == served_before


def test_a_prune_failing_after_activation_leaves_the_new_version_serving(
    trained_model, django_user_model, settings
):
    user = django_user_model.objects.get(username="ml_1")
    settings.RECOMMENDER_KEEP_VERSIONS = 0  # the run's prune removes every retired version
    # The database refuses to delete a model version: the prune fails after the activation.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_delete() RETURNS trigger AS $$ BEGIN"
            " RAISE EXCEPTION 'permission denied (simulated by the test)'; END $$"
            " LANGUAGE plpgsql;"
            " CREATE TRIGGER refuse_delete BEFORE DELETE ON recommender_modelversion"
            " FOR EACH ROW EXECUTE FUNCTION refuse_delete();"
        )
    version = services.training_start(algorithm="wedlae")
    done = services.model_train(version_id=version.pk)  # the run succeeded: it does not raise

    assert done.status == ModelVersion.Status.ACTIVE and done.progress == 1.0
    assert selectors.version_active() == done
    assert "pruning old versions failed" in done.error and "permission denied" in done.error
    assert VersionItem.objects.filter(version=done).count() == done.n_items == 9724
    assert storage.dense_weights_load(version_id=done.pk) is not None
    recs = selectors.recommendations_for_user(user=user, n=10)
    assert len(recs) == 10 and all(r.source == "cf" for r in recs)
    # the failed prune took nothing of the version it could not delete
    trained_model.refresh_from_db()
    assert trained_model.status == ModelVersion.Status.RETIRED
    assert VersionItem.objects.filter(version=trained_model).count() == trained_model.n_items
    assert storage.dense_weights_load(version_id=trained_model.pk) is not None


def test_a_run_whose_process_died_is_taken_over(trained_model):
    version = services.training_start()
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.TRAINING, claimed_by="localhost-that-is-us:999999999"
    )
    # a dead pid on another "host" is judged by its heartbeat only: still considered alive
    assert services.model_train(version_id=version.pk).status == ModelVersion.Status.TRAINING
    import socket

    ModelVersion.objects.filter(pk=version.pk).update(
        claimed_by=f"{socket.gethostname()}:999999999"
    )
    done = services.model_train(version_id=version.pk)
    assert done.status == ModelVersion.Status.ACTIVE


def test_a_live_pid_that_is_not_the_claimant_does_not_hold_the_run(trained_model):
    import os
    import socket

    # after a container restart a new process can get the dead claimant's pid: the start
    # time recorded with the claim tells them apart
    assert owners.owner_alive(owners.process_owner())
    host = socket.gethostname()
    assert not owners.owner_alive(f"{host}:{os.getpid()}:1")
    assert not owners.owner_alive(f"{host}:999999999:1")
    assert owners.owner_alive(f"{host}:{os.getpid()}")  # an old claim without a start time
    version = services.training_start(algorithm="wedlae")
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.TRAINING, claimed_by=f"{host}:{os.getpid()}:1"
    )
    assert services.model_train(version_id=version.pk).status == ModelVersion.Status.ACTIVE


def test_stale_runs_are_marked_failed(trained_model):
    from datetime import timedelta

    from django.utils import timezone

    version = services.training_start()
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.TRAINING,
        claimed_by="elsewhere:1",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    assert services.versions_fail_stale() == 1
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED
    assert selectors.version_active() == trained_model


def test_old_versions_are_pruned(trained_model):
    for _ in range(3):
        _train()
    versions.versions_prune(keep=1)
    retired = ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED)
    assert retired.count() == 1
    assert ModelVersion.objects.filter(status="active").count() == 1
    live = set(ModelVersion.objects.values_list("pk", flat=True))
    assert set(VersionItem.objects.values_list("version_id", flat=True).distinct()) <= live


def test_training_with_no_interactions_fails_cleanly(db):
    Interaction.objects.all().delete()
    version = services.training_start()
    with pytest.raises(Exception, match="no interactions"):
        services.model_train(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED


def test_unknown_model_is_refused(db):
    from recsite.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="unknown model"):
        services.training_start(algorithm="nope")


def test_scheduled_training_runs_only_when_interactions_changed(trained_model, django_user_model):
    ModelVersion.objects.filter(pk=trained_model.pk).update(
        n_interactions=Interaction.objects.filter(kind__in=POSITIVE_KINDS).count()
    )
    assert services.training_scheduled() is None
    from catalog.services import interaction_record

    user = django_user_model.objects.create_user("newcomer", password="x-Secret-123")
    interaction_record(user=user, item=Item.objects.get(external_id="1"), kind="like")
    version = services.training_scheduled()
    assert version is not None and version.trigger == "schedule"


def test_the_dense_weights_file_is_served_and_removed_with_its_version(trained_model):
    loaded = storage.dense_weights_load(version_id=trained_model.pk)
    assert loaded is not None, "the default (dense EASE-family) model saves its weights file"
    item_ids, W = loaded
    assert W.shape == (len(item_ids), len(item_ids)) == (9724, 9724)
    index = scoring.neighbour_index(trained_model)
    assert isinstance(index.W, np.ndarray)  # scores come from the full matrix, not the table
    # the table keeps the K largest weights of each row of the same matrix
    row = VersionItem.objects.get(version=trained_model, item__title="Alien", item__year=1979)
    ids, weights = storage.unpack_neighbors(row.neighbors, row.weights)
    i = int(np.searchsorted(item_ids, row.item_id))
    cols = np.searchsorted(item_ids, ids)
    assert np.allclose(W[i, cols], weights, atol=1e-6)
    versions.versions_prune(keep=0)  # the active version is never pruned
    assert storage.dense_weights_load(version_id=trained_model.pk) is not None


def test_recent_favourites_weigh_more_for_the_default_model(trained_model, django_user_model):
    from catalog.services import interaction_record

    assert trained_model.params.get("recency", 0) > 0
    user = django_user_model.objects.create_user("recent", password="x-Secret-123")
    toy = Item.objects.get(title="Toy Story", year=1995)
    alien = Item.objects.get(title="Alien", year=1979)
    interaction_record(user=user, item=toy, kind="like")
    interaction_record(user=user, item=alien, kind="like")  # the latest
    weighted = history.history_for_version(
        selectors.user_history_ids(user_id=user.pk), selectors.version_active()
    )
    assert weighted.liked[0] == alien.pk
    assert weighted.weights[alien.pk] > weighted.weights[toy.pk] > 1.0


def test_a_catalog_too_large_for_the_dense_model_trains_the_large_catalog_model(
    trained_model, django_user_model
):
    # session_ease holds a dense items x items matrix: above max_items the run trains ALS
    version = _train(algorithm="session_ease", params={"max_items": 5000})
    assert version.status == ModelVersion.Status.ACTIVE, version.error
    assert version.algorithm == "als" and "max_items" not in version.params
    assert version.serving == ModelVersion.Serving.FACTORS and version.n_items == 9724
    user = django_user_model.objects.get(username="ml_1")
    recs = selectors.recommendations_for_user(user=user, n=10)
    assert len(recs) == 10 and all(r.source == "cf" for r in recs)


def test_a_run_is_enqueued_by_task_name_and_trains_in_process_without_redis(
    db, django_user_model, django_capture_on_commit_callbacks
):
    # services find model_train_task in Celery's registry (they do not import the task module);
    # without REDIS_URL .delay() runs it here, once the run's transaction commits
    from django.conf import settings

    from recsite.celery import app

    assert settings.CELERY_TASK_ALWAYS_EAGER
    assert app.tasks[services.MODEL_TRAIN_TASK].name == services.MODEL_TRAIN_TASK
    user = django_user_model.objects.create_user("eager", password="x-Secret-123")
    for n in range(3):
        item = Item.objects.create(external_id=f"eager-{n}", title=f"Eager {n}")
        Interaction.objects.create(user=user, item=item, kind="like")
    with django_capture_on_commit_callbacks(execute=True):
        version = services.training_start(algorithm="popularity")
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE, version.error
    assert version.task_id and version.progress == 1.0
