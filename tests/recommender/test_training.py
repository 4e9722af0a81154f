"""Training runs: versions written beside the active one, atomic activation, failure safety."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog.models import Interaction, Item
from recommender import selectors, services
from recommender.models import ModelVersion, VersionItem

pytestmark = pytest.mark.django_db(transaction=False)


def _train(**kwargs) -> ModelVersion:
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
    services.version_activate(version_id=first.pk)
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
    version = services.training_start()
    with pytest.raises(Exception, match="disk full"):
        services.model_train(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED
    assert "disk full" in version.error
    assert not VersionItem.objects.filter(version=version).exists()
    assert selectors.version_active() == trained_model
    served_after = [r.item.pk for r in selectors.recommendations_for_user(user=user, n=10)]
    assert served_after == served_before


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
    services.versions_prune(keep=1)
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
        n_interactions=Interaction.objects.filter(kind__in=["rating", "like"]).count()
    )
    assert services.training_scheduled() is None
    from catalog.services import interaction_record

    user = django_user_model.objects.create_user("newcomer", password="x-Secret-123")
    interaction_record(user=user, item=Item.objects.get(external_id="1"), kind="like")
    version = services.training_scheduled()
    assert version is not None and version.trigger == "schedule"
