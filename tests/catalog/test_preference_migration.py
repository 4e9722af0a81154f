"""Standing preferences moved from the chat to the catalog: a database migrated from before
the move keeps every row (same id, user, kind, value, conversation), and back again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("catalog", "0003_item_curated_index"), ("chat", "0001_initial")]
AFTER = [("catalog", "0004_preference"), ("chat", "0002_preference_moved_to_catalog")]


def _migrate(targets):  # noqa: ANN001
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_rows_survive_the_move_and_the_way_back(django_user_model):
    try:
        old = _migrate(BEFORE)
        user = old.get_model("auth", "User").objects.create(username="pref_mover")
        conversation = old.get_model("chat", "Conversation").objects.create(user_id=user.pk)
        ChatPreference = old.get_model("chat", "ChatPreference")
        said = ChatPreference.objects.create(
            user_id=user.pk, kind="exclude_genre", value="Horror", conversation=conversation
        )
        set_ = ChatPreference.objects.create(user_id=user.pk, kind="exclude_genre", value="War")

        new = _migrate(AFTER)
        Preference = new.get_model("catalog", "Preference")
        rows = {p.pk: p for p in Preference.objects.filter(user_id=user.pk)}
        assert set(rows) == {said.pk, set_.pk}
        assert rows[said.pk].value == "Horror"
        assert rows[said.pk].conversation_id == conversation.pk
        assert rows[set_.pk].conversation_id is None
        assert "chat_chatpreference" not in connection.introspection.table_names()
        # the id sequence continues after the copied rows
        fresh = Preference.objects.create(user_id=user.pk, kind="exclude_genre", value="Drama")
        assert fresh.pk > max(rows)

        back = _migrate(BEFORE)
        values = set(
            back.get_model("chat", "ChatPreference")
            .objects.filter(user_id=user.pk)
            .values_list("value", "conversation_id")
        )
        assert values == {("Horror", conversation.pk), ("War", None), ("Drama", None)}
    finally:  # every app's latest migration, later ones included (catalog 0005 ...)
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
