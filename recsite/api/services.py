"""Account writes for API clients: sign up, issue and revoke tokens."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from rest_framework.authtoken.models import Token

from recsite.exceptions import ApplicationError
from recsite.usernames import (
    username_clash_message,
    username_normalize,
    username_skeleton,
    username_taken,
)

User = get_user_model()


def _username_check(username: str) -> None:
    clash = username_taken(username)
    if clash:
        raise ApplicationError(username_clash_message(clash), {"field": "username"})


def user_signup(*, username: str, password: str, email: str = ""):
    """Create an account (Django's password validators apply) and return it.

    The name is checked as it is stored (NFKC): one that differs from an existing name only by
    case or by look-alike letters is refused (``recsite.usernames``).
    """
    username = username_normalize(username)
    _username_check(username)
    candidate = User(username=username, email=email)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ApplicationError(
            "the password is too weak", {"field": "password", "reasons": list(exc.messages)}
        ) from exc
    try:
        with transaction.atomic():
            # two sign-ups of look-alike names at once: the second waits, then sees the first
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [username_skeleton(username)]
                )
            _username_check(username)
            return User.objects.create_user(username=username, password=password, email=email)
    except IntegrityError as exc:  # lost a race with another sign-up of the same name
        raise ApplicationError("that username is taken", {"field": "username"}) from exc


def token_issue(*, username: str, password: str, request=None) -> Token:
    """The user's API token for these credentials (the same one until it is revoked).

    A wrong username and a wrong password get the same answer.
    """
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise ApplicationError("invalid username or password", status=400)
    token, _ = Token.objects.get_or_create(user=user)
    return token


def token_for(*, user) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


def token_revoke(*, user) -> bool:
    """Delete the user's token: every client using it is signed out. True if one existed."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)
