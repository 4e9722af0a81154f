"""A counter of statements that deleted items, for the catalog's fingerprint (a cache key).

The fingerprint reads the newest id and the newest edit through indexes; a deleted item leaves
both unchanged, and counting the items would scan them. A statement-level trigger bumps a
sequence instead: reading it is one row, and every session sees it at once (a rolled-back delete
bumps it too, which only makes caches miss once). TRUNCATE (Django's flush) counts as
a deletion as well: ids restart after it, and a re-imported catalog must not match old keys.
"""

from django.db import migrations

FORWARD = """
CREATE SEQUENCE catalog_item_deletions;

CREATE OR REPLACE FUNCTION catalog_item_deleted() RETURNS trigger AS $$
BEGIN
  PERFORM nextval('catalog_item_deletions');
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER catalog_item_deleted_trg
AFTER DELETE OR TRUNCATE ON catalog_item
FOR EACH STATEMENT EXECUTE FUNCTION catalog_item_deleted();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS catalog_item_deleted_trg ON catalog_item;
DROP FUNCTION IF EXISTS catalog_item_deleted();
DROP SEQUENCE IF EXISTS catalog_item_deletions;
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0006_item_updated_idx")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
