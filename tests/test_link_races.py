"""Concurrent links on PostgreSQL: no row lost, none duplicated."""

from __future__ import annotations

from typing import Any

import pytest

from anonauth import link
from anonauth.exceptions import NotGuest
from anonauth.guests import create_guest
from anonauth.models import Guest
from anonauth.test import make_registered_user
from tests.linkapp.models import Note
from tests.threads import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOTES = 50


def guest_with_notes() -> Any:
    guest = create_guest()
    Note.objects.bulk_create(Note(author=guest, text=f"n{i}") for i in range(NOTES))
    return guest


def test_the_same_guest_linked_twice_at_once() -> None:
    guest, member = guest_with_notes(), make_registered_user()
    results = run_together(
        lambda: link.link_guest(guest, member), lambda: link.link_guest(guest, member)
    )
    linked = [r for r in results if isinstance(r, link.LinkResult)]
    refused = [r for r in results if isinstance(r, NotGuest)]
    assert (len(linked), len(refused)) == (1, 1), results
    assert linked[0].moved == {"linkapp.Note.author": NOTES}
    assert Note.objects.filter(author=member).count() == NOTES
    assert Note.objects.count() == NOTES
    assert not Guest.objects.exists()


def test_one_guest_linked_into_two_accounts_at_once() -> None:
    guest = guest_with_notes()
    alice, bob = make_registered_user("alice@example.com"), make_registered_user("bob@example.com")
    results = run_together(
        lambda: link.link_guest(guest, alice), lambda: link.link_guest(guest, bob)
    )
    assert sum(isinstance(r, link.LinkResult) for r in results) == 1, results
    owners = set(Note.objects.values_list("author_id", flat=True))
    assert len(owners) == 1
    assert owners <= {alice.pk, bob.pk}
    assert Note.objects.count() == NOTES


def test_a_guest_deleted_while_being_linked() -> None:
    """The real delete and a link race for one guest: whoever takes the guest's locks
    first (the user row, then the Guest row) wins; the other finds no guest."""
    from anonauth.guests import delete_guest

    guest, member = guest_with_notes(), make_registered_user()
    results = run_together(lambda: link.link_guest(guest, member), lambda: delete_guest(guest))
    notes = Note.objects.count()
    if isinstance(results[0], link.LinkResult):
        assert isinstance(results[1], NotGuest), results
        assert Note.objects.filter(author=member).count() == notes == NOTES
    else:
        assert isinstance(results[0], NotGuest), results
        assert results[1] is None
        assert notes == 0  # the guest went with its data; nothing reached the account
    assert not Guest.objects.exists()


def test_a_stale_guest_purged_while_being_linked() -> None:
    """The real purge and a link race for one stale guest: all or nothing, either way."""
    from datetime import timedelta

    from django.utils import timezone

    from anonauth.purge import purge_guests

    guest, member = guest_with_notes(), make_registered_user()
    Guest.objects.filter(user_id=guest.pk).update(last_seen=timezone.now() - timedelta(days=90))

    results = run_together(lambda: link.link_guest(guest, member), purge_guests)
    linked, purge = results
    assert not isinstance(purge, Exception), purge
    if isinstance(linked, link.LinkResult):
        assert purge.purged == 0  # the locked guest was skipped
        assert Note.objects.filter(author=member).count() == NOTES
    else:
        assert isinstance(linked, NotGuest), linked
        assert purge.purged == 1
        assert not Note.objects.exists()  # purged with its guest, none reached the account
    assert Note.objects.count() in (0, NOTES)
    assert not Guest.objects.exists()
