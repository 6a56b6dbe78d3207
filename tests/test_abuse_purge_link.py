"""Abuse cases of the purge, the logout receiver and linking: a ``DO_NOTHING`` foreign
key, guests that can sign in another way, GET logouts, and per-account link limits."""

from __future__ import annotations

import pytest
from django.db import connection

from anonauth.purge import purge_guests
from tests.purge_helpers import exists, make_guest
from tests.testapp.models import AccessLog, Basket


class TestDoNothing:
    """A ``DO_NOTHING`` foreign key with its constraint keeps the guest, like ``PROTECT``:
    deleting it would break the constraint at the batch's commit and fail every run."""

    @pytest.mark.django_db(transaction=True)
    def test_a_do_nothing_row_keeps_its_guest_and_the_others_go(self) -> None:
        logged, plain, other = make_guest(items=1), make_guest(items=1), make_guest()
        AccessLog.objects.create(visitor=logged)

        result = purge_guests()

        assert (result.purged, result.blocked) == (2, 1)
        assert result.blocked_by == {"testapp.AccessLog.visitor": 1}
        assert result.blocked_ids == [logged.pk]
        assert (exists(logged), exists(plain), exists(other)) == (True, False, False)
        assert Basket.objects.filter(owner=logged).exists()
        # and the next run does not fail either
        assert (purge_guests().purged, AccessLog.objects.count()) == (0, 1)

    @pytest.mark.django_db
    def test_the_constraint_holds_at_the_end(self) -> None:
        AccessLog.objects.create(visitor=make_guest())
        result = purge_guests()
        connection.check_constraints()
        assert result.blocked_by == {"testapp.AccessLog.visitor": 1}

    @pytest.mark.postgres
    @pytest.mark.django_db(transaction=True)
    def test_on_postgresql(self) -> None:
        logged, plain = make_guest(), make_guest()
        AccessLog.objects.create(visitor=logged)
        result = purge_guests(batch_size=1)
        assert (result.purged, result.blocked_by) == (1, {"testapp.AccessLog.visitor": 1})
        assert (exists(logged), exists(plain)) == (True, False)
