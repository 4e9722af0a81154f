"""Input serializers that take the schema at its word.

DRF coerces: ``{"title": 0}`` becomes the title ``"0"``, ``{"value": "4"}`` the rating 4.0,
``{"is_hidden": "yes"}`` True, and ``?kind=`` (blank) reads as no ``kind`` at all. The OpenAPI
schema says a string, a number, a boolean, one of an enum, so a client that sends anything else
has a bug the API should tell it about: with ``StrictInput`` first among a serializer's bases, a
JSON value of the wrong type and a blank query parameter are 400s, before DRF's coercion runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

_NOT_A = "Not a valid {}."


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
