"""Users' histories kept packed beside a generation the interactions' triggers bump.

The bump is a deferred constraint trigger: it runs when the writing transaction commits, after
all its statements, so the transaction takes the user's state row last and never waits for
anything else while it holds it. (Bumped in the statement, a transaction holding the row while
it waited for another's uncommitted interaction, which waited for the row, deadlocked: a like
and a dismissal of the same item at once.) Each row's event bumps its user once per
transaction: a row this transaction bumped and no reader has stored since is left alone, so a
bulk import costs one upsert per user and a primary-key lookup per row. A user deleted in the
same transaction (their interactions go first) gets no row. Until it commits, a transaction
that changed interactions is marked (a transaction-local setting, set by a statement trigger that
takes no lock): its own reads use the rows and store nothing, since its bumps are still to
come. TRUNCATE bumps everyone at once: a reader that saw a generation before it must not store
rows read after it under that number.
Existing users get a row, so a site that migrates serves them packed after their next list.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

BACKWARD = """
DROP TRIGGER IF EXISTS recommender_history_row ON catalog_interaction;
DROP TRIGGER IF EXISTS recommender_history_dirty ON catalog_interaction;
DROP FUNCTION IF EXISTS recommender_history_changed();
DROP FUNCTION IF EXISTS recommender_history_dirty();
DROP FUNCTION IF EXISTS recommender_history_bump(bigint);
"""


def forward(apps, schema_editor) -> None:  # noqa: ANN001
    """The foreign key to the user model's table, ON DELETE CASCADE (see the model), the
    triggers, and a row for every user with interactions."""
    users = apps.get_model(settings.AUTH_USER_MODEL)._meta
    quote = schema_editor.quote_name
    user_table, user_pk = quote(users.db_table), quote(users.pk.column)
    schema_editor.execute(
        "ALTER TABLE recommender_userhistory ADD CONSTRAINT recommender_userhistory_user_fk"
        f" FOREIGN KEY (user_id) REFERENCES {user_table} ({user_pk}) ON DELETE CASCADE"
    )
    schema_editor.execute(f"""
CREATE OR REPLACE FUNCTION recommender_history_bump(uid bigint) RETURNS void AS $$
BEGIN
  PERFORM 1 FROM recommender_userhistory WHERE user_id = uid
    AND xmin = pg_current_xact_id()::xid AND generation <> packed_generation;
  IF NOT FOUND THEN
    INSERT INTO recommender_userhistory (user_id, generation, packed_generation)
    SELECT uid, 1, 0 WHERE EXISTS (SELECT 1 FROM {user_table} WHERE {user_pk} = uid)
    ON CONFLICT (user_id) DO UPDATE SET generation = recommender_userhistory.generation + 1;
  END IF;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION recommender_history_dirty() RETURNS trigger AS $$
BEGIN
  PERFORM set_config('recsite.history_dirty', '1', true);
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE recommender_userhistory SET generation = generation + 1;
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION recommender_history_changed() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM recommender_history_bump(OLD.user_id);
  ELSE
    PERFORM recommender_history_bump(NEW.user_id);
    IF TG_OP = 'UPDATE' AND OLD.user_id <> NEW.user_id THEN
      PERFORM recommender_history_bump(OLD.user_id);
    END IF;
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER recommender_history_row
AFTER INSERT OR UPDATE OR DELETE ON catalog_interaction
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION recommender_history_changed();

CREATE TRIGGER recommender_history_dirty
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON catalog_interaction
FOR EACH STATEMENT EXECUTE FUNCTION recommender_history_dirty();

INSERT INTO recommender_userhistory (user_id, generation, packed_generation)
SELECT DISTINCT user_id, 1, 0 FROM catalog_interaction;
""")


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
        migrations.RunPython(forward, migrations.RunPython.noop),
        migrations.RunSQL(migrations.RunSQL.noop, BACKWARD),
    ]
