from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client, RequestFactory
from django.utils import timezone

from anonauth.admin import GuestAdmin
from anonauth.guests import create_guest
from anonauth.models import Guest
from anonauth.test import make_registered_user
from tests.purge_helpers import exists, make_guest, make_member
from tests.testapp.models import Invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(
        make_registered_user(email="boss@example.com", is_staff=True, is_superuser=True)
    )
    return client


@pytest.fixture
def two_guests() -> tuple[Any, Any]:
    fresh, stale = create_guest(), create_guest()
    Guest.objects.filter(user=stale).update(last_seen=timezone.now() - timedelta(days=31))
    return fresh, stale


def changelist(client: Client, settings: Any, query: str = "") -> str:
    response = client.get(f"/admin/anonauth/guest/{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_changelist_lists_guests(staff: Client, two_guests: tuple[Any, Any], settings: Any) -> None:
    page = changelist(staff, settings)
    for guest in two_guests:
        assert guest.get_username() in page


def test_stale_filter(staff: Client, two_guests: tuple[Any, Any], settings: Any) -> None:
    fresh, stale = two_guests
    stale_page = changelist(staff, settings, "?stale=yes")
    assert stale.get_username() in stale_page
    assert fresh.get_username() not in stale_page
    active_page = changelist(staff, settings, "?stale=no")
    assert fresh.get_username() in active_page
    assert stale.get_username() not in active_page


def test_search_by_username(staff: Client, two_guests: tuple[Any, Any], settings: Any) -> None:
    fresh, stale = two_guests
    page = changelist(staff, settings, f"?q={fresh.get_username()}")
    assert fresh.get_username() in page
    assert stale.get_username() not in page


def test_guests_are_not_added_by_hand(staff: Client, settings: Any) -> None:
    assert staff.get("/admin/anonauth/guest/add/").status_code == 403


def test_the_admin_login_links_a_guest(browser: Client, settings: Any) -> None:
    """The admin's login is Django's login(): a guest signing in there is linked."""
    from tests.linkapp.models import Note

    guest_id = browser.get("/guest-fn/").json()["id"]
    Note.objects.create(author_id=guest_id, text="from the guest")
    staff_user = make_registered_user(email="boss@example.com", is_staff=True, is_superuser=True)
    response = browser.post(
        "/admin/login/",
        {"username": staff_user.get_username(), "password": "correct-horse-42", "next": "/admin/"},
    )
    assert response.status_code == 302
    assert Note.objects.get().author == staff_user
    assert not Guest.objects.exists()


class TestPurgeAction:
    def test_purges_the_stale_among_the_selected(self, rf: RequestFactory) -> None:
        stale, other_stale, fresh = make_guest(), make_guest(), make_guest(days_ago=1)
        protected = make_guest()
        Invoice.objects.create(customer=protected)
        request = rf.post("/")
        request._messages = CookieStorage(request)  # type: ignore[attr-defined]
        selected = Guest.objects.filter(pk__in=[stale.pk, fresh.pk, protected.pk])

        GuestAdmin(Guest, admin.site).purge_selected(request, selected)

        assert (exists(stale), exists(other_stale), exists(fresh)) == (False, True, True)
        assert exists(protected)
        assert [str(m) for m in request._messages] == [  # type: ignore[attr-defined]
            "Purged 1 of 3 selected guests (only stale ones go).",
            "1 kept: other data protects them (testapp.Invoice.customer).",
        ]

    def test_is_offered_to_those_who_may_delete(self, rf: RequestFactory) -> None:
        request = rf.get("/")
        request.user = make_member(is_staff=True, is_superuser=True)
        assert "purge_selected" in GuestAdmin(Guest, admin.site).get_actions(request)
