"""Staff endpoints: curation flags, training runs, model versions; non-staff are refused."""

from __future__ import annotations

import time

import pytest
import requests
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from catalog.models import Item
from recommender import runner
from recommender.models import ModelVersion, VersionItem

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def test_curation_get_and_patch(staff_client, catalog):
    hidden = catalog["hidden"]
    r = staff_client.get(f"/api/v1/staff/items/{hidden.pk}/")
    assert r.status_code == 200 and r.json()["is_hidden"] is True
    r = staff_client.patch(
        f"/api/v1/staff/items/{hidden.pk}/", {"is_hidden": False, "is_pinned": True, "boost": 2.5}
    )
    assert r.status_code == 200, r.content
    assert r.json() | {"updated_at": ""} == {
        "id": hidden.pk,
        "title": hidden.title,
        "year": 2001,
        "is_hidden": False,
        "is_featured": False,
        "is_pinned": True,
        "boost": 2.5,
        "updated_at": "",
    }
    hidden.refresh_from_db()
    assert not hidden.is_hidden and hidden.is_pinned and hidden.boost == 2.5
    # read-only fields are ignored, not written
    staff_client.patch(f"/api/v1/staff/items/{hidden.pk}/", {"title": "Renamed"})
    assert Item.objects.get(pk=hidden.pk).title == hidden.title


@pytest.mark.parametrize("payload", [{"boost": 11}, {"boost": "high"}, {"is_hidden": "maybe"}])
def test_curation_rejects_bad_values(staff_client, catalog, payload):
    assert_error(staff_client.patch(f"/api/v1/staff/items/{catalog['space'].pk}/", payload), 400)


def test_curation_of_a_missing_item_is_404(staff_client):
    assert_error(staff_client.patch("/api/v1/staff/items/999999999/", {"is_pinned": True}), 404)


def test_training_run_start_and_progress(
    staff_client, staff, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        r = staff_client.post("/api/v1/staff/training-runs/", {})
    assert r.status_code == 202, r.content
    run = r.json()
    assert run["status"] == "pending" and run["requested_by"] == "carol"
    assert r["Location"] == f"/api/v1/staff/model-versions/{run['id']}/"
    # pressing the button twice starts one run
    with django_capture_on_commit_callbacks(execute=False):
        again = staff_client.post("/api/v1/staff/training-runs/", {})
    assert again.json()["id"] == run["id"]
    detail = staff_client.get(f"/api/v1/staff/model-versions/{run['id']}/").json()
    assert set(detail) >= {"status", "progress", "progress_message", "metrics", "timings"}
    listing = staff_client.get("/api/v1/staff/model-versions/").json()
    assert run["id"] in [v["id"] for v in listing["results"]]


def test_training_run_rejects_an_unknown_algorithm(staff_client):
    body = assert_error(
        staff_client.post("/api/v1/staff/training-runs/", {"algorithm": "magic"}), 400
    )
    assert "algorithm" in body["extra"]["fields"]


@pytest.mark.django_db(transaction=True)
def test_a_training_run_trains_beside_the_request_and_is_polled_to_its_end(
    live_server, staff, catalog
):
    """Over HTTP, without a Celery worker (no REDIS_URL): the POST answers at once with the run
    queued, as the dashboard's "train now" does, and the run trains beside it to the end."""
    token = Token.objects.create(user=staff)
    headers = {"Authorization": f"Token {token.key}"}
    # The test holds a lock the run needs to write its rows, so the run cannot end before the
    # lock is released: a request that trained inside itself would never answer meanwhile.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE recommender_versionitem IN EXCLUSIVE MODE")
        r = requests.post(
            f"{live_server.url}/api/v1/staff/training-runs/",
            json={"algorithm": "popularity"},
            headers=headers,
            timeout=60,  # not a speed check: it ends the test of a request that trains itself
        )
        assert r.status_code == 202, r.content
        run = r.json()
        assert run["status"] in {"pending", "training"} and run["progress"] < 1.0, run
        assert run["requested_by"] == staff.username
        url = f"{live_server.url}{r.headers['Location']}"
        assert r.headers["Location"] == f"/api/v1/staff/model-versions/{run['id']}/"
        detail = requests.get(url, headers=headers, timeout=30).json()
        assert detail["status"] in {"pending", "training"}, detail
        assert not VersionItem.objects.filter(version_id=run["id"]).exists()
    # released: polling the run's URL follows it to the end
    for _ in range(1200):
        detail = requests.get(url, headers=headers, timeout=30).json()
        if detail["status"] not in {"pending", "training"}:
            break
        time.sleep(0.1)
    assert runner.background_wait(timeout=120)
    assert detail["status"] == "active", detail
    assert detail["progress"] == 1.0 and detail["n_interactions"] == 6
    assert VersionItem.objects.filter(version_id=run["id"]).count() == detail["n_items"] == 3


def test_failed_run_shows_one_line_error(staff_client):
    with transaction.atomic():
        v = ModelVersion.objects.create(
            algorithm="ease", status="failed", error="ValueError: boom\nTraceback (most recent...)"
        )
    assert (
        staff_client.get(f"/api/v1/staff/model-versions/{v.pk}/").json()["error"]
        == "ValueError: boom"
    )


ANON, USER = 401, 403


@pytest.mark.parametrize("who, expected", [("anon", ANON), ("owner", USER), ("other", USER)])
def test_staff_endpoints_refuse_non_staff(clients, catalog, who, expected):
    client = clients[who]
    v = ModelVersion.objects.create(algorithm="ease")
    item = catalog["space"]
    calls = [
        client.get(f"/api/v1/staff/items/{item.pk}/"),
        client.patch(f"/api/v1/staff/items/{item.pk}/", {"is_hidden": True}),
        client.post("/api/v1/staff/training-runs/", {}),
        client.get("/api/v1/staff/model-versions/"),
        client.get(f"/api/v1/staff/model-versions/{v.pk}/"),
        client.get("/api/v1/staff/model-versions/999999/"),  # no existence leak either
    ]
    for response in calls:
        assert_error(response, expected)
    item.refresh_from_db()
    assert not item.is_hidden
    assert ModelVersion.objects.count() == 1
