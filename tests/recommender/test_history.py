"""A history read from its rows: the loop that runs over every row of a long history on each
list, against the rules written plainly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from catalog.models import POSITIVE_KINDS, Interaction
from recommender.history import LIKED_RATING, history_from_rows

KINDS = [str(k.value) for k in Interaction.Kind]
rows_strategy = st.lists(
    st.tuples(
        st.integers(1, 12),
        st.sampled_from(KINDS),
        st.one_of(st.none(), st.sampled_from([0.5, 2.0, 2.5, 3.0, 4.5, 5.0])),
    ),
    max_size=40,
)


def _plainly(rows):
    positive = {str(k) for k in POSITIVE_KINDS}
    kept = positive | {"save"}
    favourite = [
        i
        for i, kind, value in rows
        if kind in {"like", "save"} or (kind == "rating" and value is not None and value >= 3)
    ]
    dismissed = {i for i, kind, _v in rows if kind == "dismiss"}
    values: dict[int, float] = {}
    for i, kind, value in rows:
        if kind in positive and value is not None:
            values[i] = max(value, values.get(i, value))
    liked = [i for i in dict.fromkeys(favourite) if i not in dismissed]
    return (
        liked,
        {i for i, kind, _v in rows if kind in kept},
        dismissed,
        dict.fromkeys(liked, 1.0),
        values,
    )


@given(rows_strategy)
def test_history_from_rows_follows_the_rules(rows):
    history = history_from_rows(rows)
    got = (history.liked, history.seen, history.dismissed, history.weights, history.values)
    assert got == _plainly(rows)


def test_the_kinds_it_knows():
    assert {str(k) for k in POSITIVE_KINDS} == {"rating", "like"}
    assert LIKED_RATING == 3.0
    rows = [(1, "rating", 2.5), (2, "view", None), (3, "save", None), (1, "rating", 4.0)]
    history = history_from_rows(rows)
    assert history.liked == [3, 1] and history.seen == {1, 3} and history.values == {1: 4.0}
