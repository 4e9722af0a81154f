"""The API's JSON renderer writes what DRF's JSONRenderer writes."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import numpy as np
import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers

from recsite.api.renderers import JSONRenderer

PAYLOADS = [
    {"model_version": 3, "count": 0, "results": []},
    {
        "title": 'Amélie (2001) \u2028 \u2029 "quoted" \\ \n',
        "score": 0.123456,
        "weights": [1.0, -0.0, 100.0, 1e16, 12345678.9, 1 / 3],
        "when": datetime.datetime(2026, 12, 5, 13, 0, 1, 123456, tzinfo=datetime.UTC),
        "naive": datetime.datetime(2026, 12, 5, 13, 0, 1),
        "day": datetime.date(2026, 12, 5),
        "span": datetime.timedelta(seconds=90),
        "price": decimal.Decimal("1.50"),
        "id": uuid.UUID(int=7),
        "lazy": gettext_lazy("hidden"),
        "numpy": [np.float32(0.3), np.int64(7), np.array([1, 2])],
        "set": {5},
        "by_id": {1: "a", 2: "b"},
        "nested": {"a": [None, True, False, {"b": ()}]},
    },
]


@pytest.mark.parametrize("data", PAYLOADS)
def test_the_same_bytes_as_drf(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_what_orjson_spells_otherwise_parses_the_same():
    data = {"small": [1e-7, 2.5e-5], "big": 2**70}
    got = JSONRenderer().render(data)
    assert json.loads(got) == json.loads(renderers.JSONRenderer().render(data)) == data


def test_an_indented_response_and_an_unknown_type_are_drfs():
    data = {"a": [1, {"b": 2}]}
    indented = JSONRenderer().render(data, "application/json; indent=2")
    assert indented == renderers.JSONRenderer().render(data, "application/json; indent=2")
    assert b"\n  " in indented
    with pytest.raises(TypeError):
        JSONRenderer().render({"x": object()})
    assert JSONRenderer().render(None) == b""
