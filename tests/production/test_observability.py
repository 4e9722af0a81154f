"""Request ids on responses and on every log record of the request (streamed bodies and Celery
tasks included), the JSON log format, and the LLM / chat metrics counted against the real fake
LLM server."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from django.http import StreamingHttpResponse
from django.test import Client, RequestFactory

from chat import llm, services
from recsite import observability
from recsite.observability import JsonFormatter, RequestIdFilter, RequestIdMiddleware
from tests.fakes.openai_server import Reply, schema_labels

from .conftest import REDIS_URL, sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """Root logging into a buffer through the production handler setup (filter + JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def records() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield records
    root.removeHandler(handler)
    root.setLevel(old_level)


# --- X-Request-ID ----------------------------------------------------------------------------------


def test_a_sane_client_request_id_is_echoed(client):
    r = client.get("/api/v1/ping/", HTTP_X_REQUEST_ID="lb-7f3a.1:2")
    assert r.status_code == 200 and r["X-Request-ID"] == "lb-7f3a.1:2"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "evil\r\nX-Injected: 1", "é"])
def test_a_missing_or_unsafe_request_id_is_replaced(client, given):
    headers = {} if given is None else {"HTTP_X_REQUEST_ID": given}
    r = client.get("/api/v1/ping/", **headers)
    rid = r["X-Request-ID"]
    assert rid != given and len(rid) == 32 and int(rid, 16) >= 0
    assert client.get("/api/v1/ping/", **headers)["X-Request-ID"] != rid  # one per request


def test_every_log_record_of_a_request_carries_its_id(settings, json_log):
    settings.LOG_REQUESTS = True
    client = Client()  # middleware built with the setting on
    path = "/no-such-page-" + uuid.uuid4().hex
    r = client.get(path, HTTP_X_REQUEST_ID="req-404-check")
    assert r.status_code == 404
    mine = [rec for rec in json_log() if rec.get("request_id") == "req-404-check"]
    by_logger = {rec["logger"]: rec for rec in mine}
    # Django's own warning (logged after the middleware returned) and our access-log line
    assert by_logger["django.request"]["level"] == "WARNING"
    assert path in by_logger["django.request"]["message"]
    access = by_logger["recsite.request"]
    assert access["status"] == 404 and access["path"] == path and access["http_method"] == "GET"
    assert access["view"] == "unmatched" and access["duration_ms"] > 0
    assert access["streamed"] is False
    # nothing of the request is logged without it; nothing after it keeps it
    logging.getLogger("recsite.after").warning("after the request")
    assert "request_id" not in json_log()[-1]


def test_probes_stay_out_of_the_access_log(settings, json_log):
    settings.LOG_REQUESTS = True
    Client().get("/healthz")
    assert not [rec for rec in json_log() if rec["logger"] == "recsite.request"]


def test_a_streamed_body_logs_with_the_request_id_until_its_end(json_log):
    def body():
        logging.getLogger("recsite.stream").info("chunk one")
        yield b"one"
        logging.getLogger("recsite.stream").info("chunk two")
        yield b"two"

    before = sample("recsite_http_request_duration_seconds_count", view="unmatched")
    middleware = RequestIdMiddleware(lambda request: StreamingHttpResponse(body()))
    response = middleware(RequestFactory().get("/stream", HTTP_X_REQUEST_ID="stream-1"))
    # the view has returned; the body is produced now, as a server would
    assert b"".join(response.streaming_content) == b"onetwo"
    lines = [rec for rec in json_log() if rec["logger"] == "recsite.stream"]
    assert [(rec["message"], rec.get("request_id")) for rec in lines] == [
        ("chunk one", "stream-1"),
        ("chunk two", "stream-1"),
    ]
    assert response["X-Request-ID"] == "stream-1"
    # counted once, when the last byte was sent
    assert sample("recsite_http_request_duration_seconds_count", view="unmatched") == before + 1
    assert observability.request_id_get() is None


