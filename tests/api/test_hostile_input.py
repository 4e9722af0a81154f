"""Hand-written hostile input (issue #17): every one is a 4xx with the ``{"message", "extra"}``
body, anonymously and as a signed-in user, never a 500 or an HTML page; and what the schema says
about a response (nullability, the event stream) is what is served."""

from __future__ import annotations

import base64
import json
import subprocess

import jsonschema
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from catalog.models import Interaction, Preference
from chat.models import Conversation, Message
from front.forms import SignupForm
from recsite.usernames import username_skeleton
from tests.production.conftest import PYTHON, REPO, production_env

from .conftest import assert_error

pytestmark = pytest.mark.django_db
User = get_user_model()

BIG = 2_621_440 + 1  # one byte over DATA_UPLOAD_MAX_MEMORY_SIZE's default


def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


@pytest.fixture
def conversation(user) -> Conversation:
    return Conversation.objects.create(user=user, title="alice's chat")


def _post_routes(conversation: Conversation) -> list[str]:
    return [
        "/api/v1/auth/signup/",
        "/api/v1/auth/token/",
        "/api/v1/me/history/",
        "/api/v1/me/preferences/",
        "/api/v1/conversations/",
        f"/api/v1/conversations/{conversation.pk}/messages/",
        f"/api/v1/conversations/{conversation.pk}/messages/stream/",
        "/api/v1/staff/training-runs/",
        "/api/v1/no-such-route/",
    ]


# --- bodies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anon", "owner"])
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"]
)
def test_a_body_over_the_limit_is_413_on_every_route(clients, conversation, who, content_type):
    body = b'{"text": "' + b"a" * BIG + b'"}'
    for url in _post_routes(conversation):
        r = clients[who].post(url, body, content_type=content_type)
        assert_error(r, 413)
    assert Conversation.objects.count() == 1 and not Message.objects.exists()


def _refused_before_parsing(url: str, who: str) -> int | None:
    """The status a route answers before it reads the body, if it does (who may not post)."""
    if "no-such-route" in url:
        return 404
    if "/staff/" in url:
        return 401 if who == "anon" else 403
    if who == "anon" and "/auth/" not in url:
        return 401
    return None


@pytest.mark.parametrize("who", ["anon", "owner"])
def test_json_nested_1000_deep_is_400(clients, conversation, who):
    body = "[" * 1000 + "]" * 1000
    for url in _post_routes(conversation):
        r = clients[who].post(url, body, content_type="application/json")
        assert_error(r, _refused_before_parsing(url, who) or 400)
    assert Conversation.objects.count() == 1 and not Message.objects.exists()


def test_json_depth_limit_is_the_setting(user_client, settings):
    settings.API_MAX_JSON_DEPTH = 3
    nested = {"title": {"a": {"b": {"c": 1}}}}
    body = assert_error(user_client.post("/api/v1/conversations/", nested, format="json"), 400)
    assert "deeper than 3" in body["message"]
    ok = user_client.post("/api/v1/conversations/", {"title": "flat"}, format="json")
    assert ok.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"title": NaN}',
        b"\xff\xfe\x00",
        b'{"title": "' + b"9" * 5000 + b'"}',
        b'{"title": ' + b"9" * 5000 + b"}",
        b"[]",
        b'"a string"',
    ],
)
def test_malformed_json_is_400(user_client, body):
    assert_error(
        user_client.post("/api/v1/conversations/", body, content_type="application/json"), 400
    )
    assert not Conversation.objects.exists()


