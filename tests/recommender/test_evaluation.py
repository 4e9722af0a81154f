"""The offline protocol (EVALUATION.md): metrics checked against hand arithmetic, split rules,
CSV parsing, and the reference figures on ml-latest-small. No database needed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.evaluation import (
    METRIC_KEYS,
    Interactions,
    collapse_duplicates,
    evaluate,
    evaluate_models,
    gini,
    load_ratings_csv,
    n_test_for,
    split,
)


def _inter(rows: list[tuple[int, int, int]]) -> Interactions:
    """(user, item, timestamp) rows -> Interactions (value 1.0)."""
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return Interactions(a[:, 0], a[:, 1], a[:, 2], np.ones(len(a), dtype=np.float32))


class FixedScores:
    """Every user gets the same scores: column c (item id c + 1) scores 6 - c."""

    def fit(self, X: sp.csr_matrix, progress=None) -> FixedScores:
        self.n_items = X.shape[1]
        return self

    def score_users(self, X_rows: sp.csr_matrix) -> np.ndarray:
        return np.tile(np.arange(self.n_items, 0, -1, dtype=np.float32), (X_rows.shape[0], 1))


# --------------------------------------------------------------------------- metrics


def test_metrics_match_hand_computation() -> None:
    # Training: user 1 has items {1, 2}; user 2 has {1, 3}; user 3 has {4, 5, 6} (untested).
    # Candidates = items 1..6. Scores rank item 1 > 2 > 3 > 4 > 5 > 6 for everyone.
    train = _inter([(1, 1, 0), (1, 2, 0), (2, 1, 0), (2, 3, 0), (3, 4, 0), (3, 5, 0), (3, 6, 0)])
    # Held out: user 1 -> {3, 5, 99} (99 never in training: can't be hit, still counts);
    #           user 2 -> {2}.
    test = _inter([(1, 3, 1), (1, 5, 1), (1, 99, 1), (2, 2, 1)])
    r = evaluate(FixedScores(), train, test)

    # user 1: list [3, 4, 5, 6]; hits at ranks 1 and 3; n_test = 3
    #   recall = 2 / min(20, 3) = 0.666667
    #   DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    #   IDCG(3) = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.6309298 + 0.5 = 2.1309298
    #   NDCG = 1.5 / 2.1309298 = 0.7039180
    # user 2: list [2, 4, 5, 6]; hit at rank 1; n_test = 1 -> recall 1, NDCG 1
    assert r["n_users_tested"] == 2
    assert r["recall@20"] == pytest.approx((0.6666667 + 1.0) / 2, abs=1e-6)  # 0.8333333
    assert r["ndcg@10"] == pytest.approx((0.7039180 + 1.0) / 2, abs=1e-6)  # 0.8519590
    # items recommended to anyone: {2, 3, 4, 5, 6} of 6 candidates
    assert r["coverage@20"] == pytest.approx(5 / 6)
    # exposure sorted [0, 1, 1, 2, 2, 2] (item 1 never shown), n = 6, total = 8:
    # sum((2i - n - 1) x_i) = -5*0 - 3*1 - 1*1 + 1*2 + 3*2 + 5*2 = 14; gini = 14 / (6*8)
    assert r["gini@20"] == pytest.approx(14 / 48)
    # popularity: item 1 has 2 interactions (rank 1), items 2..6 have 1 each and share
    # ranks 2..6 (average 4). All 8 recommended slots are items 2..6 -> novelty 4.0
    assert r["novelty"] == pytest.approx(4.0)
    assert r["fit_seconds"] >= 0


def test_gini_extremes() -> None:
    assert gini(np.array([3, 3, 3, 3])) == pytest.approx(0.0)
    # one item gets everything among 4: (2*4 - 4 - 1) * 1 / (4 * 1) = 3/4
    assert gini(np.array([0, 0, 0, 1])) == pytest.approx(0.75)
    assert gini(np.zeros(5)) == 0.0


def test_evaluate_models_rows_have_exact_keys() -> None:
    train = _inter([(1, 1, 0), (1, 2, 0), (2, 1, 0), (2, 3, 0)])
    test = _inter([(1, 3, 1), (2, 2, 1)])
    rows = evaluate_models({"a": FixedScores, "b": FixedScores()}, train, test, default="b")
    assert [tuple(r) for r in rows] == [METRIC_KEYS, METRIC_KEYS]
    assert [r["name"] for r in rows] == ["a", "b"]
    assert [r["default"] for r in rows] == [False, True]


def test_evaluate_models_notes_a_model_that_refuses_the_catalog() -> None:
    from recommender.engine import CatalogTooLargeError, get_model

    train = _inter([(1, 1, 0), (1, 2, 0), (2, 1, 0), (2, 3, 0)])
    test = _inter([(1, 3, 1), (2, 2, 1)])
    models = [("small", lambda: get_model("ease", max_items=2)), ("fixed", FixedScores)]
    skipped: dict[str, str] = {}
    rows = evaluate_models(models, train, test, skipped=skipped)
    assert [r["name"] for r in rows] == ["fixed"]
    assert list(skipped) == ["small"] and "3 items exceed max_items=2" in skipped["small"]
    with pytest.raises(CatalogTooLargeError):
        evaluate_models(models, train, test)


# --------------------------------------------------------------------------- split rules


def _user_rows(user: int, n: int, start_item: int = 1) -> list[tuple[int, int, int]]:
    # item i at time 1000 - i: larger item ids are *older*
    return [(user, start_item + i, 1000 - i) for i in range(n)]


def test_n_test_rounding() -> None:
    # round(0.2 n): 5->1, 7->1.4->1, 8->1.6->2, 12->2.4->2, 13->2.6->3, 20->4; <5 -> untested
    expected = {1: 0, 4: 0, 5: 1, 7: 1, 8: 2, 12: 2, 13: 3, 20: 4, 22: 4, 23: 5}
    assert {n: n_test_for(n) for n in expected} == expected
    # 0.2 n is never exactly x.5 for an integer n, so banker's and half-up rounding agree
    for n in range(5, 10_000):
        assert n_test_for(n) == max(1, math.floor(0.2 * n + 0.5))


@pytest.mark.parametrize("method", ["random", "time"])
def test_split_counts_and_small_users(method: str) -> None:
    rows = _user_rows(1, 4) + _user_rows(2, 5) + _user_rows(3, 8) + _user_rows(4, 13)
    s = split(_inter(rows), method, seed=0)
    test_counts = {u: int((s.test.users == u).sum()) for u in (1, 2, 3, 4)}
    assert test_counts == {1: 0, 2: 1, 3: 2, 4: 3}
    assert len(s.train) + len(s.test) == len(rows)
    assert (s.train.users == 1).sum() == 4  # the 4-interaction user stays whole in training
    # no (user, item) pair on both sides
    tr = set(zip(s.train.users.tolist(), s.train.items.tolist(), strict=True))
    te = set(zip(s.test.users.tolist(), s.test.items.tolist(), strict=True))
    assert not tr & te


def test_time_split_takes_latest() -> None:
    # user 7: items 1..10 at time 1000 - item -> the latest two are items 1 and 2
    s = split(_inter(_user_rows(7, 10)), "time")
    assert sorted(s.test.items.tolist()) == [1, 2]
    # ties on timestamp: the larger item id counts as later
    tied = _inter([(5, i, 50) for i in range(1, 11)])
    assert sorted(split(tied, "time").test.items.tolist()) == [9, 10]


def test_random_split_seed_determinism() -> None:
    rows = [r for u in range(1, 30) for r in _user_rows(u, 15 + u)]
    data = _inter(rows)
    a, b, c = split(data, "random", 0), split(data, "random", 0), split(data, "random", 1)
    assert np.array_equal(a.test.items, b.test.items)
    assert np.array_equal(a.test.users, b.test.users)
    assert not np.array_equal(a.test.items, c.test.items)


def test_duplicates_collapse_keep_latest() -> None:
    data = Interactions(
        users=np.array([1, 1, 1, 2]),
        items=np.array([5, 5, 6, 5]),
        timestamps=np.array([10, 30, 20, 1]),
        values=np.array([1.0, 4.5, 2.0, 3.0], dtype=np.float32),
    )
    c = collapse_duplicates(data)
    assert len(c) == 3
    k = int(np.flatnonzero((c.users == 1) & (c.items == 5))[0])
    assert c.timestamps[k] == 30 and c.values[k] == pytest.approx(4.5)


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_load_csv_line_endings(tmp_path: Path, newline: str) -> None:
    text = newline.join(["userId,movieId,rating,timestamp", "1,10,4.0,964982703", "2,20,0.5,5"])
    p = tmp_path / "r.csv"
    p.write_bytes((text + newline).encode())
    d = load_ratings_csv(p)
    assert d.users.tolist() == [1, 2]
    assert d.items.tolist() == [10, 20]
    assert d.timestamps.tolist() == [964982703, 5]
    assert d.values.tolist() == [4.0, 0.5]


def test_load_csv_bad_row_reports_line(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(b"userId,movieId,rating,timestamp\r\n1,10,4.0,1\r\n1,11,4.0,2\r\n1,12,x,3\r\n")
    with pytest.raises(ValueError, match=r"r\.csv:4: .*'1,12,x,3'"):
        load_ratings_csv(p)
    p.write_bytes(b"userId,movieId,rating,timestamp\n1,10,4.0,1\n1,10,4.0\n")
    with pytest.raises(ValueError, match=r"r\.csv:3: expected 4 comma-separated fields"):
        load_ratings_csv(p)
    p.write_bytes(b"user,movie,rating,time\n1,10,4.0,1\n")
    with pytest.raises(ValueError, match=r"r\.csv:1: expected header"):
        load_ratings_csv(p)


# --------------------------------------------------------------------------- reference


@pytest.fixture(scope="module")
def ml_small(movielens_dir: Path) -> Interactions:
    return load_ratings_csv(movielens_dir / "ratings.csv")


def test_reference_counts(ml_small: Interactions) -> None:
    s = split(ml_small, "random", seed=0)
    assert len(ml_small) == 100_836
    assert (s.train.n_users, ml_small.n_items, len(s.train)) == (610, 9_724, 80_672)
    assert len(np.unique(s.test.users)) == 610


def test_reference_figures(ml_small: Interactions) -> None:
    """EVALUATION.md: popularity 0.178 / 0.188 and EASE(300) 0.355 / 0.364 (random, seed 0)."""
    from recommender.engine import get_model

    train, test = split(ml_small, "random", seed=0)
    pop = evaluate(get_model("popularity"), train, test)
    assert (round(pop["recall@20"], 3), round(pop["ndcg@10"], 3)) == (0.178, 0.188)
    ease = evaluate(get_model("ease", lam=300.0), train, test)
    assert (round(ease["recall@20"], 3), round(ease["ndcg@10"], 3)) == (0.355, 0.364)


# --------------------------------------------------------------------------- other layouts


def test_load_csv_without_timestamps_or_values(tmp_path: Path) -> None:
    p = tmp_path / "plays.csv"
    p.write_text("userId,movieId,rating\n1,10,42\n1,11,3\n2,10,7\n", encoding="utf-8")
    d = load_ratings_csv(p)
    assert d.users.tolist() == [1, 1, 2] and d.values.tolist() == [42.0, 3.0, 7.0]
    assert d.timestamps.tolist() == [0, 0, 0] and not d.has_timestamps
    q = tmp_path / "pairs.csv"
    q.write_text("user,item\n1,10\n2,11\n", encoding="utf-8")
    d = load_ratings_csv(q)
    assert d.values.tolist() == [1.0, 1.0] and not d.has_timestamps
    flat = tmp_path / "flat.csv"
    flat.write_text("userId,movieId,rating,timestamp\n1,1,4,5\n1,2,4,5\n", encoding="utf-8")
    assert not load_ratings_csv(flat).has_timestamps
    bad = tmp_path / "bad.csv"
    bad.write_text("movieId,rating\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:1: expected header"):
        load_ratings_csv(bad)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        # ML-100K's u.data: tab-separated, no header
        ("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n"),
        # ML-1M's ratings.dat
        ("ratings.dat", "196::242::3::881250949\n186::302::3::891717742\n196::377::1::878887116\n"),
        # whitespace-aligned, decimal seconds
        ("r.txt", "196  242  3.0  881250949.0\n186  302  3.0  891717742.0\n196 377 1 878887116\n"),
        # a header in another order, with a column nobody reads
        (
            "r.csv",
            "timestamp,rating,user_id,item_id,note\n881250949,3,196,242,x\n"
            "891717742,3,186,302,\n878887116,1,196,377,y\n",
        ),
    ],
)
def test_load_public_dataset_layouts(tmp_path: Path, name: str, text: str) -> None:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    d = load_ratings_csv(p)
    assert d.users.tolist() == [196, 186, 196]
    assert d.items.tolist() == [242, 302, 377]
    assert d.values.tolist() == [3.0, 3.0, 1.0]
    assert d.timestamps.tolist() == [881250949, 891717742, 878887116]
    assert d.item_labels is None


def test_load_string_ids_quotes_and_iso_dates(tmp_path: Path) -> None:
    """Book-Crossing's quoted ';' rows with ISBNs, Last.fm's header, ISO 8601 dates."""
    p = tmp_path / "BX-Book-Ratings.csv"
    p.write_text(
        '"User-ID";"ISBN";"Book-Rating"\n"276725";"034545104X";"0"\n'
        '"276726";"0155061224";"5"\n"276725";"0155061224";"3"\n',
        encoding="utf-8",
    )
    d = load_ratings_csv(p)
    assert d.users.tolist() == [276725, 276726, 276725]
    assert d.item_labels is not None
    assert [d.item_labels[i] for i in d.items] == ["034545104X", "0155061224", "0155061224"]
    assert d.values.tolist() == [0.0, 5.0, 3.0] and not d.has_timestamps
    assert d.take(np.array([2])).item_labels is d.item_labels
    legacy = tmp_path / "latin1.csv"  # not UTF-8: read as Latin-1, the ids kept apart
    legacy.write_bytes("user;item\n1;caf\xe9\n1;cafe\n".encode("latin-1"))
    assert sorted(load_ratings_csv(legacy).item_labels) == ["cafe", "caf\xe9"]
    q = tmp_path / "user_artists.dat"
    q.write_text("userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n", encoding="utf-8")
    d = load_ratings_csv(q)
    assert d.items.tolist() == [51, 52] and d.values.tolist() == [13883.0, 11690.0]
    r = tmp_path / "reviews.csv"
    r.write_text(
        "reviewerID,asin,overall,date\nA2SUAM1J3GNN3B,0000013714,5.0,2013-05-29\n"
        "A1RSDE90N6RSZF,0000013714,4.0,2014-01-03T10:00:00+01:00\n",
        encoding="utf-8",
    )
    d = load_ratings_csv(r)
    assert d.users.tolist() == [1, 0]  # numbered in the ids' sorted order
    assert d.timestamps.tolist() == [1369785600, 1388739600]
    assert d.has_timestamps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\t2\t3\n1\t2\n", r"r\.dat:2: expected 3 tab-separated fields, got 2"),
        ("1::2::x\n", r"r\.dat:1: the value must be a number, got 'x'"),
        ("reviewer,product,stars\nA1,B2,5\n", r"r\.dat:1: the value .*'stars'.*a header\?"),
        ("1::2::4::yesterday\n", r"r\.dat:1: the timestamp must be seconds or an ISO 8601"),
        ("1::2::4::1e300\n", r"r\.dat:1: the timestamp is out of range"),
        ("1::2::nan\n", r"r\.dat:1: the value must be a finite number"),
        ("1::2::1e39\n", r"r\.dat:1: the value must be a finite number"),
        ("1::::4\n", r"r\.dat:1: the user and the item must not be empty"),
        ("1,2,3,4,5\n", r"r\.dat:1: expected a header or 2-4 fields"),
        ("user,user_id,item\n1,2,3\n", r"r\.dat:1: .*two user columns"),
        ("\n\n", r"r\.dat:1: empty file"),
        ("user,item,rating\n\n", r"r\.dat:1: no rows after the header"),
    ],
)
def test_load_reports_the_line_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "r.dat"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_ratings_csv(p)


def test_evaluate_reads_a_tab_separated_file_without_a_header(tmp_path: Path) -> None:
    """``manage.py evaluate --ratings u.data`` as a site owner with ML-100K runs it."""
    from io import StringIO

    from django.core.management import call_command

    rng = np.random.default_rng(0)
    pairs = sorted(
        {
            (int(u), int(i))
            for u, i in zip(rng.integers(1, 40, 900), rng.integers(1, 60, 900), strict=True)
        }
    )
    path = tmp_path / "u.data"
    path.write_text(
        "".join(
            f"{u}\t{i}\t{1 + (u * i) % 5}\t{800000000 + 60 * n}\n" for n, (u, i) in enumerate(pairs)
        ),
        encoding="utf-8",
    )
    out = StringIO()
    call_command(
        "evaluate",
        ratings=str(path),
        model=["popularity"],
        split="time",
        stdout=out,
        stderr=StringIO(),
    )
    text = out.getvalue()
    users = len({u for u, _ in pairs})
    assert f"time split: {users} users" in text  # the file's timestamps order the split
    assert "popularity" in text


def test_fewshot_keeps_k_training_rows_of_tested_users_only() -> None:
    from recommender.evaluation import fewshot_train

    rows = [(u, i, i) for u in (1, 2) for i in range(1, 21)] + [(3, 1, 1), (3, 2, 2)]
    s = split(_inter(rows), "random", seed=0)
    few = fewshot_train(s, 5, seed=0).train
    counts = {u: int((few.users == u).sum()) for u in (1, 2, 3)}
    assert counts == {1: 5, 2: 5, 3: 2}  # user 3 (2 rows) is never tested: keeps all
    kept = set(zip(few.users.tolist(), few.items.tolist(), strict=True))
    train = set(zip(s.train.users.tolist(), s.train.items.tolist(), strict=True))
    assert kept <= train
    again = fewshot_train(s, 5, seed=0).train
    assert np.array_equal(again.items, few.items)
    assert not np.array_equal(fewshot_train(s, 5, seed=1).train.items, few.items)


def test_fewshot_share_makes_only_some_tested_users_new() -> None:
    from recommender.evaluation import fewshot_train

    rows = [(u, i, i) for u in range(1, 11) for i in range(1, 21)]
    s = split(_inter(rows), "random", seed=0)
    few = fewshot_train(s, 5, seed=0, share=0.5)
    new = set(np.unique(few.test.users).tolist())
    assert len(new) == 5
    for u in range(1, 11):
        n = int((few.train.users == u).sum())
        assert n == (5 if u in new else 16)  # 20 - 4 held out
    with pytest.raises(ValueError, match="share"):
        fewshot_train(s, 5, share=0.0)


def test_genre_share_of_the_top_10() -> None:
    # user 1 has item 1 (genre A); every other item is ranked: 2 (A), 3 (B), 4 (A|B)
    train = _inter([(1, 1, 1), (2, 2, 1), (2, 3, 1), (2, 4, 1), (2, 1, 2)])
    test = _inter([(1, 2, 5)])
    genres = {1: ("A",), 2: ("A",), 3: ("B",), 4: ("A", "B")}
    r = evaluate(FixedScores(), train, test, genres=genres)
    assert r["genre@10"] == pytest.approx(2 / 3)
    assert r["topgenre@10"] == pytest.approx(2 / 3)  # A is the history's genre: 2 and 4


def test_short_histories_are_reranked_as_serving_reranks_them() -> None:
    from recommender.coherence import ShortHistory, genre_match, rerank

    # user 1 likes item 1 (genre A); scores rank 2 (A), 3 (B), 4 (A|B); the held-out item is 4
    train = _inter([(1, 1, 1), (2, 2, 1), (2, 3, 1), (2, 4, 1), (2, 1, 2)])
    test = _inter([(1, 4, 5)])
    genres = {1: ("A",), 2: ("A",), 3: ("B",), 4: ("A", "B")}
    plain = evaluate(FixedScores(), train, test, genres=genres)
    assert plain["ndcg@10"] == pytest.approx(1 / math.log2(4))  # third
    # normalised scores 1, 2/3, 1/3 plus .5 x genre match 1, 0, 1: 4 passes 3
    term = ShortHistory(strength=0.5, max_history=10)
    coherent = evaluate(FixedScores(), train, test, genres=genres, short_history=term)
    assert coherent["ndcg@10"] == pytest.approx(1 / math.log2(3))  # second
    assert rerank(np.array([3.0, 2.0, 1.0]), [("A",), ("B",), ("A", "B")], [("A",)], 0.5) == (
        pytest.approx([1.5, 2 / 3, 1 / 3 + 0.5])
    )
    # a history longer than max_history keeps the model's order
    longer = ShortHistory(strength=0.5, max_history=0)
    kept = evaluate(FixedScores(), train, test, genres=genres, short_history=longer)
    assert kept["ndcg@10"] == pytest.approx(plain["ndcg@10"])
    # graded: the best genre's count over the most frequent genre's count
    history = [("Sci-Fi", "Action"), ("Sci-Fi", "Action"), ("Sci-Fi",), ("Sci-Fi",), ("Sci-Fi",)]
    match = genre_match([("Sci-Fi",), ("Action", "Comedy"), ("Drama",), ()], history)
    assert match == pytest.approx([1.0, 0.4, 0.0, 0.0])


# --------------------------------------------------------------------------- the command


def _write_clustered(folder: Path, *, timestamps: bool) -> Path:
    rng = np.random.default_rng(0)
    groups = np.array_split(np.arange(1, 61), 3)
    lines = ["userId,movieId,rating" + (",timestamp" if timestamps else "")]
    for u in range(1, 91):
        items = rng.choice(groups[u % 3], size=12, replace=False)
        for t, i in enumerate(items.tolist()):
            lines.append(f"{u},{i},4" + (f",{1000 * u + t}" if timestamps else ""))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    genres = "\n".join(f"{i},Item {i},G{(i - 1) * 3 // 60}" for i in range(1, 61))
    (folder / "movies.csv").write_text(f"movieId,title,genres\n{genres}\n", encoding="utf-8")
    return folder / "ratings.csv"


def test_evaluate_command_without_timestamps_says_which_split(tmp_path: Path) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    path = _write_clustered(tmp_path, timestamps=False)
    out = StringIO()
    call_command("evaluate", ratings=str(path), split="time", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "the time split is impossible, using the random split" in text
    assert "random split, seed 0 (the data has no timestamps)" in text
    assert "default / EASE at its best lam" in text
    assert "model selection on the training part (random validation slice" in text
    out = StringIO()
    call_command("evaluate", ratings=str(path), model=["auto", "popularity"], json=True, stdout=out)
    result = json.loads(out.getvalue())
    assert [r["name"] for r in result["models"]] == ["auto", "popularity"]
    assert result["selection"]["table"] and result["selection"]["validation"] == "random"


def test_evaluate_command_fewshot_reports_the_genre_share(tmp_path: Path) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    path = _write_clustered(tmp_path, timestamps=True)
    out = StringIO()
    call_command("evaluate", ratings=str(path), protocol="fewshot", json=True, stdout=out)
    result = json.loads(out.getvalue())
    assert [t["k"] for t in result["tables"]] == [5, 10]
    for table in result["tables"]:
        names = [r["name"] for r in table["models"]]
        assert names == ["auto", "popularity", "ease"]
        own = table["models"][0]
        assert 0.0 <= own["genre@10"] <= 1.0
        # one genre per cluster: CF keeps a new user's list inside their cluster
        assert own["genre@10"] > table["models"][1]["genre@10"]


def _fewshot_tables(**options) -> list[dict]:
    import json
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("evaluate", protocol="fewshot", json=True, k=[5], stdout=out, **options)
    return json.loads(out.getvalue())["tables"]


def _coherent(table: dict) -> bool:
    own, popular = table["models"][0], table["models"][1]
    return own["genre@10"] > popular["genre@10"] and 0.0 <= own["genre@10"] <= 1.0


def test_fewshot_reads_ml100k_u_item_beside_u_data(tmp_path: Path) -> None:
    csv_path = _write_clustered(tmp_path / "csv", timestamps=True)
    rows = [line.split(",") for line in csv_path.read_text().splitlines()[1:]]
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("".join("\t".join(r) + "\n" for r in rows), encoding="latin-1")
    # u.item: id|title|release|video|url| 19 flags; clusters 0-2 are Action, Comedy, Drama
    flag_of_cluster = {0: 1, 1: 5, 2: 8}
    items = []
    for i in range(1, 61):
        flags = ["0"] * 19
        flags[flag_of_cluster[(i - 1) * 3 // 60]] = "1"
        items.append("|".join([str(i), f"Misérables {i} (1995)", "01-Jan-1995", "", "url", *flags]))
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    (table,) = _fewshot_tables(ratings=str(folder / "u.data"))
    assert _coherent(table)


def test_fewshot_matches_genres_to_items_whose_ids_are_not_integers(tmp_path: Path) -> None:
    csv_path = _write_clustered(tmp_path, timestamps=False)
    lines = csv_path.read_text().splitlines()
    renamed = [lines[0]] + [
        ",".join([u, f"tt{int(i):07d}", *rest])
        for u, i, *rest in (line.split(",") for line in lines[1:])
    ]
    csv_path.write_text("\n".join(renamed) + "\n", encoding="utf-8")
    movies = tmp_path / "movies.csv"
    genres = [line.split(",") for line in movies.read_text().splitlines()[1:]]
    movies.write_text(
        "movieId,title,genres\n" + "".join(f"tt{int(i):07d},{t},{g}\n" for i, t, g in genres),
        encoding="utf-8",
    )
    (table,) = _fewshot_tables(ratings=str(csv_path))
    assert _coherent(table)


def test_fewshot_without_a_genres_file_names_the_files_it_looks_for(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    csv_path = _write_clustered(tmp_path, timestamps=False)
    (tmp_path / "movies.csv").unlink()
    with pytest.raises(CommandError, match="movies.csv, u.item or movies.dat"):
        _fewshot_tables(ratings=str(csv_path))
    other = tmp_path / "other.csv"
    other.write_text("movieId,title,genres\n999,Nobody,Drama\n", encoding="utf-8")
    with pytest.raises(CommandError, match="none of its ids is an item"):
        _fewshot_tables(ratings=str(csv_path), movies=str(other))


# --------------------------------------------------------------------------- large catalogs


def test_query_ease_scores_what_the_dense_ease_scores() -> None:
    from recommender.engine import get_model
    from recommender.evaluation import QueryEASE

    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((40, 120)) < 0.08).astype(np.float32))
    dense = get_model("ease", lam=5.0).fit(X)
    query = QueryEASE(lam=5.0).fit(X)
    # the Woodbury pieces are computed once and serve every batch
    for rows in (slice(0, 7), slice(7, 40)):
        np.testing.assert_allclose(
            query.score_users(X[rows]), dense.score_users(X[rows]), atol=1e-4
        )


def test_ease_for_takes_the_dense_model_the_query_one_or_refuses() -> None:
    from recommender.engine import CatalogTooLargeError
    from recommender.evaluation import QueryEASE, ease_for

    # 3 users x 50 items, 50 users x 3 items, 50 users x 50 items
    wide = _inter([(u, i, 4) for u in range(1, 4) for i in range(1, 51)])
    tall = _inter([(u, i, 4) for u in range(1, 51) for i in range(1, 4)])
    square = _inter([(u, i, 4) for u in range(1, 51) for i in range(1, 51)])
    assert ease_for(wide, ceiling=100)(7.0).name == "ease"
    assert not isinstance(ease_for(wide, ceiling=100)(7.0), QueryEASE)
    # 3 x 50 users x items within 15 x 15: the query form
    made = ease_for(wide, ceiling=15)(7.0)
    assert isinstance(made, QueryEASE) and made.params == {"lam": 7.0}
    assert not isinstance(ease_for(tall, ceiling=10)(7.0), QueryEASE)
    with pytest.raises(CatalogTooLargeError, match="50 users x 50 items exceed its 10 x 10"):
        ease_for(square, ceiling=10)
    with pytest.raises(CatalogTooLargeError, match="3 users x 50 items exceed its 12 x 12"):
        ease_for(wide, ceiling=12)


def _write_wide(folder: Path, users: int, unique: int) -> Path:
    """Each user rates ``unique`` items nobody else has and 10 of a shared 100: a catalog of
    more than ``users * unique * 0.8`` items in any training part."""
    rng = np.random.default_rng(1)
    lines = ["userId,movieId,rating"]
    for u in range(users):
        own = range(1000 + u * unique, 1000 + (u + 1) * unique)
        shared = rng.choice(100, size=10, replace=False) + 1
        lines += [f"{u + 1},{i},4" for i in [*own, *shared.tolist()]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "ratings.csv"


def test_evaluate_command_on_a_catalog_above_the_dense_ceiling(tmp_path: Path) -> None:
    """Above 20,000 items the dense baselines say why they do not run, and the default is
    still judged against EASE, computed without its items x items matrix."""
    import json
    from io import StringIO

    from django.core.management import call_command

    from recommender.engine import get_model

    ceiling = get_model("ease").params["max_items"]
    path = _write_wide(tmp_path, users=560, unique=50)
    out = StringIO()
    call_command("evaluate", ratings=str(path), json=True, stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    assert result["models"][0]["name"] == "auto"
    names = [r["name"] for r in result["models"]]
    assert names[:4] == ["auto", "popularity", "als", "ease"]
    assert names[-1] == f"ease (best lam {result['ease_best']['lam']:g})"
    assert set(result["skipped"]) == {"rp3beta", "session_ease"}
    assert f"exceed max_items={ceiling}" in result["skipped"]["rp3beta"]
    # the shared items carry the signal: EASE finds some of them, and the ratio is a number
    assert result["ease_best"]["ndcg@10"] > 0
    assert math.isfinite(result["ratio_ndcg"])
    out = StringIO()
    call_command("evaluate", ratings=str(path), model=["ease"], stdout=out, stderr=StringIO())
    assert "items exceed" not in out.getvalue() and "  ease " in out.getvalue()
