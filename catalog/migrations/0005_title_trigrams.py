"""Typo-tolerant title search: each item's title trigrams in a GIN-indexed array, kept by a trigger.

PostgreSQL's pg_trgm would do this, but pgserver's PostgreSQL 16 ships without the contrib
extensions (only plpgsql and vector), so ``CREATE EXTENSION pg_trgm`` fails there. The same
trigrams (pg_trgm's: each word padded with two spaces before and one after, lower case, accents
folded) live in ``catalog_item.title_trigrams`` instead; ``catalog_trigrams(text)`` makes them
for a query, and ``&&`` on the GIN index finds the candidates.
"""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import migrations, models

ACCENTED = "áàâäãåāéèêëēíìîïóòôöõøōúùûüñçýÿæœ"
PLAIN = "aaaaaaaeeeeeiiiiooooooouuuuncyyao"

FORWARD = f"""
CREATE OR REPLACE FUNCTION catalog_trigrams(t text) RETURNS text[] AS $$
  SELECT coalesce(array_agg(DISTINCT substr(w, i, 3)), '{{}}')
  FROM (
    SELECT '  ' || word || ' ' AS w
    FROM regexp_split_to_table(
      translate(lower(coalesce(t, '')), '{ACCENTED}', '{PLAIN}'), '[^a-z0-9]+'
    ) AS word
    WHERE word <> ''
  ) words, generate_series(1, length(w) - 2) AS i
$$ LANGUAGE sql IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION catalog_item_title_trigrams() RETURNS trigger AS $$
BEGIN
  NEW.title_trigrams := catalog_trigrams(NEW.title);
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER catalog_item_title_trigrams_trg
BEFORE INSERT OR UPDATE OF title ON catalog_item
FOR EACH ROW EXECUTE FUNCTION catalog_item_title_trigrams();

UPDATE catalog_item SET title_trigrams = catalog_trigrams(title);
"""

BACKWARD = """
DROP TRIGGER IF EXISTS catalog_item_title_trigrams_trg ON catalog_item;
DROP FUNCTION IF EXISTS catalog_item_title_trigrams();
DROP FUNCTION IF EXISTS catalog_trigrams(text);
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_preference")]
    operations = [
        migrations.AddField(
            model_name="item",
            name="title_trigrams",
            field=ArrayField(
                models.CharField(max_length=3), default=list, blank=True, editable=False
            ),
        ),
        migrations.AddIndex(
            model_name="item",
            index=GinIndex(fields=["title_trigrams"], name="item_title_trgm_gin"),
        ),
        migrations.AlterField(
            model_name="interaction",
            name="kind",
            field=models.CharField(
                choices=[
                    ("rating", "rating"),
                    ("like", "like"),
                    ("dismiss", "not interested"),
                    ("view", "view"),
                    ("save", "saved for later"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