def test_a_junk_multipart_body_creates_nothing(user_client):
    r = user_client.post(
        "/api/v1/conversations/",
        b"junk, not multipart at all",
        content_type="multipart/form-data; boundary=xyz",
    )
    assert_error(r, 415)
    r = user_client.post(
        "/api/v1/conversations/", b"title=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error(r, 415)
    assert not Conversation.objects.exists()


def test_nul_in_text_input_is_400(user_client, anon_client, conversation):
    assert_error(user_client.post("/api/v1/conversations/", {"title": "a\x00b"}), 400)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    assert_error(user_client.post(url, {"text": "hi\x00"}), 400)
    assert_error(
        anon_client.post("/api/v1/auth/token/", {"username": "a\x00", "password": "x"}), 400
    )


# --- cursors and query parameters --------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "cD1hYmM="},  # p=abc against the popularity count (an integer)
        {"cursor": "garbage"},
        {"cursor": _cursor("o=-1")},
        {"cursor": _cursor("r=x")},
        {"cursor": _cursor("p=99999999999999999999999")},
        {"ordering": "year", "cursor": _cursor("p=1e309")},
        {"ordering": "-year", "cursor": _cursor("p=1.5")},
        {"ordering": "title", "cursor": _cursor("p=a\x00b")},
        {"ordering": "relevance", "q": "zorblax", "cursor": _cursor("p=inf")},
        {"ordering": "relevance", "q": "zorblax", "cursor": _cursor("p=nan")},
        {"ordering": "relevance", "q": "zorblax", "cursor": _cursor("p=abc")},
    ],
)
@pytest.mark.parametrize("who", ["anon", "owner"])
def test_cursors_that_do_not_fit_are_404(clients, catalog, params, who):
    """DRF's "Invalid cursor": the position named does not exist (it was a 500 from the database)."""
    body = assert_error(clients[who].get("/api/v1/items/", params), 404)
    assert body["message"] == "Invalid cursor"


@pytest.mark.parametrize("page_size", ["abc", "0", "-5", "101", "1e3", "100000"])
@pytest.mark.parametrize("who", ["anon", "owner"])
def test_page_size_outside_1_to_100_is_400(clients, catalog, page_size, who):
    body = assert_error(clients[who].get("/api/v1/items/", {"page_size": page_size}), 400)
    assert set(body["extra"]["fields"]) == {"page_size"}


@pytest.mark.parametrize("ordering", ["popular", "title", "-title", "year", "-year", "relevance"])
def test_the_cursors_the_api_hands_out_still_work(anon_client, catalog, ordering):
    url = f"/api/v1/items/?q=zorblax&page_size=2&ordering={ordering}"
    seen = []
    while url:
        r = anon_client.get(url)
        assert r.status_code == 200, r.content
        seen += [i["id"] for i in r.json()["results"]]
        url = r.json()["next"]
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize("cursor", ["cD14", _cursor("p=2024-13-45"), _cursor("p=\x00")])
def test_bad_cursors_on_my_lists_are_404(user_client, staff_client, interaction, cursor):
    for url in ("/api/v1/me/history/", "/api/v1/conversations/"):
        assert_error(user_client.get(url, {"cursor": cursor}), 404)
    assert_error(staff_client.get("/api/v1/staff/model-versions/", {"cursor": cursor}), 404)


def test_page_size_in_range_is_honoured(anon_client, catalog):
    assert len(anon_client.get("/api/v1/items/", {"page_size": 1}).json()["results"]) == 1
    assert anon_client.get("/api/v1/items/", {"page_size": 100}).status_code == 200


# --- paths, formats, hosts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/items/%0A/", "/api/v1/%0A", "/api/v1/items/1%0A/", "/api/v1/nope", "/api/v2/items/"],
)
def test_unknown_api_paths_are_json_404(anon_client, path):
    assert_error(anon_client.get(path), 404)


def test_no_browsable_html(anon_client, catalog):
    assert_error(anon_client.get("/api/v1/items/", {"format": "api"}), 404)
    r = anon_client.get("/api/v1/items/", HTTP_ACCEPT="text/html")
    assert_error(r, 406)
    # a browser's usual Accept header still gets JSON
    r = anon_client.get("/api/v1/items/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert r.status_code == 200 and r["Content-Type"] == "application/json"


def test_errors_django_raises_before_a_view_are_json():
    # a Host header not in ALLOWED_HOSTS: Django's 400 page, here as the API's error body
    assert_error(Client(HTTP_HOST="evil.example").get("/api/v1/items/"), 400)
    # outside the API, Django's own pages are untouched
    r = Client(HTTP_HOST="evil.example").get("/items/")
    assert r.status_code == 400 and not r["Content-Type"].startswith("application/json")


def test_production_docs_render_without_collectstatic(tmp_path):
    """Production settings (the manifest storage) with an empty STATIC_ROOT: the docs page
    renders (linking the files by their plain names) instead of a 500."""
    script = (
        "from django.test import Client; "
        "r = Client().get('/api/v1/docs/', HTTP_HOST='recsite.example.org', secure=True); "
        "print(r.status_code)"
    )
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script],
        cwd=REPO,
        env=production_env(DJANGO_STATIC_ROOT=str(tmp_path / "static"), LOG_REQUESTS="false"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1:] == ["200"], result.stdout + result.stderr


