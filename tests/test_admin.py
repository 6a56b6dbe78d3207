from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import path
from django.utils import timezone

from anonauth.guests import create_guest
from anonauth.models import Guest
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def admin_urls() -> list[Any]:
    from django.contrib import admin

    from tests.urls import urlpatterns

    return [path("admin/", admin.site.urls), *urlpatterns]


class urls:
    urlpatterns = admin_urls()


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user(email="boss@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def two_guests() -> tuple[Any, Any]:
    fresh, stale = create_guest(), create_guest()
    Guest.objects.filter(user=stale).update(last_seen=timezone.now() - timedelta(days=31))
    return fresh, stale


def changelist(client: Client, settings: Any, query: str = "") -> str:
    settings.ROOT_URLCONF = urls
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
    settings.ROOT_URLCONF = urls
    assert staff.get("/admin/anonauth/guest/add/").status_code == 403
