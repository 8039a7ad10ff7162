"""The watcher keeps a contiguous header chain (number, hash, parent hash) for the reorg window instead of
the hashes of the blocks that held transfers. The old rows are sparse and lack parent hashes: they are
dropped, and the first pass after this migration reads the window's headers afresh."""

from django.db import migrations, models


def drop_sparse_blocks(apps, schema_editor):
    apps.get_model("stablepay", "Block").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("stablepay", "0012_payer_screening")]

    operations = [
        migrations.AddField(
            model_name="block",
            name="parent_hash",
            field=models.CharField(blank=True, default="", max_length=66),
        ),
        migrations.RunPython(drop_sparse_blocks, migrations.RunPython.noop),
    ]
