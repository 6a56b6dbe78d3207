from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT

pytestmark = pytest.mark.django_db

GUEST_ONLY_PAGES = [
    "/guest-only-fn/",
    "/guest-only-async/",
    "/guest-only-cbv/",
    "/guest-only-async-cbv/",
]


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


@pytest.mark.parametrize("url", ["/guest-only-async/", "/guest-only-async-cbv/"])
class TestGuestRequiredOnTheAsyncStack:
    """The async function view and the async class-based view through the ASGI handler."""

    def test_visitor_becomes_a_guest_and_stays_one(self, url: str) -> None:
        async_to_sync(self.visit_twice)(url)
        assert Guest.objects.count() == 1

    def test_registered_user_is_sent_to_login_redirect(self, url: str, member: Any) -> None:
        client = AsyncClient()
        client.force_login(member)
        response = async_to_sync(client.get)(url)
        assert response.status_code == 302
        assert response["Location"] == "/accounts/profile/"
        assert Guest.objects.count() == 0

    async def visit_twice(self, url: str) -> None:
        client = AsyncClient()
        client.cookies["seen"] = "1"
        for _ in range(2):
            response = await client.get(url, headers={"user-agent": BROWSER_USER_AGENT})
            assert response.status_code == 200
            assert response.content == b"guests only"


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
