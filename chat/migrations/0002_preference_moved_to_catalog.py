"""Standing preferences belong to the user: their rows move to catalog.Preference (same ids,
so links to them keep working), then the chat's table goes."""

from django.db import migrations

FORWARD = """
INSERT INTO catalog_preference (id, user_id, kind, value, conversation_id, created_at)
SELECT id, user_id, kind, value, conversation_id, created_at FROM chat_chatpreference;
SELECT setval(pg_get_serial_sequence('catalog_preference', 'id'),
              COALESCE((SELECT MAX(id) FROM catalog_preference), 1),
              (SELECT MAX(id) FROM catalog_preference) IS NOT NULL);
"""

# back: the rows whose conversation still exists keep it (the chat's table has a foreign key)
BACKWARD = """
INSERT INTO chat_chatpreference (id, user_id, kind, value, conversation_id, created_at)
SELECT p.id, p.user_id, p.kind, p.value, c.id, p.created_at
FROM catalog_preference p LEFT JOIN chat_conversation c ON c.id = p.conversation_id;
SELECT setval(pg_get_serial_sequence('chat_chatpreference', 'id'),
              COALESCE((SELECT MAX(id) FROM chat_chatpreference), 1),
              (SELECT MAX(id) FROM chat_chatpreference) IS NOT NULL);
DELETE FROM catalog_preference;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0001_initial"),
        ("catalog", "0004_preference"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.DeleteModel(name="ChatPreference"),
    ]
