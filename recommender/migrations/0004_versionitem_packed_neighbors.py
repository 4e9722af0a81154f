from django.db import migrations, models


class Migration(migrations.Migration):
    """Neighbour lists as packed binary arrays (no cast exists from bigint[] to bytea, so the
    columns are recreated; neighbour rows are rebuilt by the next training run)."""

    dependencies = [
        ("recommender", "0003_item_embedding"),
    ]

    operations = [
        migrations.RemoveField(model_name="versionitem", name="neighbors"),
        migrations.RemoveField(model_name="versionitem", name="weights"),
        migrations.AddField(
            model_name="versionitem",
            name="neighbors",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="versionitem",
            name="weights",
            field=models.BinaryField(blank=True, null=True),
        ),
    ]
