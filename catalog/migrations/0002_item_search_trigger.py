"""Keep Item.search_vector current with a trigger: title (A), tags (B), genres and description (C)."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION catalog_item_search_vector() RETURNS trigger AS $$
BEGIN
  NEW.search_vector :=
      setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
   || setweight(to_tsvector('english', coalesce(array_to_string(NEW.tags, ' '), '')), 'B')
   || setweight(to_tsvector('english', coalesce(array_to_string(NEW.genres, ' '), '')), 'C')
   || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C');
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER catalog_item_search_vector_trg
BEFORE INSERT OR UPDATE OF title, tags, genres, description ON catalog_item
FOR EACH ROW EXECUTE FUNCTION catalog_item_search_vector();

UPDATE catalog_item SET title = title;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS catalog_item_search_vector_trg ON catalog_item;
DROP FUNCTION IF EXISTS catalog_item_search_vector();
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
