"""recommender.history_read: a history packed in one row is the history its rows give, after any
write to the interactions (whatever wrote it), and a reader racing a write stores nothing stale.
The generation moves when the writing transaction commits, so the tests commit (transactional)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from catalog.models import Interaction, Item
from catalog.services import interaction_delete, interaction_record
from recommender.history import history_from_rows
from recommender.history_read import (
    HISTORY_SQL,
    PACKED_FORMAT,
    HistoryRead,
    history_pack,
    history_unpack,
    user_history_ids,
)
from recommender.models import UserHistory

from .test_history import rows_strategy


@given(rows_strategy)
def test_a_packed_history_unpacks_to_itself(rows):
    history = history_from_rows(rows)
    assert history_unpack(history_pack(history)) == history


@given(st.binary(max_size=64))
def test_bytes_of_another_format_are_not_a_history(data):
    packed = (PACKED_FORMAT + 1).to_bytes(8, "little") + data
    assert history_unpack(packed) is None
    assert history_unpack(data[:39]) is None


@given(rows_strategy, st.integers(-16, 16))
def test_bytes_cut_or_padded_are_not_a_history(rows, change):
    packed = history_pack(history_from_rows(rows))
    changed = packed[:change] if change < 0 else packed + bytes(change)
    assert (history_unpack(changed) is None) == (change != 0)


def _from_rows(user_id: int):
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SQL, [user_id])
        return history_from_rows(cursor.fetchall())


def _state(user) -> UserHistory | None:
    return UserHistory.objects.filter(user=user).first()


def _current(user) -> bool:
    state = _state(user)
    return state is not None and state.generation == state.packed_generation


def _at_once(*targets) -> list[BaseException]:  # noqa: ANN002
    """Run each callable in a thread of its own (each on its own connection); their errors."""
    errors: list[BaseException] = []

    def run(target) -> None:  # noqa: ANN001
        try:
            target()
        except BaseException as e:  # noqa: BLE001 - returned to the test
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.fixture
def shelf(django_user_model):
    fan = django_user_model.objects.create_user("hr_fan")
    items = [
        Item.objects.create(external_id=f"hr-{i}", title=f"Hr {i}", genres=["Hrdrama"])
        for i in range(6)
    ]
    return fan, items


@pytest.mark.django_db(transaction=True)
def test_every_write_is_seen_and_the_packed_history_is_the_rows(shelf, django_user_model):
    fan, items = shelf
    other = django_user_model.objects.create_user("hr_other")
    assert _state(fan) is None
    empty = user_history_ids(user_id=fan.pk)
    assert empty.liked == [] and empty.seen == set()
    assert _current(fan)  # a user with no interaction gets a row holding the empty history

    def check(expect_liked: list[Item]) -> None:
        assert not _current(fan)  # the write bumped the generation
        read = user_history_ids(user_id=fan.pk)
        assert read == _from_rows(fan.pk)
        assert read.liked == [i.pk for i in expect_liked]
        assert _current(fan)
        with CaptureQueriesContext(connection) as queries:
            again = user_history_ids(user_id=fan.pk)
        assert again == read and len(queries) == 1  # the state row only

    interaction_record(user=fan, item=items[0], kind="rating", value=4.5)
    check([items[0]])
    interaction_record(user=fan, item=items[1], kind="like")
    check([items[1], items[0]])
    interaction_record(user=fan, item=items[0], kind="rating", value=2.0)  # edited in place
    check([items[1]])
    Interaction.objects.filter(user=fan, item=items[0]).update(value=5.0)  # a queryset update
    check([items[0], items[1]])
    Interaction.objects.bulk_create(
        [
            Interaction(user=fan, item=items[2], kind="like"),
            Interaction(user=other, item=items[3], kind="like"),
        ]
    )
    check([items[2], items[0], items[1]])
    interaction_record(user=fan, item=items[1], kind="dismiss")  # removes the like
    check([items[2], items[0]])
    assert user_history_ids(user_id=fan.pk).dismissed == {items[1].pk}
    liked_two = Interaction.objects.get(user=fan, item=items[2])
    interaction_delete(user=fan, interaction_id=liked_two.pk)
    check([items[0]])
    with connection.cursor() as cursor:  # raw SQL, as an import writes
        cursor.execute(
            f"INSERT INTO {Interaction._meta.db_table} (user_id, item_id, kind, value, timestamp,"
            " source) VALUES (%s, %s, 'like', NULL, clock_timestamp(), 'import')",
            [fan.pk, items[4].pk],
        )
    check([items[4], items[0]])
    items[4].delete()  # the item's interactions go with it
    check([items[0]])
    # a row moved to another user changes both histories
    user_history_ids(user_id=other.pk)
    Interaction.objects.filter(user=fan, item=items[0]).update(user=other)
    check([])
    assert not _current(other)
    assert user_history_ids(user_id=other.pk) == _from_rows(other.pk)


def _taken_before_a_like(cursor, fan, item) -> HistoryRead:  # noqa: ANN001
    """A read that took ``fan``'s state row, then a like of ``item`` landing before its rows."""
    read = HistoryRead(fan.pk)
    cursor.execute(read.sql, read.params)
    read.take(cursor)
    interaction_record(user=fan, item=item, kind="like")
    return read


