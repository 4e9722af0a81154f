from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_schema_documents_every_endpoint_and_the_error_shape():
    r = Client().get("/api/v1/schema/?format=json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    assert {
        "/api/v1/auth/signup/",
        "/api/v1/auth/token/",
        "/api/v1/auth/me/",
        "/api/v1/items/",
        "/api/v1/items/{id}/",
        "/api/v1/items/{id}/similar/",
        "/api/v1/me/recommendations/",
        "/api/v1/me/history/",
        "/api/v1/me/history/{id}/",
        "/api/v1/staff/items/{id}/",
        "/api/v1/staff/training-runs/",
        "/api/v1/staff/model-versions/",
        "/api/v1/staff/model-versions/{id}/",
    } <= paths
    assert schema["components"]["schemas"]["Error"]["required"] == ["message", "extra"]
    rec = schema["paths"]["/api/v1/me/recommendations/"]["get"]
    assert rec["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert "tokenAuth" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_use_local_static_files(path):
    html = Client().get(path).content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html


def test_request_bodies_take_only_their_listed_properties():
    """The API refuses a body key that is no writable field (StrictInput); the schema says so,
    which is what keeps schemathesis' positive data inside what is accepted."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    requests = {
        name: component
        for name, component in schema["components"]["schemas"].items()
        if name.endswith("Request")
    }
    assert {"InteractionCreateRequest", "PatchedItemCurationRequest", "MessageInputRequest"} <= set(
        requests
    )
    for name, component in requests.items():
        assert component.get("additionalProperties") is False, name
