from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest_client(browser: Client) -> Client:
    assert browser.get("/guest-fn/").json()["is_guest"]
    return browser


@pytest.mark.parametrize("url", ["/registered-fn/", "/registered-cbv/"])
class TestRegisteredUserRequiredPages:
    def test_registered_user_passes(self, url: str, member: Any) -> None:
        client = Client()
        client.force_login(member)
        assert client.get(url).content == b"members only"

    def test_guest_is_sent_to_login(self, url: str, guest_client: Client) -> None:
        response = guest_client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next=%2F{url.strip('/')}%2F"

    def test_anonymous_is_sent_to_login(self, url: str) -> None:
        assert Client().get(url)["Location"].startswith("/accounts/login/?next=")

    @override_settings(ANONAUTH_REGISTER_URL="/signup/")
    def test_register_url_setting(self, url: str, guest_client: Client) -> None:
        assert guest_client.get(url)["Location"].startswith("/signup/?next=")


class TestRegisteredUserRequiredApi:
    def test_registered_user_passes(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        assert client.get("/registered-drf/").json() == {"ok": True}

    def test_guest_gets_403(self, guest_client: Client) -> None:
        response = guest_client.get("/registered-drf/")
        assert response.status_code == 403
        assert response.json()["detail"] == "This endpoint requires a registered account."

    def test_anonymous_is_refused(self) -> None:
        # DRF's default SessionAuthentication has no WWW-Authenticate scheme: 403, not 401.
        response = Client().get("/registered-drf/")
        assert response.status_code == 403
        assert response.json()["detail"] == "Authentication credentials were not provided."


def test_guest_allowed_marks_without_wrapping() -> None:
    from anonauth.decorators import guest_allowed, is_guest_allowed

    def view(request: Any) -> None: ...

    assert guest_allowed(view) is view
    assert is_guest_allowed(view)
    assert not is_guest_allowed(lambda request: None)


class TestTurnedAwayFromAnUnsafeRequest:
    """A guest turned away from a POST (say "Check out") must not be sent back to that
    POST-only URL with a GET after logging in (a 405 page): ``next`` is the page the
    request came from, when it is on this site."""

    def test_next_is_the_referring_page(self, guest_client: Client) -> None:
        response = guest_client.post("/registered-fn/", HTTP_REFERER="http://testserver/cart/?x=1")
        assert response["Location"] == "/accounts/login/?next=%2Fcart%2F%3Fx%3D1"

    @pytest.mark.parametrize("referer", [None, "https://evil.example/cart/"])
    def test_no_next_without_a_referring_page_here(
        self, guest_client: Client, referer: str | None
    ) -> None:
        extra = {} if referer is None else {"HTTP_REFERER": referer}
        assert guest_client.post("/registered-fn/", **extra)["Location"] == "/accounts/login/"
