from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    """A login finds the guest it replaces by the session key the client presented."""

    dependencies = [("anonauth", "0003_auditevent")]

    operations = [
        migrations.AlterField(
            model_name="guest",
            name="session_key",
            field=models.CharField(
                blank=True, db_index=True, default="", editable=False, max_length=40
            ),
        ),
    ]
