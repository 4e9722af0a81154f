"""MovieLens and generic CSV imports: counts, idempotence, and every bad-file case."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from catalog.importing.generic import catalog_csv_import
from catalog.importing.movielens import movielens_import
from catalog.importing.reading import split_title_year
from catalog.importing.reports import ImportFailed
from catalog.models import Interaction, Item, Tagging

User = get_user_model()


def _counts() -> tuple[int, int, int, int]:
    return (
        Item.objects.count(),
        Interaction.objects.count(),
        Tagging.objects.count(),
        User.objects.count(),
    )


@pytest.fixture
def empty_catalog(db):
    # The session may have loaded MovieLens already; start this test from nothing (rolled back).
    Interaction.objects.all().delete()
    Tagging.objects.all().delete()
    Item.objects.all().delete()
    User.objects.all().delete()


@pytest.fixture
def small_ml(tmp_path) -> Path:
    """A tiny MovieLens folder in the real layout."""
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '2,"American President, The (1995)",Comedy|Drama|Romance\n'
        "3,Babylon 5,Sci-Fi\n"
        "4,Nothing Listed (2001),(no genres listed)\n"
    )
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,964982224\n"
    )
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n2,1,pixar,1445714994\n1,1,Pixar,1445714995\n"
    )
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n2,0112346,\n")
    return folder


def test_split_title_year():
    assert split_title_year("Toy Story (1995)") == ("Toy Story", 1995)
    assert split_title_year("Babylon 5") == ("Babylon 5", None)
    assert split_title_year("Death Note: Desu nôto (2006–2007)") == ("Death Note: Desu nôto", 2006)


def test_movielens_full_import_counts_and_idempotence(empty_catalog, movielens_dir):
    report = movielens_import(path=movielens_dir)
    assert report.tables["items"].created == 9742
    assert report.tables["ratings"].created == 100836
    assert report.tables["tags"].created == 3683
    assert report.tables["users"].created == 610
    assert Item.objects.count() == 9742
    assert Interaction.objects.filter(kind="rating", source="import").count() == 100836
    assert Tagging.objects.count() == 3683
    # imported users are real users who cannot log in
    user = User.objects.get(username="ml_1")
    assert not user.has_usable_password()
    assert user.interactions.count() == 232
    toy = Item.objects.get(external_id="1")
    assert (toy.title, toy.year) == ("Toy Story", 1995)
    assert toy.genres == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert toy.links["imdb"] == "https://www.imdb.com/title/tt0114709/"
    assert "pixar" in [t.lower() for t in toy.tags]
    assert Item.objects.filter(search_vector="pixar").filter(pk=toy.pk).exists()

    before = _counts()
    again = movielens_import(path=movielens_dir)
    assert not again.changed
    assert again.tables["ratings"].unchanged == 100836
    assert _counts() == before


def test_reimport_updates_changed_rows_only(empty_catalog, small_ml):
    movielens_import(path=small_ml)
    ratings = small_ml / "ratings.csv"
    ratings.write_text(ratings.read_text().replace("1,2,3.5,964981247", "1,2,4.5,964981247"))
    report = movielens_import(path=small_ml)
    assert (report.tables["ratings"].created, report.tables["ratings"].updated) == (0, 1)
    assert Interaction.objects.get(user__username="ml_1", item__external_id="2").value == 4.5
    assert Item.objects.get(external_id="4").genres == []
    assert Item.objects.get(external_id="1").tags == ["Pixar"]  # case-folded duplicate tags


def test_ratings_and_tags_without_timestamps_import_at_the_import_time(empty_catalog, small_ml):
    (small_ml / "ratings.csv").write_text(
        "userId,movieId,rating\n1,1,4.0\n1,2,3.5\n2,1,5.0\n1,2,2.5\n"
    )
    (small_ml / "tags.csv").write_text("userId,movieId,tag\n2,1,pixar\n")
    said: list[str] = []
    report = movielens_import(path=small_ml, progress=said.append)
    assert report.tables["ratings"].created == 3
    assert "ratings.csv: 3 ratings without a timestamp get the import time" in said
    with connection.cursor() as cursor:  # the import's transaction time (the test's own)
        cursor.execute("SELECT now()")
        (now,) = cursor.fetchone()
    rows = Interaction.objects.filter(kind="rating")
    assert {r.timestamp for r in rows} == {now}
    # a repeated undated rating: the one further down the file wins
    assert rows.get(user__username="ml_1", item__external_id="2").value == 2.5
    tag = Tagging.objects.get(tag="pixar")
    assert tag.timestamp == now
    # the import stays idempotent without stamps
    again = movielens_import(path=small_ml)
    assert not again.changed and again.tables["ratings"].unchanged == 3


def test_staff_edits_survive_a_reimport(empty_catalog, small_ml):
    movielens_import(path=small_ml)
    Item.objects.filter(external_id="1").update(description="Staff wrote this", is_featured=True)
    movielens_import(path=small_ml)
    item = Item.objects.get(external_id="1")
    assert item.description == "Staff wrote this" and item.is_featured


def _assert_rejected(path: Path, expected: list[str]) -> None:
    before = _counts()
    with pytest.raises(ImportFailed) as info:
        movielens_import(path=path)
    messages = [str(e) for e in info.value.errors]
    for fragment in expected:
        assert any(fragment in m for m in messages), (fragment, messages)
    assert _counts() == before  # nothing written


@pytest.mark.parametrize(
    "file,content,expected",
    [
        (
            "ratings.csv",
            "userId,movieId,timestamp\n1,1,964982703\n",
            ["ratings.csv, line 1: missing column(s): rating"],
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,four,964981247\n2,1,9,1\n",
            [
                "ratings.csv, line 3: rating must be a number",
                "ratings.csv, line 4: rating must be between",
            ],
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,1,4.0,964982703\nx,1,4.0,1\n",
            ["ratings.csv, line 3: userId must be a whole number"],
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,999,4.0,964982703\n",
            ["ratings.csv, line 3: unknown movieId 999"],
        ),
        (
            "tags.csv",
            "userId,movieId,tag,timestamp\n1,77,scary,1\n",
            ["tags.csv, line 2: unknown movieId 77"],
        ),
        ("ratings.csv", "", ["ratings.csv, line 1: file is empty"]),
        ("movies.csv", "\n\n", ["movies.csv, line 1: file is empty"]),
        (
            "movies.csv",
            "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Dr\xe4gon (1999),Drama\n".encode(
                "latin-1"
            ),
            ["movies.csv, line 3: not valid UTF-8"],
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,1,4.0\n",
            ["ratings.csv, line 2: expected 4 fields, found 3"],
        ),
    ],
    ids=[
        "missing-column",
        "bad-number",
        "bad-user",
        "unknown-item",
        "unknown-item-tag",
        "empty-file",
        "blank-file",
        "wrong-encoding",
        "short-row",
    ],
)
def test_bad_files_are_rejected_with_line_numbers(empty_catalog, small_ml, file, content, expected):
    movielens_import(path=small_ml)  # an existing catalog must survive the failed import intact
    target = small_ml / file
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    _assert_rejected(small_ml, expected)


def test_all_or_nothing_across_files(empty_catalog, small_ml):
    # movies.csv is fine and new, but one rating is bad: not even the movies are written.
    (small_ml / "movies.csv").write_text("movieId,title,genres\n10,New Film (2020),Drama\n")
    (small_ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,7,1\n")
    _assert_rejected(small_ml, ["ratings.csv, line 2: rating must be between 0.5 and 5"])
    assert not Item.objects.filter(external_id="10").exists()


def test_crlf_files_import(empty_catalog, small_ml):
    for name in ["movies.csv", "ratings.csv"]:
        path = small_ml / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    report = movielens_import(path=small_ml)
    assert report.tables["items"].created == 4
    assert report.tables["ratings"].created == 3


def test_command_reports_line_numbers_and_fails(empty_catalog, small_ml, capsys):
    (small_ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,abc,1\n")
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_movielens", str(small_ml))
    assert "ratings.csv, line 2: rating must be a number" in capsys.readouterr().err
    assert Item.objects.count() == 0


def test_generic_csv_import(empty_catalog, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text(
        "external_id,title,year,description,genres,tags,url,author\n"
        "b1,Dune,1965,Desert planet epic,Sci-Fi|Adventure,spice|classic,https://example.org/dune,Herbert\n"
        "b2,Emma,1815,,Romance,,,Austen\n"
    )
    inter = tmp_path / "interactions.csv"
    inter.write_text(
        "user,item,kind,value,timestamp\n"
        "alice,b1,rating,4.5,2024-01-02T03:04:05Z\n"
        "alice,b2,dismiss,,1700000000\n"
        "bob,b1,like,,\n"
    )
    report = catalog_csv_import(items_path=items, interactions_path=inter)
    assert report.tables["items"].created == 2
    assert report.tables["interactions"].created == 3
    dune = Item.objects.get(external_id="b1")
    assert dune.metadata == {"author": "Herbert"} and dune.tags == ["spice", "classic"]
    assert dune.links == {"url": "https://example.org/dune"}
    assert Interaction.objects.get(user__username="alice", item=dune).value == 4.5
    again = catalog_csv_import(items_path=items, interactions_path=inter)
    assert not again.changed

    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,kind,value\nalice,zz,rating,4\nbob,b1,love,\ncarol,b2,rating,\n")
    before = _counts()
    with pytest.raises(ImportFailed) as info:
        catalog_csv_import(interactions_path=bad)
    errors = [str(e) for e in info.value.errors]
    assert errors == [
        "bad.csv, line 2: unknown item 'zz' (not in items.csv nor the catalog)",
        "bad.csv, line 3: kind must be one of dismiss, like, rating, save, view, got 'love'",
        "bad.csv, line 4: a rating needs a value",
    ]
    assert _counts() == before


def test_import_catalog_command(empty_catalog, tmp_path, capsys):
    items = tmp_path / "items.csv"
    items.write_text("external_id,title\nx1,Only Title\n")
    call_command("import_catalog", "--items", str(items))
    assert "items: 1 created" in capsys.readouterr().out
    shutil.copy(items, tmp_path / "again.csv")
    call_command("import_catalog", "--items", str(tmp_path / "again.csv"))
    assert "nothing changed" in capsys.readouterr().out


def _ml100k_folder(folder: Path) -> Path:
    """ML-100K's own files: '|'-separated u.item in Latin-1 with 19 genre flags, tab-separated
    u.data without a header."""
    folder.mkdir()
    flags = ["0"] * 19
    scifi = list(flags)
    scifi[1] = scifi[15] = "1"  # Action, Sci-Fi
    drama = list(flags)
    drama[8] = "1"
    unknown = list(flags)
    unknown[0] = "1"
    (folder / "u.item").write_bytes(
        (
            "1|Star Wars (1977)|01-Jan-1977||http://us.imdb.com/M/title-exact?Star%20Wars|"
            + "|".join(scifi)
            + "\n2|Misérables, Les (1995)|01-Jan-1995||http://x|"
            + "|".join(drama)
            + "\n3|unknown||||"
            + "|".join(unknown)
            + "\n"
        ).encode("latin-1")
    )
    (folder / "u.data").write_text(
        "196\t1\t3\t881250949\n186\t2\t5\t891717742\n196\t2\t4\t881250950\n"
    )
    return folder


def test_ml100k_layout_imports_as_it_ships(empty_catalog, tmp_path):
    folder = _ml100k_folder(tmp_path / "ml-100k")
    said: list[str] = []
    report = movielens_import(path=folder, progress=said.append)
    assert f"{folder}: GroupLens's ML-100K layout" in said
    assert (report.tables["items"].created, report.tables["ratings"].created) == (3, 3)
    star = Item.objects.get(external_id="1")
    assert (star.title, star.year, star.genres) == ("Star Wars", 1977, ["Action", "Sci-Fi"])
    assert Item.objects.get(external_id="2").title == "Misérables, Les"
    assert Item.objects.get(external_id="3").genres == []  # the "unknown" flag is no genre
    rating = Interaction.objects.get(user__username="ml_186", item__external_id="2")
    assert rating.value == 5 and rating.timestamp.timestamp() == 891717742
    assert not movielens_import(path=folder).changed


def test_ml1m_layout_with_tags_and_bad_rows(empty_catalog, tmp_path):
    folder = tmp_path / "ml-10m"
    folder.mkdir()
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Ça tourne (2001)::Drama\n".encode(
            "latin-1"
        )
    )
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::2::3.5::978302109\n")
    (folder / "tags.dat").write_text("1::1::pixar::1139045764\n")
    report = movielens_import(path=folder)
    assert (report.tables["items"].created, report.tables["ratings"].created) == (2, 2)
    assert Item.objects.get(external_id="2").title == "Ça tourne"
    assert Item.objects.get(external_id="1").tags == ["pixar"]
    # a bad row is reported with the layout's own file name and line, and nothing is written
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::2::9::978302109\n1::2\n")
    _assert_rejected(
        folder,
        [
            "ratings.dat, line 2: rating must be between",
            "ratings.dat, line 3: expected 4 fields, found 2",
        ],
    )
