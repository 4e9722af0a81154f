"""Users' histories kept packed beside a generation the interactions' triggers bump.

Statement-level triggers with transition tables: a bulk import of a million rows bumps each of
its users once, in one statement, and in user order (two statements bumping the same users lock
their rows in the same order). An UPDATE bumps the users of its rows before and after it (a row
moved between users changes both). TRUNCATE bumps everyone: a reader that saw a generation
before it must not store rows read after it under that number. Existing users get a row, so a
site that migrates serves them packed after their next list.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

BUMP = """
  INSERT INTO recommender_userhistory (user_id, generation, packed_generation)
  SELECT DISTINCT user_id, 1, 0 FROM {rows} ORDER BY user_id
  ON CONFLICT (user_id) DO UPDATE SET generation = recommender_userhistory.generation + 1;
"""

FORWARD = f"""
CREATE OR REPLACE FUNCTION recommender_history_changed() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE recommender_userhistory SET generation = generation + 1;
  ELSIF TG_OP = 'INSERT' THEN
    {BUMP.format(rows="new_rows")}
  ELSIF TG_OP = 'DELETE' THEN
    {BUMP.format(rows="old_rows")}
  ELSE
    {BUMP.format(rows="(SELECT user_id FROM old_rows UNION SELECT user_id FROM new_rows) AS moved")}
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER recommender_history_ins AFTER INSERT ON catalog_interaction
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION recommender_history_changed();

CREATE TRIGGER recommender_history_del AFTER DELETE ON catalog_interaction
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION recommender_history_changed();

CREATE TRIGGER recommender_history_upd AFTER UPDATE ON catalog_interaction
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION recommender_history_changed();

CREATE TRIGGER recommender_history_trunc AFTER TRUNCATE ON catalog_interaction
FOR EACH STATEMENT EXECUTE FUNCTION recommender_history_changed();

INSERT INTO recommender_userhistory (user_id, generation, packed_generation)
SELECT DISTINCT user_id, 1, 0 FROM catalog_interaction;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS recommender_history_ins ON catalog_interaction;
DROP TRIGGER IF EXISTS recommender_history_del ON catalog_interaction;
DROP TRIGGER IF EXISTS recommender_history_upd ON catalog_interaction;
DROP TRIGGER IF EXISTS recommender_history_trunc ON catalog_interaction;
DROP FUNCTION IF EXISTS recommender_history_changed();
"""


def user_foreign_key(apps, schema_editor) -> None:  # noqa: ANN001
    """The foreign key to the user model's table, ON DELETE CASCADE (see the model)."""
    users = apps.get_model(settings.AUTH_USER_MODEL)._meta
    quote = schema_editor.quote_name
    schema_editor.execute(
        "ALTER TABLE recommender_userhistory ADD CONSTRAINT recommender_userhistory_user_fk"
        f" FOREIGN KEY (user_id) REFERENCES {quote(users.db_table)} ({quote(users.pk.column)})"
        " ON DELETE CASCADE"
    )


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("catalog", "0008_interaction_history_idx"),
        ("recommender", "0005_uservector_candidates"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserHistory",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("generation", models.BigIntegerField(default=1)),
                ("packed_generation", models.BigIntegerField(default=0)),
                ("packed", models.BinaryField(blank=True, null=True)),
            ],
        ),
        migrations.RunPython(user_foreign_key, migrations.RunPython.noop),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
