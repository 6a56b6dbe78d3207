from __future__ import annotations

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    """Transfer codes: a guest continues on another device (anonauth.transfer)."""

    dependencies = [("anonauth", "0004_guest_session_key_index")]

    operations = [
        migrations.CreateModel(
            name="TransferCode",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(editable=False, max_length=64, unique=True)),
                (
                    "session_key",
                    models.CharField(blank=True, default="", editable=False, max_length=40),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, editable=False, verbose_name="created"
                    ),
                ),
                ("expires_at", models.DateTimeField(db_index=True, verbose_name="expires")),
                (
                    "guest",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="transfer_codes",
                        to="anonauth.guest",
                        verbose_name="guest",
                    ),
                ),
            ],
            options={"verbose_name": "transfer code", "verbose_name_plural": "transfer codes"},
        ),
    ]
