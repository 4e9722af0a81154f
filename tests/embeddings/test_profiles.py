"""LLM-written item profiles: written once through chat/llm.py (a real HTTP server speaking the
OpenAI protocol stands in for the LLM), stored in the item, embedded with its text."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from catalog.models import Item
from chat.profiles import item_profile_generate
from recommender.embeddings import vectors
from recommender.embeddings.text import ITEM_TEXT_SQL, PROFILE_KEY
from recommender.models import ItemEmbedding
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.django_db

PROFILE = (
    "A gentle, hopeful story about loneliness and connection; "
    "ideal for families who like quiet humour."
)


@pytest.fixture
def fake_llm(settings):
    with FakeOpenAI() as fake:
        settings.OPENAI_BASE_URL = fake.url
        settings.OPENAI_API_KEY = "test-key"
        settings.LLM_MODEL = "fake-model"
        settings.LLM_TIMEOUT_SECONDS = 2.0
        settings.LLM_RETRY_BACKOFF_SECONDS = 0.01
        settings.LLM_CACHE_SECONDS = 0
        yield fake


def _text(item_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ITEM_TEXT_SQL} FROM catalog_item i WHERE i.id = %s", [item_id])
        return cursor.fetchone()[0]


def test_profile_is_written_once_stored_and_embedded(
    small_catalog, item_ids, fake_llm, settings, django_capture_on_commit_callbacks
):
    settings.EMBEDDINGS_AUTO_REFRESH = True
    item_id = item_ids["1097"]  # E.T.
    old_hash = ItemEmbedding.objects.get(item_id=item_id).text_hash
    fake_llm.text(f'"{PROFILE}"')
    with django_capture_on_commit_callbacks(execute=True):
        assert item_profile_generate(item_id=item_id) == PROFILE
    item = Item.objects.get(pk=item_id)
    assert item.metadata[PROFILE_KEY] == PROFILE
    assert item.metadata["llm_profile_model"] == "fake-model"
    # the item's text went in as delimited data
    prompt = fake_llm.requests[-1]["messages"][-1]["content"]
    assert prompt.startswith("<item>\nTitle: E.T. the Extra-Terrestrial") and prompt.endswith(
        "</item>"
    )
    # embedded with the profile, on commit
    assert _text(item_id).endswith(PROFILE)
    assert ItemEmbedding.objects.get(item_id=item_id).text_hash != old_hash
    assert item_id in vectors.item_vectors(item_ids=[item_id], space=vectors.embedding_space())
    # written once: a second call asks the LLM nothing
    calls = len(fake_llm.requests)
    assert item_profile_generate(item_id=item_id) == PROFILE
    assert len(fake_llm.requests) == calls


def test_staff_add_an_item_and_it_gets_a_profile_and_a_vector(
    small_catalog, fake_llm, settings, admin_client, django_capture_on_commit_callbacks
):
    settings.EMBEDDINGS_AUTO_REFRESH = True
    fake_llm.text("A tense survival story in orbit, for fans of realistic space drama.")
    form = {
        "external_id": "staff-1",
        "title": "Orbit",
        "year": "2020",
        "description": "A lone engineer repairs a failing space station.",
        "genres": "Drama,Sci-Fi",
        "tags": "",
        "boost": "0",
        "links": "{}",
        "metadata": "{}",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:catalog_item_add"), form)
    assert response.status_code == 302
    item = Item.objects.get(external_id="staff-1")
    assert item.metadata[PROFILE_KEY].startswith("A tense survival story")
    row = ItemEmbedding.objects.get(item=item)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT md5({ITEM_TEXT_SQL}) FROM catalog_item i WHERE i.id = %s", [item.pk]
        )
        assert row.text_hash == cursor.fetchone()[0]  # the vector is of the text with the profile


def test_an_llm_fault_leaves_the_item_without_a_profile(small_catalog, item_ids, fake_llm):
    fake_llm.status(500, times=2)
    assert item_profile_generate(item_id=item_ids["1"]) is None
    assert PROFILE_KEY not in Item.objects.get(pk=item_ids["1"]).metadata


def test_without_an_llm_nothing_happens(small_catalog, item_ids, settings):
    settings.OPENAI_BASE_URL = None
    settings.OPENAI_API_KEY = None
    assert item_profile_generate(item_id=item_ids["1"]) is None
