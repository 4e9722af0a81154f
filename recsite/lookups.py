"""``field__any=[...]``: membership as ``field = ANY(%s)`` with the list bound as one array.

``field__in`` renders one ``%s`` per value, which the driver then parses and adapts one by
one: for the few hundred ids a recommendation list reads (candidates, the user's favourites)
that costs more than the query itself. With ``__any`` the statement text stays the same whatever
the list's length, and PostgreSQL uses the same index as for ``IN``.
"""

from __future__ import annotations

from django.db.models import IntegerField, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):  # noqa: ANN201 - Django's signature
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler, connection):  # noqa: ANN001, ANN201 - Django's signature
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, self.rhs)


def register() -> None:
    """Integer fields (auto and big ones included) get ``__any`` (a list of ints)."""
    IntegerField.register_lookup(AnyOf)
