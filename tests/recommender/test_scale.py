"""Large catalogs, scaled down: a generated catalog above a lowered HNSW threshold, a user with
several hundred interactions, similar items through the cosine index, the train command's
refusal, the sampled evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Interaction, Item
from recommender import engine, scoring, selectors, services, storage
from recommender.lists import user_list
from recommender.models import ModelVersion, VersionItem

# transactional: a version's HNSW index cannot be built while its rows' FK checks are pending
pytestmark = pytest.mark.django_db(transaction=True)

N_ITEMS = 1500
N_USERS = 300
HEAVY = 600  # interactions of the heavy user: more than the index scan can skip


@pytest.fixture
def catalog(django_user_model, settings):
    """Zipf item popularity, lognormal user activity, one heavy user; seeded."""
    settings.RECOMMENDER_HNSW_MIN_ITEMS = 1000
    settings.RECOMMENDER_DENSE_MAX_ITEMS = 1000
    rng = np.random.default_rng(7)
    items = Item.objects.bulk_create(
        Item(external_id=f"s{i}", title=f"Item {i}", genres=["Drama"]) for i in range(N_ITEMS)
    )
    ids = np.array([i.pk for i in items])
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    popularity /= popularity.sum()
    users = django_user_model.objects.bulk_create(
        django_user_model(username=f"scale{u}") for u in range(N_USERS)
    )
    sizes = np.clip(rng.lognormal(3.0, 0.8, N_USERS).astype(int), 5, 300)
    sizes[0] = HEAVY
    rows = []
    for user, size in zip(users, sizes.tolist(), strict=True):
        for pos in rng.choice(N_ITEMS, size=size, replace=False, p=popularity).tolist():
            rows.append(Interaction(user=user, item_id=int(ids[pos]), kind="like"))
    Interaction.objects.bulk_create(rows, batch_size=5000)
    return users


def _train(**kwargs) -> ModelVersion:
    version = services.training_start(**kwargs)
    services.model_train(version_id=version.pk)
    version.refresh_from_db()
    return version


def test_a_heavy_user_gets_only_cf_items_from_an_indexed_factor_model(catalog, settings):
    version = _train(algorithm="als")
    assert version.status == ModelVersion.Status.ACTIVE, version.error
    assert version.indexed and version.serving == ModelVersion.Serving.FACTORS
    heavy, light = catalog[0], catalog[1]
    seen = set(Interaction.objects.filter(user=heavy).values_list("item_id", flat=True))
    assert len(seen) == HEAVY
    for user in (heavy, light):
        recs = selectors.recommendations_for_user(user=user, n=20)
        assert len(recs) == 20
        assert [r.source for r in recs] == ["cf"] * 20, [r.source for r in recs]
    recs = selectors.recommendations_for_user(user=heavy, n=20)
    assert not {r.item.pk for r in recs} & seen
    # the exact best 20 unseen items by inner product with the user's vector
    vector = storage.user_vector_read(version=version, user_id=heavy.pk)
    vectors = storage.item_vectors_read(
        version=version, item_ids=list(Item.objects.values_list("pk", flat=True))
    )
    scored = sorted(
        ((float(np.dot(vector, v)), i) for i, v in vectors.items() if i not in seen),
        reverse=True,
    )
    assert [r.item.pk for r in recs] == [i for _s, i in scored[:20]]
    # the list as served with its cache off: the user's vector comes in the round trip of the
    # preferences and the history; the candidates' rows were read (and kept for this catalog
    # fingerprint) by the list above, so that is the one statement
    settings.API_RECOMMENDATIONS_CACHE_SECONDS = 0
    with CaptureQueriesContext(connection) as queries:
        served = user_list(user=heavy, n=20)
    assert [r.item.pk for r in served.recommendations] == [i for _s, i in scored[:20]]
    assert len(queries.captured_queries) == 1, [q["sql"][:80] for q in queries.captured_queries]
    assert "recommender_uservector" in queries.captured_queries[0]["sql"]


def test_a_process_explains_by_the_vectors_stored_and_reads_the_users_one(catalog):
    """The list's evidence reads item vectors from the fitted model the process holds: the same
    floats as the version's stored vectors; the user's stored vector reads as written."""
    version = _train(algorithm="als")
    ids = list(
        VersionItem.objects.filter(version=version, vector__isnull=False).values_list(
            "item_id", flat=True
        )[:300]
    )
    stored = storage.item_vectors_read(version=version, item_ids=ids)
    unit = np.stack([stored[i] / np.linalg.norm(stored[i]) for i in ids])
    held_ids, held = storage.item_unit_vectors(version=version, item_ids=[-5, *ids])
    assert held_ids.tolist() == ids  # in the order asked, the unknown id left out
    assert np.allclose(held, unit, atol=1e-6)
    # a process without the fitted model reads the stored vectors: the same unit vectors
    ModelVersion.objects.filter(pk=version.pk).update(artifact=None)
    storage._FITTED.clear()
    read_ids, read = storage.item_unit_vectors(version=version, item_ids=[*ids, -5])
    assert read_ids.tolist() == ids and np.allclose(read, unit, atol=1e-6)
    vector = np.linspace(-1, 1, version.dimensions, dtype=np.float32)
    storage.user_vector_write(version=version, user_id=catalog[2].pk, vector=vector)
    assert np.array_equal(storage.user_vector_read(version=version, user_id=catalog[2].pk), vector)
    assert storage.user_vector_read(version=version, user_id=catalog[3].pk + 10**6) is None


def test_candidates_are_exact_where_the_model_is_held_else_from_the_index(catalog):
    version = _train(algorithm="als")
    vector = storage.user_vector_read(version=version, user_id=catalog[1].pk)
    few = set(Item.objects.order_by("pk").values_list("pk", flat=True)[:10])
    many = set(Item.objects.order_by("pk").values_list("pk", flat=True)[:1200])
    trained_rest = (
        VersionItem.objects.filter(version=version, vector__isnull=False)
        .exclude(item_id__in=many)
        .count()
    )
    # this process holds the fitted model: short and long histories alike get the exact answer
    exact = storage.nearest_exact(version=version, vector=vector, limit=20, excluded=few)
    held = storage.nearest_by_vector(version=version, vector=vector, limit=20, excluded=few)
    assert [i for i, _ in held] == [i for i, _ in exact]
    # a process without it: the HNSW index for a short history (approximate), an exact scan in
    # PostgreSQL for one longer than the index can skip
    ModelVersion.objects.filter(pk=version.pk).update(artifact=None)
    storage._FITTED.clear()
    assert storage.fitted_model_load(version=version) is None
    with CaptureQueriesContext(connection) as queries:
        by_index = storage.nearest_by_vector(version=version, vector=vector, limit=20, excluded=few)
    assert any("hnsw.ef_search" in q["sql"] for q in queries.captured_queries)
    assert len(by_index) == 20 and not {i for i, _ in by_index} & few
    assert len({i for i, _ in by_index} & {i for i, _ in exact}) >= 15  # approximate
    rest = storage.nearest_by_vector(version=version, vector=vector, limit=400, excluded=many)
    assert len(rest) == trained_rest and not {i for i, _ in rest} & many


def _same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    """The same items in the same order, but where two scores tie to float32 rounding."""
    assert len(got) == len(want)
    for (i, s), (j, t) in zip(got, want, strict=True):
        assert i == j or abs(s - t) <= 1e-5 * max(1.0, abs(t)), (i, s, j, t)


def test_a_users_stored_candidates_are_the_exact_search_outside_their_rows(catalog):
    version = _train(algorithm="als")
    for user in catalog[:40]:
        vector, candidates = storage.user_row_read(version=version, user_id=user.pk)
        seen = set(Interaction.objects.filter(user=user).values_list("item_id", flat=True))
        assert candidates is not None and len(candidates.ids) == storage.USER_CANDIDATES
        assert not set(candidates.ids.tolist()) & seen
        exact = storage.nearest_exact(
            version=version, vector=vector, limit=storage.USER_CANDIDATES, excluded=seen
        )
        _same_ranking(
            list(zip(candidates.ids.tolist(), candidates.scores.tolist(), strict=True)), exact
        )


def test_lists_take_their_pool_from_the_stored_candidates(catalog, settings):
    """A list reads the user's candidates with their vector and searches nothing: in a process
    without the fitted model (where a search is a statement of its own) no statement searches
    the vectors, and the list is the exact answer. New items that leave too few candidates send the
    list back to the search; the refresh that follows stores the new vector's candidates."""
    settings.API_RECOMMENDATIONS_CACHE_SECONDS = 0
    version = _train(algorithm="als")
    heavy, light = catalog[0], catalog[1]
    want = {}
    for user in (heavy, light):
        vector = storage.user_vector_read(version=version, user_id=user.pk)
        seen = set(Interaction.objects.filter(user=user).values_list("item_id", flat=True))
        exact = storage.nearest_exact(version=version, vector=vector, limit=20, excluded=seen)
        want[user.pk] = [i for i, _ in exact]
        assert [r.item.pk for r in user_list(user=user, n=20).recommendations] == want[user.pk]
    artifact = ModelVersion.objects.values_list("artifact", flat=True).get(pk=version.pk)
    ModelVersion.objects.filter(pk=version.pk).update(artifact=None)
    storage._FITTED.clear()
    for user in (heavy, light):
        with CaptureQueriesContext(connection) as queries:
            served = user_list(user=user, n=20)
        assert [r.item.pk for r in served.recommendations] == want[user.pk]
        assert not any("<#>" in q["sql"] for q in queries.captured_queries)

    # the light user now has 60 of their candidates: 40 are left, under a pool of 60
    _vector, candidates = storage.user_row_read(version=version, user_id=light.pk)
    taken = candidates.ids[:60].tolist()
    Interaction.objects.bulk_create(
        Interaction(user=light, item_id=i, kind="like") for i in taken
    )  # bulk: no signal, so no refresh yet
    with CaptureQueriesContext(connection) as queries:
        served = [r.item.pk for r in user_list(user=light, n=20).recommendations]
    assert any("<#>" in q["sql"] for q in queries.captured_queries)
    seen = set(Interaction.objects.filter(user=light).values_list("item_id", flat=True))
    vector = storage.user_vector_read(version=version, user_id=light.pk)
    exact = storage.nearest_exact(version=version, vector=vector, limit=20, excluded=seen)
    assert served == [i for i, _ in exact] and not set(served) & seen

    storage._FITTED.clear()
    ModelVersion.objects.filter(pk=version.pk).update(artifact=artifact)
    assert services.user_refresh(user_id=light.pk)
    vector, candidates = storage.user_row_read(version=version, user_id=light.pk)
    assert not set(candidates.ids.tolist()) & seen
    exact = storage.nearest_exact(
        version=version, vector=vector, limit=storage.USER_CANDIDATES, excluded=seen
    )
    _same_ranking(
        list(zip(candidates.ids.tolist(), candidates.scores.tolist(), strict=True)), exact
    )