# --- sign-up ------------------------------------------------------------------------------------


def _signup(client, username: str, email: str = ""):
    return client.post(
        "/api/v1/auth/signup/",
        {"username": username, "password": "correct horse battery 7", "email": email},
    )


def test_signup_refuses_an_email_longer_than_the_column(anon_client):
    email = "a" * 249 + "@example.org"  # 261 characters, a valid address
    body = assert_error(_signup(anon_client, "longmail", email), 400)
    assert "email" in body["extra"]["fields"]
    assert not User.objects.filter(username="longmail").exists()
    assert _signup(anon_client, "okmail", "a" * 242 + "@example.org").status_code == 201


@pytest.mark.parametrize(
    ("existing", "attempt"),
    [
        ("sec_dupdce2", "sec_ＤＵＰＤＣＥ２"),  # fullwidth: NFKC makes it sec_DUPDCE2
        ("sec_dupdce2", "SEC_DUPDCE2"),
        ("sec_DUPDCE2", "sec_dupdce2"),
        ("bob", "bоb"),  # Cyrillic о
        ("bob", "ВОВ"),  # Cyrillic В, О, В
        ("paypal", "рауpаl"),  # Cyrillic р, а, у
        ("alpha", "αlpha"),  # Greek α
        ("strasse", "Straße"),
        ("kid", "ｋｉｄ"),
    ],
)
def test_signup_refuses_names_that_look_like_an_existing_one(anon_client, existing, attempt):
    User.objects.create_user(existing, password="x")
    body = assert_error(_signup(anon_client, attempt), 400)
    assert body["extra"] == {"field": "username"}
    assert User.objects.count() == 1
    # the browser's form applies the same rule
    form = SignupForm(
        {"username": attempt, "password1": "correct horse 77", "password2": "correct horse 77"}
    )
    assert not form.is_valid() and "username" in form.errors


def test_signup_stores_the_normalised_name(anon_client):
    r = _signup(anon_client, "ｎｅｗｂｉｅ")
    assert r.status_code == 201, r.content
    assert r.json()["user"]["username"] == "newbie"
    assert User.objects.get().username == "newbie"
    assert username_skeleton("ｎｅｗｂｉｅ") == username_skeleton("NEWBIE") == "newbie"


@pytest.mark.parametrize("username", ["⑴", "ﷺ" * 10, "a b", "a\x00"])
def test_signup_refuses_names_invalid_after_normalisation(anon_client, username):
    assert_error(_signup(anon_client, username), 400)
    assert not User.objects.exists()


def test_distinct_names_in_other_scripts_are_welcome(anon_client):
    User.objects.create_user("bob", password="x")
    assert _signup(anon_client, "борис").status_code == 201
    assert _signup(anon_client, "δημήτρης").status_code == 201


# --- the schema tells the truth --------------------------------------------------------------------