@pytest.mark.django_db(transaction=True)
def test_a_write_between_reading_the_state_and_the_rows_leaves_nothing_stale(shelf):
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")  # the state is stale
    with connection.cursor() as cursor:
        history = _taken_before_a_like(cursor, fan, items[1]).finish(cursor)
    assert history.liked == [items[1].pk, items[0].pk]  # the rows it read
    # it was not stored under the generation seen before the write: the next read reads rows
    assert not _current(fan)
    assert user_history_ids(user_id=fan.pk).liked == [items[1].pk, items[0].pk]
    assert _current(fan)


@pytest.mark.django_db(transaction=True)
def test_a_write_after_a_current_read_is_seen_by_the_next(shelf):
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")
    user_history_ids(user_id=fan.pk)  # the state is current
    with connection.cursor() as cursor:
        read = _taken_before_a_like(cursor, fan, items[1])
        assert read.finish(cursor).liked == [items[0].pk]  # as of its statement
    assert user_history_ids(user_id=fan.pk).liked == [items[1].pk, items[0].pk]


@pytest.mark.django_db(transaction=True)
def test_a_history_packed_in_another_format_is_read_again(shelf):
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")
    user_history_ids(user_id=fan.pk)
    UserHistory.objects.filter(user=fan).update(packed=b"\x00" * 40)
    assert user_history_ids(user_id=fan.pk).liked == [items[0].pk]
    assert history_unpack(bytes(_state(fan).packed)).liked == [items[0].pk]


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_deletes_their_history_row(shelf):
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")
    user_history_ids(user_id=fan.pk)
    user_id = fan.pk
    fan.delete()  # Django deletes the interactions (the trigger writes the row), then the user
    assert not UserHistory.objects.filter(user_id=user_id).exists()


@pytest.mark.django_db(transaction=True)
def test_truncating_the_interactions_leaves_no_packed_history_current(shelf):
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")
    user_history_ids(user_id=fan.pk)
    assert _current(fan)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Interaction._meta.db_table}")
    assert not _current(fan)
    assert user_history_ids(user_id=fan.pk).liked == []


@pytest.mark.django_db(transaction=True)
def test_a_slow_reader_does_not_replace_a_newer_packed_history(shelf):
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")  # the state is stale
    with connection.cursor() as cursor:
        slow = _taken_before_a_like(cursor, fan, items[1])
        assert user_history_ids(user_id=fan.pk).liked == [items[1].pk, items[0].pk]
        assert _current(fan)  # stored by the newer read
        slow.finish(cursor)
    assert _current(fan)
    assert history_unpack(bytes(_state(fan).packed)).liked == [items[1].pk, items[0].pk]


@pytest.mark.django_db(transaction=True)
def test_readers_and_writers_at_once_leave_no_stale_history_current(shelf):
    """Threads rating, liking, dismissing and deleting while others read, each on its own
    connection: whatever interleaving happened, a packed history left current is the rows'."""
    import random

    fan, items = shelf

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(25):
            item = rng.choice(items)
            kind = rng.choice(["rating", "like", "dismiss", "delete"])
            if kind == "delete":
                Interaction.objects.filter(user=fan, item=item).delete()
            else:
                value = rng.choice([1.0, 4.0, 5.0]) if kind == "rating" else None
                interaction_record(user=fan, item=item, kind=kind, value=value)

    def reader() -> None:
        for _ in range(40):
            user_history_ids(user_id=fan.pk)

    errors = _at_once(lambda: writer(0), lambda: writer(1), reader, reader, reader)
    assert not errors, errors
    state = _state(fan)
    if state.generation == state.packed_generation:
        assert history_unpack(bytes(state.packed)) == _from_rows(fan.pk)
    assert user_history_ids(user_id=fan.pk) == _from_rows(fan.pk)
    assert _current(fan)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_reads_its_own_writes_and_stores_nothing_before_it_commits(shelf):
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")
    user_history_ids(user_id=fan.pk)
    before = _state(fan)
    with transaction.atomic():
        interaction_record(user=fan, item=items[1], kind="like")
        assert user_history_ids(user_id=fan.pk).liked == [items[1].pk, items[0].pk]
        with CaptureQueriesContext(connection) as queries:
            user_history_ids(user_id=fan.pk)
        assert len(queries) == 2  # the state row and the rows, nothing stored
        now = _state(fan)
        assert (now.generation, now.packed_generation, bytes(now.packed)) == (
            before.generation,
            before.packed_generation,
            bytes(before.packed),
        )
    assert not _current(fan)  # bumped as it committed
    assert user_history_ids(user_id=fan.pk).liked == [items[1].pk, items[0].pk]


@pytest.mark.django_db(transaction=True)
def test_a_like_and_a_dismissal_of_one_item_at_once_do_not_deadlock(shelf):
    """Each transaction takes the state row when it commits, after its other statements."""
    fan, items = shelf
    interaction_record(user=fan, item=items[0], kind="like")
    barrier = threading.Barrier(2)

    def act(kind: str) -> None:
        barrier.wait()
        for _ in range(20):
            interaction_record(user=fan, item=items[0], kind=kind)

    errors = _at_once(lambda: act("like"), lambda: act("dismiss"))
    assert not errors, errors
    assert user_history_ids(user_id=fan.pk) == _from_rows(fan.pk)