def test_similar_items_use_the_cosine_index(catalog):
    version = _train(algorithm="als")
    item = Item.objects.order_by("pk")[3]
    vector = storage.item_vectors_read(version=version, item_ids=[item.pk])[item.pk]
    literal = "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        # a small table, where a scan and a sort are cheapest: show that the index can serve
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(
            "EXPLAIN " + storage.similar_sql(version=version, limit=21), [literal, literal]
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
    assert f"recommender_vi_hnsw_cos_v{version.pk}" in plan, plan
    assert "Sort" not in plan, plan
    recs = selectors.similar_items(item=item, n=10)
    assert len(recs) == 10 and all(r.source == "cf" for r in recs)
    assert item.pk not in {r.item.pk for r in recs}
    # the heavy user has seen most of the cached pool: a wider search skips their items
    heavy = catalog[0]
    seen = set(Interaction.objects.filter(user=heavy).values_list("item_id", flat=True))
    mine = selectors.similar_items(item=item, n=10, user=heavy)
    assert len(mine) == 10 and all(r.source == "cf" for r in mine)
    assert not {r.item.pk for r in mine} & (seen | {item.pk})


def test_train_refuses_a_model_that_cannot_train_the_catalog(catalog, capsys, caplog):
    with pytest.raises(CommandError, match=r"session_ease cannot train [0-9,]+ items"):
        call_command("train", model="session_ease")
    assert not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists()
    # the refusal is recorded and logged as its reason, not as a crash with a traceback
    refused = ModelVersion.objects.get(status=ModelVersion.Status.FAILED)
    assert (
        refused.error.startswith("session_ease cannot train") and "Traceback" not in refused.error
    )
    assert [r.levelname for r in caplog.records if "refused" in r.getMessage()] == ["WARNING"]
    assert not any(r.exc_info for r in caplog.records)
    call_command("train", model="session_ease", allow_fallback=True)
    out = capsys.readouterr().out
    assert "fitting als instead" in out and "indexing vectors" in out
    assert ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE).algorithm == "als"


