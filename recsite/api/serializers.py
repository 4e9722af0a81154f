"""Input serializers that take the schema at its word.

DRF coerces: ``{"title": 0}`` becomes the title ``"0"``, ``{"value": "4"}`` the rating 4.0,
``{"is_hidden": "yes"}`` True, and ``?kind=`` (blank) reads as no ``kind`` at all. The OpenAPI
schema says a string, a number, a boolean, one of an enum, so a client that sends anything else
has a bug the API should tell it about: with ``StrictInput`` first among a serializer's bases, a
JSON value of the wrong type and a blank query parameter are 400s, before DRF's coercion runs.

The same goes for names the schema does not give: a body's key that is no writable field
(``{"titel": ...}``, or a read-only ``title``) and a query parameter the operation does not take
(``?search=`` where the text is ``q``) would otherwise be dropped without a word, and the client
would get an unfiltered list or an unchanged object back as if it had worked. Query serializers
of paginated lists pass ``context={"also_accepted": PAGINATION_PARAMETERS}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

_NOT_A = "Not a valid {}."
# DRF reads ``format`` itself (content negotiation) before any view
ALWAYS_ACCEPTED = frozenset({"format"})
# unknown names are echoed back in the error; a hostile one can be long
_NAME_SHOWN = 64
_NAMES_SHOWN = 20


def _wrong_type(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` (decoded JSON) is not of the type the schema gives ``field``, or None."""
    if value is None:
        return None  # DRF answers null itself, by the field's allow_null
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else _NOT_A.format("boolean")
    if isinstance(field, serializers.IntegerField):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else _NOT_A.format("integer")
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else _NOT_A.format("number")
    if isinstance(field, serializers.ListField | serializers.MultipleChoiceField):
        return None if isinstance(value, list) else _NOT_A.format("list")
    if isinstance(field, serializers.ChoiceField):
        if all(isinstance(choice, str) for choice in field.choices):
            return None if isinstance(value, str) else _NOT_A.format("string")
        return None
    if isinstance(field, serializers.CharField | serializers.DateTimeField):
        return None if isinstance(value, str) else _NOT_A.format("string")
    return None


class StrictInput:
    """Mixin for input serializers (put it before ``serializers.Serializer``)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors: dict[str, list[str]] = {}
            errors.update(self._unknown_names(data))
            for name, field in self.fields.items():  # type: ignore[attr-defined]
                if field.read_only or name not in data:
                    continue
                if isinstance(data, QueryDict):
                    values = data.getlist(name)
                    if "" in values and not getattr(field, "allow_blank", False):
                        errors[name] = ["This parameter may not be blank."]
                else:
                    problem = _wrong_type(field, data[name])
                    if problem:
                        errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]

    def _unknown_names(self, data: Mapping) -> dict[str, list[str]]:
        fields = self.fields  # type: ignore[attr-defined]
        if isinstance(data, QueryDict):
            context = self.context  # type: ignore[attr-defined]
            takes = sorted({*fields, *context.get("also_accepted", ())})
            unknown = [key for key in data if key not in takes and key not in ALWAYS_ACCEPTED]
            why = {
                key: "Unknown parameter; this operation takes: " + ", ".join(takes)
                for key in unknown
            }
        else:
            writable = sorted(name for name, field in fields.items() if not field.read_only)
            why = {
                key: "This field is read-only."
                if key in fields
                else "Unknown field; the fields are: " + ", ".join(writable)
                for key in data
                if key not in writable
            }
        # a hostile body can hold thousands of keys: the first few say what is wrong
        return {str(key)[:_NAME_SHOWN]: [text] for key, text in list(why.items())[:_NAMES_SHOWN]}
