from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .conftest import assert_error

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_signup_returns_a_working_token(anon_client):
    r = anon_client.post(
        "/api/v1/auth/signup/", {"username": "dora", "password": "a long passphrase 42"}
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["user"]["username"] == "dora" and not body["user"]["is_staff"]
    assert "password" not in body["user"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/v1/auth/me/").json()["username"] == "dora"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"username": "dora", "password": "123"}, "password"),  # too short / numeric
        ({"username": "dora", "password": "password"}, "password"),  # common
        ({"username": "bad name!", "password": "a long passphrase 42"}, "username"),
        ({"password": "a long passphrase 42"}, "username"),
        ({"username": "dora"}, "password"),
    ],
)
def test_signup_rejects_bad_input(anon_client, payload, field):
    body = assert_error(anon_client.post("/api/v1/auth/signup/", payload), 400)
    assert field in str(body["extra"])
    assert not User.objects.filter(username="dora").exists()


def test_signup_rejects_a_taken_username_case_insensitively(anon_client, user):
    r = anon_client.post(
        "/api/v1/auth/signup/", {"username": "ALICE", "password": "a long passphrase 42"}
    )
    assert assert_error(r, 400)["extra"] == {"field": "username"}


def test_token_obtain_and_revoke(anon_client, user):
    r = anon_client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"}
    )
    assert r.status_code == 200
    token = r.json()["token"]
    # the same token until revoked
    again = anon_client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"}
    )
    assert again.json()["token"] == token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/auth/me/").status_code == 200
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert_error(client.get("/api/v1/auth/me/"), 401)
    # a new login issues a new, different token
    fresh = anon_client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"}
    )
    assert fresh.json()["token"] != token


def test_wrong_password_and_unknown_user_get_the_same_answer(anon_client, user):
    wrong = anon_client.post("/api/v1/auth/token/", {"username": "alice", "password": "nope"})
    unknown = anon_client.post("/api/v1/auth/token/", {"username": "zed", "password": "nope"})
    assert assert_error(wrong, 400) == assert_error(unknown, 400)
    assert "alice" not in wrong.content.decode()


def test_inactive_user_gets_no_token(anon_client, user):
    user.is_active = False
    user.save()
    r = anon_client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"}
    )
    assert_error(r, 400)


def test_revoke_needs_authentication(anon_client):
    assert_error(anon_client.delete("/api/v1/auth/token/"), 401)


def test_bad_token_is_401(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    body = assert_error(anon_client.get("/api/v1/auth/me/"), 401)
    assert body["message"] == "Invalid token."


@pytest.mark.parametrize("key", ["0" * 41, "abc\x00def", "", "' OR '1'='1", "x" * 5000], ids=repr)
def test_malformed_tokens_are_401_not_500(anon_client, user, key):
    Token.objects.create(user=user)
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert_error(anon_client.get("/api/v1/auth/me/"), 401)


def test_a_token_authenticates_as_its_user_until_the_user_is_deactivated(anon_client, user):
    from rest_framework.authentication import TokenAuthentication as DRFTokenAuthentication

    from recsite.api.authentication import TokenAuthentication

    token = Token.objects.create(user=user)
    # the same user and token instances, field for field, as DRF's own query gives
    ours = TokenAuthentication().authenticate_credentials(token.key)
    drf = DRFTokenAuthentication().authenticate_credentials(token.key)
    for mine, theirs in zip(ours, drf, strict=True):
        assert type(mine) is type(theirs)
        assert {f.attname: getattr(mine, f.attname) for f in mine._meta.concrete_fields} == {
            f.attname: getattr(theirs, f.attname) for f in theirs._meta.concrete_fields
        }
    assert ours[1].user is ours[0] and not ours[0]._state.adding
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert anon_client.get("/api/v1/auth/me/").json()["username"] == "alice"
    user.is_active = False
    user.save()
    body = assert_error(anon_client.get("/api/v1/auth/me/"), 401)
    assert body["message"] == "User inactive or deleted."


def test_me(user_client, anon_client, staff_client):
    assert user_client.get("/api/v1/auth/me/").json()["username"] == "alice"
    assert staff_client.get("/api/v1/auth/me/").json()["is_staff"] is True
    r = anon_client.get("/api/v1/auth/me/")
    assert_error(r, 401)
    assert r["WWW-Authenticate"] == "Token"


def test_session_auth_keeps_working_with_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/auth/me/").json()["username"] == "alice"
    # unsafe methods over a session need the CSRF token
    assert_error(client.delete("/api/v1/auth/token/"), 403)


def test_ping(anon_client):
    assert anon_client.get("/api/v1/ping/").json() == {"status": "ok"}