def test_the_dense_limit_setting_lifts_the_limit(catalog, settings):
    settings.RECOMMENDER_DENSE_MAX_ITEMS = 5000
    version = _train(algorithm="session_ease")
    assert version.status == ModelVersion.Status.ACTIVE, version.error
    assert version.algorithm == "session_ease" and version.params["max_items"] == 5000


def test_an_auto_retrain_selects_within_the_dense_limit_setting(catalog, settings):
    """The selection's ceiling is RECOMMENDER_DENSE_MAX_ITEMS (1,000 here, under the catalog's
    1,500 items): ALS and the EASE families fitted on the 1,000 most popular items compete. The
    winner, a head model here, is served from its neighbour table and never recommends an item
    outside the head."""
    # one timestamp for all: the fixture's rows are stamped as created, within a second or
    # across one, and a user's draws without replacement come rarest last, so a time slice
    # (taken whenever two stamps differ) would hold out mostly items outside any head
    Interaction.objects.update(timestamp=timezone.now())
    version = _train(algorithm="auto")
    assert version.status == ModelVersion.Status.ACTIVE, version.error
    families = {row["family"] for row in version.metrics["selection"]["table"]}
    assert {"als", "ease", "ease_pop"} <= families
    chosen = next(r for r in version.metrics["selection"]["table"] if r["chosen"])
    assert chosen["ndcg@10"] == max(r["ndcg@10"] for r in version.metrics["selection"]["table"])
    # on this clustered Zipf catalog the low-rank corrected head beats ALS on the slice
    assert version.algorithm in ("wedlae", "ease_lowrank")
    assert version.params["max_items"] == 1000
    assert version.serving == ModelVersion.Serving.NEIGHBORS
    counts = dict.fromkeys(Item.objects.values_list("pk", flat=True), 0)
    for item_id in Interaction.objects.values_list("item_id", flat=True):
        counts[item_id] += 1
    # outside the head for sure: less popular than the 1,000th item (ties at the cut aside)
    cut = sorted(counts.values(), reverse=True)[999]
    outside = {i for i, n in counts.items() if n < cut}
    assert len(outside) > 300
    for user in catalog[:20]:
        recs = selectors.recommendations_for_user(user=user, n=20)
        cf = [r.item.pk for r in recs if r.source == "cf"]
        assert cf and not set(cf) & outside


