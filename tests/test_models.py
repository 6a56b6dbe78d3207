"""The models' database schema: one plain index per key, and the metadata column."""

from __future__ import annotations

import pytest
from django.db import connection

from anonauth.guests import create_guest
from anonauth.models import Guest, TransferCode

pytestmark = pytest.mark.django_db


def postgresql_indexes(table: str) -> dict[str, str]:
    """``{index name: definition}`` of ``table``, from ``pg_indexes``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("model", "columns"),
    [(Guest, ["creation_key", "session_key", "network_key"]), (TransferCode, ["digest"])],
)
def test_each_key_has_one_btree_index_and_no_like_index(model: type, columns: list[str]) -> None:
    indexes = postgresql_indexes(model._meta.db_table)
    assert not [d for d in indexes.values() if "pattern_ops" in d], indexes
    for column in columns:
        on_column = [d for d in indexes.values() if d.endswith(f"USING btree ({column})")]
        assert len(on_column) == 1, (column, indexes)


def test_the_claim_key_stays_unique() -> None:
    from django.db import IntegrityError, transaction

    first, second = create_guest(), create_guest()
    Guest.objects.filter(user=first).update(creation_key="k" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        Guest.objects.filter(user=second).update(creation_key="k" * 64)


def test_a_guest_starts_with_empty_metadata() -> None:
    assert Guest.objects.get(user=create_guest()).metadata == {}


def test_the_metadata_column_has_a_database_default() -> None:
    """Code that predates the column (a rolling deploy) can still insert guests."""
    user = create_guest()
    Guest.objects.filter(user=user).delete()
    table = connection.ops.quote_name(Guest._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, created_at, last_seen, session_key) "
            "VALUES (%s, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '')",
            [user.pk],
        )
    assert Guest.objects.get(user=user).metadata == {}
