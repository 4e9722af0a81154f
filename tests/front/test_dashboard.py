"""The staff dashboard: versions, metrics plot, train now with progress, curation state."""

from __future__ import annotations

import pytest
from django.urls import reverse

from front.views.staff import metrics_plot
from recommender.models import ModelVersion

from .conftest import HTMX


@pytest.fixture
def versions(db):
    old = ModelVersion.objects.create(
        algorithm="ease", status="retired", metrics={"recall@20": 0.21, "ndcg@10": 0.18}
    )
    new = ModelVersion.objects.create(
        algorithm="ease",
        status="active",
        progress=1.0,
        metrics={"recall@20": 0.25, "ndcg@10": 0.2, "coverage@20": 0.3},
        timings={"total": 4.2},
    )
    return old, new


@pytest.mark.parametrize("name", ["dashboard", "dashboard-versions"])
def test_non_staff_are_refused(client, user_client, name):
    for c in (client, user_client):
        response = c.get(reverse(name))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_non_staff_cannot_train(user_client):
    before = ModelVersion.objects.count()  # another module's committed model may be there
    response = user_client.post(reverse("training-create"), **HTMX)
    assert response.status_code == 302
    assert ModelVersion.objects.count() == before


def test_dashboard_shows_versions_plot_and_curation(staff_client, versions, catalog):
    old, new = versions
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert f"v{new.pk}" in page and f"v{old.pk}" in page
    assert "0.2500" in page and "4.2 s" in page
    assert "<svg" in page and "<polyline" in page and "recall@20" in page
    assert "Train now" in page
    assert "Curation" in page and "Qqsecret Hidden" in page  # the hidden item is listed
    assert 'href="/admin/catalog/item/' in page


def test_metrics_plot_goes_oldest_to_newest(versions):
    old, new = versions
    plot = metrics_plot([new, old])
    recall = plot.series[0]
    assert [p["label"] for p in recall["points"]] == [f"v{old.pk}", f"v{new.pk}"]
    assert recall["points"][1]["y"] < recall["points"][0]["y"]  # higher is up
    assert metrics_plot([]).empty


def test_progress_partial_polls_while_running_and_stops_when_done(staff_client, db):
    running = ModelVersion.objects.create(
        algorithm="ease", status="training", progress=0.4, progress_message="fitting"
    )
    response = staff_client.get(reverse("training-progress", args=[running.pk]), **HTMX)
    page = response.content.decode()
    assert 'hx-trigger="every 500ms"' in page and 'aria-valuenow="40"' in page and "fitting" in page
    assert "HX-Trigger" not in response
    ModelVersion.objects.filter(pk=running.pk).update(status="active", progress=1.0)
    response = staff_client.get(reverse("training-progress", args=[running.pk]), **HTMX)
    page = response.content.decode()
    assert "every 500ms" not in page and 'aria-valuenow="100"' in page
    assert response["HX-Trigger"] == "training-finished"


def test_an_active_run_whose_prune_failed_says_so_beside_its_bar(staff_client, db):
    done = ModelVersion.objects.create(
        algorithm="ease",
        status="active",
        progress=1.0,
        progress_message="done",
        error="pruning old versions failed: ProgrammingError: permission denied",
    )
    page = staff_client.get(reverse("training-progress", args=[done.pk]), **HTMX).content.decode()
    assert "now serving every list" in page
    assert "Note: pruning old versions failed: ProgrammingError: permission denied" in page


def test_running_version_shows_its_bar_on_the_dashboard(staff_client, db):
    running = ModelVersion.objects.create(algorithm="ease", status="pending")
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert f'id="progress-{running.pk}"' in page


def test_versions_partial(staff_client, versions):
    page = staff_client.get(reverse("dashboard-versions"), **HTMX).content.decode()
    assert page.lstrip().startswith('<section class="panel" id="versions"')


def test_train_now_answers_with_a_polling_progress_bar(staff_client, db):
    # inside the test's transaction the run is only enqueued on commit (as with a worker):
    # the answer is the bar of the pending run, polling its row
    response = staff_client.post(reverse("training-create"), **HTMX)
    assert response.status_code == 200
    version = ModelVersion.objects.get()
    assert version.status == "pending" and version.requested_by.username == "qq_staff"
    page = response.content.decode()
    assert f'id="progress-{version.pk}"' in page and 'hx-trigger="every 500ms"' in page
    # pressing again while it runs returns the same run, not a second one
    staff_client.post(reverse("training-create"), **HTMX)
    assert ModelVersion.objects.count() == 1


def test_train_now_without_htmx_redirects_to_the_dashboard(staff_client, db):
    response = staff_client.post(reverse("training-create"))
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