def test_a_weights_file_left_under_the_same_version_id_is_never_served(catalog):
    """A database recreated beside the same model folder numbers its versions again, so a
    weights file of another catalog can sit under a new version's id: a run served from its
    rows removes it, and one that appears anyway is not read."""
    other = engine.get_model("ease", lam=1.0).fit(sp.csr_matrix(np.eye(30, dtype=np.float32)))
    # wedlae fits a catalog above its max_items on the popular head, stored sparse
    version = services.training_start(algorithm="wedlae", params={"max_items": 1000}, enqueue=False)
    storage.dense_weights_write(version_id=version.pk, model=other, item_ids=np.arange(1, 31))
    assert storage.dense_weights_load(version_id=version.pk) is not None
    services.model_train(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE, version.error
    assert storage.dense_weights_load(version_id=version.pk) is None
    storage.dense_weights_write(version_id=version.pk, model=other, item_ids=np.arange(1, 31))
    index = scoring.neighbour_index(version)
    assert index is not None and isinstance(index.W, sp.csr_matrix)
    assert set(index.item_ids.tolist()) <= set(Item.objects.values_list("pk", flat=True))
    for user in catalog[:5]:
        recs = selectors.recommendations_for_user(user=user, n=10)
        assert [r.source for r in recs] == ["cf"] * 10


def test_evaluation_on_retrain_scores_a_sample_of_users(catalog, settings):
    settings.RECOMMENDER_EVALUATE_ON_TRAIN = True
    settings.RECOMMENDER_EVALUATE_MAX_USERS = 50
    version = _train(algorithm="als")
    assert version.metrics["n_users_tested"] == 50
    assert version.metrics["users_sampled_from"] > 50
    assert version.metrics["recall@20"] > 0 and "evaluate" in version.timings