def _nullable_to_json_schema(node):
    """OpenAPI 3.0's ``nullable`` as JSON Schema, so jsonschema can check a served body."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture
def served_schema(anon_client) -> dict:
    return anon_client.get("/api/v1/schema/?format=json").json()


def _validate(schema: dict, instance, subschema: dict) -> None:
    """Validate ``instance`` against ``subschema``, its $refs resolved in the served schema."""
    document = _nullable_to_json_schema({**schema, "x-check": subschema})
    jsonschema.validate(instance, {**document, "$ref": "#/x-check"})


def test_a_turn_matches_its_schema_and_shows_the_answered_status(
    user_client, conversation, catalog, served_schema
):
    r = user_client.post(
        f"/api/v1/conversations/{conversation.pk}/messages/", {"text": "like Zorblax Alien Hunt"}
    )
    assert r.status_code == 201, r.content
    turn = r.json()
    assert turn["user_message"]["status"] == Message.Status.DONE
    assert turn["user_message"]["reply_to"] is None
    assert served_schema["components"]["schemas"]["Message"]["properties"]["reply_to"]["nullable"]
    _validate(served_schema, turn, {"$ref": "#/components/schemas/Turn"})
    detail = user_client.get(f"/api/v1/conversations/{conversation.pk}/").json()
    _validate(served_schema, detail, {"$ref": "#/components/schemas/ConversationDetail"})


def test_the_event_stream_matches_its_documented_events(
    user_client, conversation, catalog, served_schema
):
    operation = served_schema["paths"]["/api/v1/conversations/{id}/messages/stream/"]["post"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"text/event-stream"}
    event_schema = content["text/event-stream"]["schema"]
    documented = {
        v["properties"]["event"]["enum"][0]: v["x-data-schema"] for v in event_schema["oneOf"]
    }
    r = user_client.post(
        f"/api/v1/conversations/{conversation.pk}/messages/stream/",
        {"text": "sci-fi like Zorblax Space Odyssey, not horror"},
    )
    assert r.status_code == 200
    raw = b"".join(r.streaming_content).decode()
    names = []
    for block in raw.strip().split("\n\n"):
        head, data = block.split("\n", 1)
        name, data = head.removeprefix("event: "), data.removeprefix("data: ")
        names.append(name)
        _validate(served_schema, {"event": name, "data": data}, event_schema)
        _validate(served_schema, json.loads(data), documented[name])
    assert names[-1] == "done" and "rec" in names
    assert set(names) <= set(documented)


def test_every_operation_documents_its_errors(served_schema):
    for path, item in served_schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"400", "401", "404", "406", "429"} <= codes, (path, method)
            assert ("413" in codes) == ("requestBody" in operation), (path, method)


# --- types the schema states are the types accepted ---------------------------------------------


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/conversations/", {"title": 0}),
        ("/api/v1/conversations/", {"title": ["a"]}),
        ("/api/v1/me/history/", {"item_id": "1", "kind": "like"}),
        ("/api/v1/me/history/", {"item_id": 1.5, "kind": "like"}),
        ("/api/v1/me/history/", {"item_id": True, "kind": "like"}),
        ("/api/v1/me/history/", {"item_id": 1, "kind": "rating", "value": "4"}),
        ("/api/v1/me/preferences/", {"kind": 1, "value": "Zhorror"}),
        ("/api/v1/auth/signup/", {"username": 12345, "password": "correct horse battery 7"}),
    ],
)
def test_json_values_of_the_wrong_type_are_400(user_client, catalog, url, body):
    response = user_client.post(url, body, format="json")
    fields = assert_error(response, 400)["extra"]["fields"]
    assert set(fields) <= set(body)
    assert not Conversation.objects.exists()


def test_curation_flags_must_be_booleans(staff_client, catalog):
    url = f"/api/v1/staff/items/{catalog['alien'].pk}/"
    assert_error(staff_client.patch(url, {"is_hidden": "yes"}, format="json"), 400)
    assert_error(staff_client.patch(url, {"boost": "2"}, format="json"), 400)
    assert staff_client.patch(url, {"boost": 2}, format="json").status_code == 200


# --- names the schema does not give ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "unknown"),
    [
        ("/api/v1/conversations/", {"title": "mine", "titel": "typo"}, "titel"),
        ("/api/v1/me/history/", {"item_id": 1, "kind": "like", "rating": 5}, "rating"),
        (
            "/api/v1/me/preferences/",
            {"kind": "prefer_genre", "value": "Zsci", "weight": 2},
            "weight",
        ),
        ("/api/v1/auth/token/", {"username": "alice", "password": "x", "otp": "1"}, "otp"),
    ],
)
def test_a_body_key_that_is_no_field_is_400_and_changes_nothing(
    user_client, catalog, url, body, unknown
):
    if "item_id" in body:
        body = {**body, "item_id": catalog["alien"].pk}

    def stored() -> tuple[int, int, int]:
        models = (Conversation, Interaction, Preference)
        return tuple(model.objects.count() for model in models)  # type: ignore[return-value]

    before = stored()
    response = user_client.post(url, body, format="json")
    fields = assert_error(response, 400)["extra"]["fields"]
    assert set(fields) == {unknown}, fields
    assert "Unknown field" in fields[unknown][0]
    assert stored() == before


def test_a_read_only_field_in_a_patch_is_400_not_silently_dropped(staff_client, catalog):
    item = catalog["alien"]
    url = f"/api/v1/staff/items/{item.pk}/"
    response = staff_client.patch(url, {"title": "Renamed", "boost": 3}, format="json")
    assert assert_error(response, 400)["extra"]["fields"] == {"title": ["This field is read-only."]}
    item.refresh_from_db()
    assert (item.title, item.boost) == ("Zorblax Alien Hunt", 0.0)
    assert staff_client.patch(url, {"boost": 3}, format="json").status_code == 200
    item.refresh_from_db()
    assert item.boost == 3


@pytest.mark.parametrize(
    ("url", "params", "unknown"),
    [
        ("/api/v1/items/", {"search": "alien"}, "search"),
        ("/api/v1/items/", {"q": "alien", "genres": "Zhorror"}, "genres"),
        ("/api/v1/me/recommendations/", {"genres": "Zhorror"}, "genres"),
        ("/api/v1/me/recommendations/", {"page_size": "5"}, "page_size"),
        ("/api/v1/me/history/", {"kinds": "like"}, "kinds"),
    ],
)
def test_a_query_parameter_the_operation_does_not_take_is_400(
    user_client, catalog, url, params, unknown
):
    fields = assert_error(user_client.get(url, params), 400)["extra"]["fields"]
    assert set(fields) == {unknown}, fields
    # the message names what the operation does take: ``q`` for the item search
    if unknown == "search":
        assert ", q," in fields[unknown][0] or fields[unknown][0].endswith(" q"), fields


def test_thousands_of_unknown_keys_get_a_short_answer(user_client):
    body = {f"key{n}": n for n in range(5000)}
    response = user_client.post("/api/v1/conversations/", body, format="json")
    fields = assert_error(response, 400)["extra"]["fields"]
    assert 0 < len(fields) <= 20
    assert len(response.content) < 10_000


def test_pagination_and_filters_still_pass(user_client, catalog, interaction):
    first = user_client.get("/api/v1/items/", {"q": "zorblax", "page_size": 2})
    assert first.status_code == 200, first.content
    body = first.json()
    assert len(body["results"]) == 2 and body["next"]
    second = user_client.get(body["next"])
    assert second.status_code == 200 and second.json()["results"]
    history = user_client.get("/api/v1/me/history/", {"kind": "rating", "page_size": 1})
    assert history.status_code == 200 and len(history.json()["results"]) == 1
    assert user_client.get("/api/v1/items/", {"format": "json"}).status_code == 200


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/items/", "ordering="),
        ("/api/v1/items/", "semantic="),
        ("/api/v1/items/", "year_min="),
        ("/api/v1/me/history/", "kind="),
        ("/api/v1/me/recommendations/", "n="),
        ("/api/v1/me/recommendations/", "genre="),
    ],
)
def test_blank_query_parameters_are_400_not_ignored(user_client, catalog, url, params):
    assert_error(user_client.get(f"{url}?{params}"), 400)


@pytest.mark.parametrize(
    "params",
    [
        {"q": "alien\x00"},
        {"genre": "\x00"},
        {"year_min": "99999999999999999999"},
        {"year_min": "1e309"},
        {"year_min": "NaN"},
        {"semantic": "maybe"},
        {"ordering": "id"},
    ],
)
@pytest.mark.parametrize("who", ["anon", "owner"])
def test_bad_item_filters_are_400(clients, catalog, params, who):
    assert_error(clients[who].get("/api/v1/items/", params), 400)


@pytest.mark.parametrize(
    "params",
    [{"n": "0"}, {"n": "101"}, {"n": "1e2"}, {"exclude_item": "-1"}, {"genre": "a\x00"}],
)
def test_bad_recommendation_filters_are_400(user_client, catalog, params):
    assert_error(user_client.get("/api/v1/me/recommendations/", params), 400)
    item = catalog["alien"].pk
    assert_error(user_client.get(f"/api/v1/items/{item}/similar/", params), 400)
