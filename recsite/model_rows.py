"""Model instances from the rows of a fixed statement, built as the ORM builds them.

A hot path that reads the same columns on every request (a token with its user, a search page,
a list's items) spends more time compiling the ORM's query than running it. :class:`ModelRows`
names a model's columns once (all of them, or all but some), and turns a row of those columns
into the instance ``QuerySet`` iteration would give: each value through its field's converters
(a JSON field's decoding, a timestamp's time zone), then what ``Model.from_db`` does, so the
instance's deferred fields load on access and ``_state`` says where it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import DEFERRED, Field, Model
from django.db.models.base import ModelState
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

__all__ = ["ModelRows"]


class ModelRows:
    """``model``'s concrete fields minus ``exclude`` (attribute names), in the model's order."""

    def __init__(self, model: type[Model], *, exclude: Iterable[str] = ()) -> None:
        excluded = set(exclude)
        self.model = model
        self.fields: list[Field] = [
            f for f in model._meta.concrete_fields if f.attname not in excluded
        ]
        self.names = [f.attname for f in self.fields]
        # every concrete field's place among the row's values (-1: deferred): ``from_db`` given
        # a value (or DEFERRED) for each field skips its own matching of names, which compares
        # each field with every name read (a fifth of a list of 20 items' instances)
        concrete = model._meta.concrete_fields
        self._all_names = [f.attname for f in concrete]
        self._places = [
            self.names.index(f.attname) if f.attname not in excluded else -1 for f in concrete
        ]
        # A model with Django's own ``__init__`` (and no other in its classes), whose fields' class attributes are all plain
        # DeferredAttribute (no ``__set__``: a field with a descriptor of its own, a foreign
        # key's id or a file, may do more on assignment, and goes through ``from_db``), gets
        # its values straight into the instance's ``__dict__`` while no pre_init /
        # post_init receiver is connected (to any model): what ``__init__`` does for such a
        # model, without its loop over the fields and its signals (a third of building an
        # item). Otherwise ``Model.from_db`` builds it.
        own_init = [k for k in model.__mro__ if "__init__" in vars(k)] == [Model, object]
        self._direct = own_init and all(
            type(getattr(model, f.attname, None)) is DeferredAttribute for f in concrete
        )
        # only the fields that convert anything are visited per row; looking the converters up
        # needs no query, so it is done once
        self._converters = [
            (position, field, converters)
            for position, field in enumerate(self.fields)
            if (converters := field.get_db_converters(connection))
        ]

    def columns(self, alias: str) -> str:
        """The fields' columns under the table alias ``alias``, for a SELECT list."""
        quote = connection.ops.quote_name
        return ", ".join(f"{alias}.{quote(f.column)}" for f in self.fields)

    def instance(self, row: Sequence) -> Model:
        """The instance of one row of :meth:`columns` (the row's first ``len(fields)`` values)."""
        values = list(row[: len(self.fields)])
        for position, field, converters in self._converters:
            value = values[position]
            for convert in converters:
                value = convert(value, field, connection)
            values[position] = value
        model = self.model
        if not self._direct or pre_init.receivers or post_init.receivers:
            if len(values) < len(self._places):
                values = [values[i] if i >= 0 else DEFERRED for i in self._places]
            return model.from_db(connection.alias, self._all_names, values)
        new = model.__new__(model)
        state = new._state = ModelState()
        state.adding = False
        state.db = connection.alias
        new.__dict__.update(zip(self.names, values, strict=True))  # a deferred field loads later
        return new
