from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    """Guest metadata (the JSON object a guest signs in with); the "transferred" audit
    event; and one plain btree index per key of ``Guest`` (and for the transfer code's
    digest) instead of a field's ``db_index``/``unique``, which on PostgreSQL also builds
    a ``varchar_pattern_ops`` ("_like") index that no query uses: the keys are only
    compared for equality."""

    dependencies = [("anonauth", "0006_guest_network_key")]

    operations = [
        migrations.AddField(
            model_name="guest",
            name="metadata",
            field=models.JSONField(
                blank=True, db_default={}, default=dict, editable=False, verbose_name="metadata"
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "created"),
                    ("upgraded", "upgraded"),
                    ("linked", "linked"),
                    ("deleted", "deleted"),
                    ("purged", "purged"),
                    ("transferred", "transferred"),
                ],
                max_length=16,
                verbose_name="event",
            ),
        ),
        migrations.AlterField(
            model_name="guest",
            name="creation_key",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="guest",
            name="network_key",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="guest",
            name="session_key",
            field=models.CharField(blank=True, default="", editable=False, max_length=40),
        ),
        migrations.AddConstraint(
            model_name="guest",
            constraint=models.UniqueConstraint(
                fields=("creation_key",), name="anonauth_guest_creation_key"
            ),
        ),
        migrations.AddIndex(
            model_name="guest",
            index=models.Index(fields=["session_key"], name="anonauth_guest_session_key"),
        ),
        migrations.AddIndex(
            model_name="guest",
            index=models.Index(fields=["network_key"], name="anonauth_guest_network_key"),
        ),
        migrations.AlterField(
            model_name="transfercode",
            name="digest",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AddConstraint(
            model_name="transfercode",
            constraint=models.UniqueConstraint(fields=("digest",), name="anonauth_transfer_digest"),
        ),
    ]