def test_json_formatter_writes_extras_and_tracebacks():
    formatter = JsonFormatter()
    try:
        raise ValueError("broken")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "recsite.x", logging.ERROR, __file__, 1, "failed %s", ("run",), sys.exc_info()
        )
    record.version = 12
    record.payload = {"set": {1, 2}}  # not JSON: written as text, never a crash
    out = json.loads(formatter.format(record))
    assert out["level"] == "ERROR" and out["logger"] == "recsite.x"
    assert out["message"] == "failed run" and out["version"] == 12
    assert out["exc"].startswith("Traceback") and "ValueError: broken" in out["exc"]
    assert out["payload"] == {"set": "{1, 2}"}
    assert out["ts"].endswith("+00:00")
    assert "request_id" not in out


def test_the_request_id_travels_in_the_headers_of_tasks_it_enqueues(redis_client):
    """before_task_publish puts it in the message: the worker sets it while the task runs."""
    from celery import Celery

    import recsite.celery  # noqa: F401 - connects the signals

    prefix = f"test-prod-{uuid.uuid4().hex[:8]}:"
    app = Celery("probe", broker=REDIS_URL)
    app.conf.broker_transport_options = {"global_keyprefix": prefix}
    token = observability._request_id.set("req-enqueue-1")
    try:
        app.send_task("recommender.user_refresh_task", args=[1], queue="probe")
    finally:
        observability._request_id.reset(token)
    try:
        raw = redis_client.lpop(prefix + "probe")
        message = json.loads(raw)
        assert message["headers"]["recsite_request_id"] == "req-enqueue-1"
        assert message["headers"]["task"] == "recommender.user_refresh_task"
    finally:
        for key in redis_client.keys(prefix + "*"):
            redis_client.delete(key)


# --- LLM and chat metrics ----------------------------------------------------------------------------


MESSAGES = [{"role": "user", "content": "hello " + uuid.uuid4().hex}]  # never cached


def test_llm_calls_count_latency_tokens_and_errors(fake_llm):
    ok_before = sample("recsite_llm_requests_total", mode="complete", outcome="ok")
    count_before = sample("recsite_llm_request_duration_seconds_count", mode="complete")
    prompt_before = sample("recsite_llm_tokens_total", type="prompt")
    completion_before = sample("recsite_llm_tokens_total", type="completion")
    fake_llm.push(Reply(content="fine", usage=(321, 45)))
    assert llm.complete(messages=MESSAGES).content == "fine"
    assert sample("recsite_llm_requests_total", mode="complete", outcome="ok") == ok_before + 1
    assert sample("recsite_llm_request_duration_seconds_count", mode="complete") == count_before + 1
    assert sample("recsite_llm_tokens_total", type="prompt") == prompt_before + 321
    assert sample("recsite_llm_tokens_total", type="completion") == completion_before + 45

    errors_before = sample("recsite_llm_errors_total", kind="server_error")
    retries_before = sample("recsite_llm_retries_total", mode="complete")
    failed_before = sample("recsite_llm_requests_total", mode="complete", outcome="error")
    fake_llm.push(Reply(status=500), Reply(status=500))
    with pytest.raises(llm.LLMError):
        llm.complete(messages=MESSAGES)
    assert sample("recsite_llm_errors_total", kind="server_error") == errors_before + 2
    assert sample("recsite_llm_retries_total", mode="complete") == retries_before + 1
    assert (
        sample("recsite_llm_requests_total", mode="complete", outcome="error") == failed_before + 1
    )


