"""One error shape everywhere, and the throttles for anonymous, authenticated and scoped clients."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def rates(settings, **overrides: str) -> None:
    conf = dict(django_settings.REST_FRAMEWORK)
    conf["DEFAULT_THROTTLE_RATES"] = {**conf["DEFAULT_THROTTLE_RATES"], **overrides}
    settings.REST_FRAMEWORK = conf


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/items/abc/", "/api/v1/me/history/1/x/"])
def test_unknown_api_paths_are_json_404(anon_client, path):
    assert_error(anon_client.get(path), 404)


def test_method_not_allowed_and_unsupported_media_type(user_client):
    assert_error(user_client.put("/api/v1/me/recommendations/", {}), 405)
    r = user_client.generic("POST", "/api/v1/me/history/", "a=b", content_type="text/csv")
    assert_error(r, 415)


def test_anonymous_clients_are_throttled_by_ip(settings, anon_client):
    rates(settings, anon="3/min")
    for _ in range(3):
        assert anon_client.get("/api/v1/ping/").status_code == 200
    r = anon_client.get("/api/v1/ping/")
    body = assert_error(r, 429)
    assert body["extra"]["wait_seconds"] > 0 and int(r["Retry-After"]) > 0
    # another address has its own budget
    assert anon_client.get("/api/v1/ping/", REMOTE_ADDR="10.0.0.9").status_code == 200


def test_users_are_throttled_per_user_not_per_ip(settings, user_client, other_client):
    rates(settings, user="2/min")
    assert user_client.get("/api/v1/auth/me/").status_code == 200
    assert user_client.get("/api/v1/auth/me/").status_code == 200
    assert_error(user_client.get("/api/v1/auth/me/"), 429)
    assert other_client.get("/api/v1/auth/me/").status_code == 200


def test_token_endpoint_has_a_stricter_scope(settings, anon_client, user):
    rates(settings, auth="2/min", anon="100/min")
    for _ in range(2):
        assert_error(
            anon_client.post("/api/v1/auth/token/", {"username": "alice", "password": "x"}), 400
        )
    r = anon_client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"}
    )
    assert_error(r, 429)  # even the right password waits: no guessing at speed
    assert anon_client.get("/api/v1/ping/").status_code == 200  # other endpoints unaffected


def test_training_scope(settings, staff_client, django_capture_on_commit_callbacks):
    rates(settings, training="1/hour")
    with django_capture_on_commit_callbacks(execute=False):
        assert staff_client.post("/api/v1/staff/training-runs/", {}).status_code == 202
        assert_error(staff_client.post("/api/v1/staff/training-runs/", {}), 429)
    assert staff_client.get("/api/v1/staff/model-versions/").status_code == 200


def test_forwarded_for_is_ignored_without_trusted_proxies(settings, anon_client):
    rates(settings, anon="1/min")
    assert anon_client.get("/api/v1/ping/", HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 200
    assert_error(anon_client.get("/api/v1/ping/", HTTP_X_FORWARDED_FOR="2.2.2.2"), 429)


def test_unexpected_errors_are_a_generic_500(user_client, monkeypatch):
    """A bug never leaks its message or traceback to the client."""
    from recsite.api import auth

    def boom(self, request):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(auth.PingView, "get", boom)
    r = user_client.get("/api/v1/ping/")
    body = assert_error(r, 500)
    assert body == {"message": "Internal server error.", "extra": {}}
