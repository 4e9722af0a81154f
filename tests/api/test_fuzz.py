"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis), against a live
server: no request may produce a 5xx, and every response must conform to the schema (status
code documented, content type, body and headers).

Runs as a staff user (so staff and per-user endpoints are reached; the permission matrix for other
actors is tested in the endpoint tests) with throttling relaxed. ``RECSITE_FUZZ_EXAMPLES`` bounds
the examples per operation (default 15: about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("RECSITE_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _schema_dict() -> dict:
    """The schema /api/v1/schema/ serves (generated here: schemathesis' lazy fixture loading is
    not compatible with pytest 9; ``test_served_schema_is_the_fuzzed_one`` ties the two)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


SCHEMA = _schema_dict()
schema = schemathesis.openapi.from_dict(SCHEMA)


def test_served_schema_is_the_fuzzed_one(fuzz_env):
    with urllib.request.urlopen(f"{fuzz_env['url']}/api/v1/schema/?format=json") as response:
        assert json.loads(response.read()) == SCHEMA


@pytest.mark.slow
def test_api_fuzz(fuzz_env):
    """Every operation, with schema-valid (positive) and schema-violating (negative) inputs.

    One test for all operations: each live-server test flushes the database afterwards, so one
    flush instead of one per operation."""
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                case.call_and_validate(
                    base_url=fuzz_env["url"], headers=fuzz_env["headers"], checks=CHECKS
                )

            try:
                run()
            except Unsatisfiable:
                # no parameters and no body: nothing can violate the schema (negative mode)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
