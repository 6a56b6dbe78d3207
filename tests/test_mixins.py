from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from anonauth.models import Guest

pytestmark = pytest.mark.django_db

GUEST_ONLY_PAGES = ["/guest-only-fn/", "/guest-only-async/", "/guest-only-cbv/"]


@pytest.mark.parametrize("url", GUEST_ONLY_PAGES)
class TestGuestRequiredPages:
    def test_visitor_becomes_a_guest_and_passes(self, url: str, browser: Client) -> None:
        response = browser.get(url)
        assert response.content == b"guests only"
        assert Guest.objects.count() == 1

    def test_registered_user_is_sent_to_login_redirect(self, url: str, member: Any) -> None:
        client = Client()
        client.force_login(member)
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == "/accounts/profile/"

    def test_refused_visitor_gets_403(self, url: str) -> None:
        response = Client().get(url)  # no cookie: the lazy path refuses
        assert response.status_code == 403
        assert Guest.objects.count() == 0


class TestGuestRequiredDrf:
    def test_visitor_becomes_a_guest(self, browser: Client) -> None:
        assert browser.get("/guest-only-drf/").json() == {"ok": True}
        assert Guest.objects.count() == 1

    def test_registered_user_is_refused(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        response = client.get("/guest-only-drf/")
        assert response.status_code == 403
        assert response.json() == {"detail": "This endpoint is for guest users only."}


class TestGuestAllowedMixin:
    def test_creates_a_guest(self, browser: Client) -> None:
        assert browser.get("/guest-allowed-mixin/").content == b"guest"

    def test_without_cookie_stays_anonymous(self) -> None:
        assert Client().get("/guest-allowed-mixin/").content == b"anonymous"


class TestRegisteredUserRequiredMixin:
    def test_member_passes(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        assert client.get("/registered-mixin/").content == b"members only"

    def test_guest_is_sent_to_login(self, browser: Client) -> None:
        browser.get("/guest-fn/")
        response = browser.get("/registered-mixin/")
        assert response["Location"] == "/accounts/login/?next=%2Fregistered-mixin%2F"
