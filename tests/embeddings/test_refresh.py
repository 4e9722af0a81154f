"""Embeddings are written, indexed, kept fresh on edits, and stale vectors are never served."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse

from catalog.models import Item
from recommender.embeddings import selectors, services, vectors
from recommender.embeddings.backends import get_backend
from recommender.models import ItemEmbedding
from recommender.tasks import embeddings_refresh_task

from .catalog_data import MOVIES

pytestmark = pytest.mark.django_db


def _vector(item_id: int) -> np.ndarray:
    row = ItemEmbedding.objects.get(item_id=item_id, backend=get_backend().name)
    return np.asarray(row.vector, dtype=np.float32)


def test_every_item_is_embedded_once_and_indexed(small_catalog):
    backend = get_backend()
    rows = ItemEmbedding.objects.filter(backend=backend.name)
    assert rows.count() == Item.objects.count() == len(MOVIES)
    assert set(rows.values_list("dims", flat=True)) == {384}
    with connection.cursor() as cursor:  # the hash is of the exact text, computed by PostgreSQL
        cursor.execute(
            f"SELECT count(*) FROM recommender_itemembedding e JOIN catalog_item i ON i.id ="
            f" e.item_id WHERE e.text_hash = md5({services.ITEM_TEXT_SQL})"
        )
        assert cursor.fetchone()[0] == len(MOVIES)
    # a second run has nothing to do
    again = services.embeddings_refresh(hnsw_min_items=10**9)
    assert (again.embedded, again.fresh) == (0, len(MOVIES))

    # the HNSW index: built once there are enough vectors, and used by the search
    report = services.embeddings_refresh(hnsw_min_items=10)
    assert report.indexed and services.index_exists(backend.name, 384)
    space = selectors.embedding_space()
    assert space.indexed
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # 40 rows: make the planner show its index
        cursor.execute("SET enable_sort = off")
        cursor.execute(
            "EXPLAIN SELECT item_id FROM recommender_itemembedding e"
            f" WHERE e.backend = '{backend.name}' AND e.dims = 384"
            " ORDER BY e.vector::vector(384) <#> %s::vector(384) LIMIT 5",
            [services.vector_literal(_vector(Item.objects.first().pk))],
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_sort")
    assert services.index_name(backend.name, 384) in plan
    hits = selectors.semantic_ranking(query="astronauts stuck in space", n=5)
    assert len(hits) == 5


def test_the_text_embedded_is_title_year_genres_tags_description_and_profile(
    small_catalog, item_ids
):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {services.ITEM_TEXT_SQL} FROM catalog_item i WHERE i.id = %s",
            [item_ids["150"]],
        )
        text = cursor.fetchone()[0]
    assert text.splitlines() == [
        "Apollo 13 (1995)",
        "Genres: Adventure, Drama, IMAX",
        "Astronauts on a crippled spacecraft struggle to get home to Earth after an oxygen tank"
        " explodes on the way to the Moon.",
    ]


def test_editing_a_description_in_the_admin_re_embeds_the_item(
    small_catalog, item_ids, admin_client, settings, django_capture_on_commit_callbacks
):
    settings.EMBEDDINGS_AUTO_REFRESH = True
    item = Item.objects.get(pk=item_ids["1387"])  # Jaws
    before = _vector(item.pk)
    old_hash = ItemEmbedding.objects.get(item=item).text_hash
    url = reverse("admin:catalog_item_change", args=[item.pk])
    form = {
        "external_id": item.external_id,
        "title": item.title,
        "year": item.year,
        "description": "Astronauts aboard a space station fight a giant shark that got into orbit.",
        "genres": ",".join(item.genres),
        "tags": "",
        "boost": "0",
        "links": "{}",
        "metadata": "{}",
    }
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    assert callbacks  # the per-item refresh was enqueued on commit (and ran: eager Celery)
    row = ItemEmbedding.objects.get(item=item)
    assert row.text_hash != old_hash
    after = np.asarray(row.vector, dtype=np.float32)
    assert float(before @ after) < 0.9
    found = [i for i, _ in selectors.semantic_ranking(query="shark attack in outer space", n=3)]
    assert item.pk in found


def test_a_stale_vector_is_never_served(small_catalog, item_ids, settings):
    settings.EMBEDDINGS_AUTO_REFRESH = False
    space_id = item_ids["134130"]  # The Martian
    hits = [i for i, _ in selectors.semantic_ranking(query="stranded alone on Mars", n=3)]
    assert space_id in hits
    # edited behind the signals' back (a raw UPDATE): the old vector no longer matches the text
    Item.objects.filter(pk=space_id).update(description="A cooking contest in a Paris bakery.")
    hits = [i for i, _ in selectors.semantic_ranking(query="stranded alone on Mars", n=10)]
    assert space_id not in hits
    assert space_id not in vectors.item_vectors(
        item_ids=[space_id], space=vectors.embedding_space()
    )
    # the bulk refresh (a Celery task, safe to run twice) repairs exactly that item
    result = embeddings_refresh_task.apply().get()
    assert result["embedded"] == 1 and result["fresh"] == len(MOVIES) - 1
    assert embeddings_refresh_task.apply().get()["embedded"] == 0
    hits = [i for i, _ in selectors.semantic_ranking(query="baking contest in Paris", n=3)]
    assert space_id in hits


def test_hidden_items_and_deleted_items_disappear(small_catalog, item_ids):
    item_id = item_ids["60069"]  # WALL·E
    Item.objects.filter(pk=item_id).update(is_hidden=True)
    hits = [i for i, _ in selectors.semantic_ranking(query="a little robot in love", n=10)]
    assert item_id not in hits
    Item.objects.filter(pk=item_id).delete()
    assert not ItemEmbedding.objects.filter(item_id=item_id).exists()