def test_streamed_llm_calls_are_counted(fake_llm):
    before = sample("recsite_llm_requests_total", mode="stream", outcome="ok")
    cut_before = sample("recsite_llm_errors_total", kind="stream_cut")
    fake_llm.push(Reply(content='{"intro": "streamed answer"}', chunk_size=4))
    stream = llm.LLMStream(messages=MESSAGES)
    assert "".join(stream) == '{"intro": "streamed answer"}'
    assert sample("recsite_llm_requests_total", mode="stream", outcome="ok") == before + 1
    fake_llm.push(Reply(content='{"intro": "this stream is cut midway"}', cut_after=12))
    with pytest.raises(llm.LLMError):
        list(llm.LLMStream(messages=MESSAGES))
    assert sample("recsite_llm_errors_total", kind="stream_cut") == cut_before + 1


def _turn(user, text: str):
    conversation = services.conversation_create(user=user)
    events = list(services.message_post_stream(conversation=conversation, user=user, text=text))
    assert events[-1].kind == "done"
    return events[-1].turn


def test_guard_repairs_are_counted_by_kind(alice, catalog, fake_llm):
    def answer(request):
        first = schema_labels(request)[0]
        picks = [
            {"label": "C999", "reason": "not a candidate"},
            {"label": first, "reason": "A good fit."},
            {"label": first, "reason": "the same one again"},
        ]
        return Reply(content=json.dumps({"intro": "Here you go.", "picks": picks}))

    kinds = ("outside_candidates", "duplicate", "filled_from_candidates")
    before = {k: sample("recsite_chat_guard_repairs_total", kind=k) for k in kinds}
    turns_before = sample("recsite_chat_turns_total", produced_by="llm")
    fallbacks_before = sample("recsite_llm_fallbacks_total", stage="rerank")
    fake_llm.push(Reply(content=""), answer)  # no tool calls, then the rerank
    turn = _turn(alice, "something like Alien but funnier")
    assert turn.produced_by == "llm"
    assert turn.repairs["outside_candidates"] == 1 and turn.repairs["duplicate"] == 1
    after = {k: sample("recsite_chat_guard_repairs_total", kind=k) for k in kinds}
    assert after["outside_candidates"] == before["outside_candidates"] + 1
    assert after["duplicate"] == before["duplicate"] + 1
    filled = turn.repairs["filled_from_candidates"]
    assert filled == len(turn.recommendations) - 1
    assert after["filled_from_candidates"] == before["filled_from_candidates"] + filled
    assert sample("recsite_chat_turns_total", produced_by="llm") == turns_before + 1
    assert sample("recsite_llm_fallbacks_total", stage="rerank") == fallbacks_before


def test_llm_failures_are_counted_as_fallbacks(alice, catalog, fake_llm):
    understand = sample("recsite_llm_fallbacks_total", stage="understand")
    rerank = sample("recsite_llm_fallbacks_total", stage="rerank")
    builtin = sample("recsite_chat_turns_total", produced_by="builtin")
    fake_llm.push(Reply(status=500), Reply(status=500), Reply(status=500), Reply(status=500))
    turn = _turn(alice, "a 90s crime film")
    assert turn.produced_by == "builtin" and turn.recommendations
    assert sample("recsite_llm_fallbacks_total", stage="understand") == understand + 1
    assert sample("recsite_llm_fallbacks_total", stage="rerank") == rerank + 1
    assert sample("recsite_chat_turns_total", produced_by="builtin") == builtin + 1


def test_the_builtin_chat_counts_turns_but_no_repairs(alice, catalog, settings):
    settings.OPENAI_BASE_URL = None
    settings.OPENAI_API_KEY = None
    filled = sample("recsite_chat_guard_repairs_total", kind="filled_from_candidates")
    builtin = sample("recsite_chat_turns_total", produced_by="builtin")
    turn = _turn(alice, "something funny")
    assert turn.recommendations and turn.produced_by == "builtin"
    assert sample("recsite_chat_turns_total", produced_by="builtin") == builtin + 1
    # filling the whole list is how the built-in path works, not a repair of an LLM answer
    assert sample("recsite_chat_guard_repairs_total", kind="filled_from_candidates") == filled
