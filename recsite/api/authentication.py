"""Token authentication in one fixed statement.

DRF's ``TokenAuthentication`` compiles ``Token.objects.select_related("user").get(key=...)`` on
every request: for a cheap endpoint (a cached list, an item) building that query cost more than
running it. The same check (the token exists, its user is active) runs here as one fixed statement
with the rows built by ``Model.from_db`` (``recsite.model_rows``), so ``request.user`` and ``request.auth`` are the same
model instances DRF would give.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from recsite.model_rows import ModelRows

User = get_user_model()

_TOKENS = ModelRows(Token)
_USERS = ModelRows(User)
_SQL = (
    f"SELECT {_TOKENS.columns('t')}, {_USERS.columns('u')}"
    f" FROM {Token._meta.db_table} t JOIN {User._meta.db_table} u"
    f" ON u.{User._meta.pk.column} = t.{Token._meta.get_field('user').column}"
    f" WHERE t.{Token._meta.pk.column} = %s"
)


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, read in one fixed statement."""

    def authenticate_credentials(self, key: str) -> tuple:
        # a key longer than the column or holding a NUL byte (which PostgreSQL text refuses)
        # names no token: the same answer as an unknown one, not a server error
        if len(key) > Token._meta.pk.max_length or "\x00" in key:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        with connection.cursor() as cursor:
            cursor.execute(_SQL, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = _TOKENS.instance(row)
        user = _USERS.instance(row[len(_TOKENS.fields) :])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token.user = user
        return user, token
