"""Abuse cases of the purge, the logout receiver and linking: a ``DO_NOTHING`` foreign
key, guests that can sign in another way, GET logouts, and per-account link limits."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model, logout
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings
from django_ratelimit import core as ratelimit_core

from anonauth import signals
from anonauth.deletion import Plan
from anonauth.exceptions import InvalidCredentials
from anonauth.guests import ensure_guest
from anonauth.link import link_guest
from anonauth.models import Guest
from anonauth.purge import purge_guests
from anonauth.receivers import delete_guest_on_logout
from anonauth.test import BROWSER_USER_AGENT, capture_signal, guest_client
from tests.linkapp.models import Note
from tests.purge_helpers import exists, make_guest, make_member
from tests.testapp.models import AccessLog, Basket, Invoice


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

    @pytest.mark.django_db(transaction=True)
    def test_a_logout_keeps_the_guest_and_succeeds(self, caplog: pytest.LogCaptureFixture) -> None:
        client = guest_client()
        guest_id = client.session[SESSION_KEY]
        AccessLog.objects.create(visitor_id=guest_id)
        with caplog.at_level(logging.WARNING, logger="anonauth"):
            response = client.post("/accounts/logout/")
        assert response.status_code == 200
        assert Guest.objects.filter(user_id=guest_id).exists()
        assert client.get("/auth/anonymous/session/").status_code == 401
        assert "testapp.AccessLog.visitor" in caplog.text

    @pytest.mark.django_db
    def test_a_logout_racing_a_protecting_row_still_succeeds(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The row appears between the check and the delete: the collector refuses."""
        client = guest_client()
        guest_id = client.session[SESSION_KEY]
        Invoice.objects.create(customer_id=guest_id)
        monkeypatch.setattr(Plan, "blocked", lambda self, ids: {})
        assert client.post("/accounts/logout/").status_code == 200
        assert Guest.objects.filter(user_id=guest_id).exists()
        assert "logged out and was kept" in caplog.text

    @pytest.mark.postgres
    @pytest.mark.django_db(transaction=True)
    def test_on_postgresql(self) -> None:
        logged, plain = make_guest(), make_guest()
        AccessLog.objects.create(visitor=logged)
        result = purge_guests(batch_size=1)
        assert (result.purged, result.blocked_by) == (1, {"testapp.AccessLog.visitor": 1})
        assert (exists(logged), exists(plain)) == (True, False)


@pytest.mark.django_db
class TestSignInAnotherWay:
    """A user that can sign in another way than its guest session is never purged, even
    with a ``Guest`` row pointing at it: a usable password, staff, superuser."""

    def test_they_are_kept_and_reported(self, caplog: pytest.LogCaptureFixture) -> None:
        users = get_user_model()
        with_password, staff, superuser, plain = (make_guest(items=1) for _ in range(4))
        # A queryset update, which sends no post_save: a guest with a password that kept
        # its Guest row (a save through the model ends guest status at once).
        users.objects.filter(pk=with_password.pk).update(password=make_password("its own"))
        users.objects.filter(pk=staff.pk).update(is_staff=True)
        users.objects.filter(pk=superuser.pk).update(is_superuser=True, is_staff=True)

        with caplog.at_level(logging.WARNING, logger="anonauth"):
            result = purge_guests()

        assert (result.purged, result.blocked) == (1, 3)
        assert result.blocked_by == {"usable_password": 1, "staff": 1, "superuser": 1}
        assert result.blocked_ids == [with_password.pk, staff.pk, superuser.pk]
        assert [exists(user) for user in (with_password, staff, superuser, plain)] == [
            True,
            True,
            True,
            False,
        ]
        assert Basket.objects.filter(owner=with_password).exists()
        assert "usable_password" in caplog.text

    def test_a_dry_run_counts_them_the_same(self) -> None:
        kept = make_guest()
        get_user_model().objects.filter(pk=kept.pk).update(password=make_password("its own"))
        make_guest()
        result = purge_guests(dry_run=True)
        assert (result.purged, result.blocked_by) == (1, {"usable_password": 1})

    def test_an_unusable_password_is_a_guest_s(self) -> None:
        guest = make_guest()
        assert not guest.has_usable_password()
        assert purge_guests().purged == 1


def logout_view(request: HttpRequest) -> HttpResponse:
    """A project's own sign-out view, whatever the method."""
    logout(request)
    return HttpResponse("signed out")


def guest_request(method: str) -> tuple[HttpRequest, Any]:
    """A ``method`` request of a signed-in guest (HEAD and OPTIONS get no guest of their
    own: it is made on a GET first)."""
    request = RequestFactory().get("/sign-out/", HTTP_USER_AGENT=BROWSER_USER_AGENT)
    request.COOKIES["csrftoken"] = "a" * 32
    request.session = SessionStore()
    request.user = AnonymousUser()
    guest = ensure_guest(request)
    assert guest.is_authenticated
    request.method = method.upper()
    return request, guest


@pytest.mark.django_db
class TestLogoutOnGet:
    """``ANONAUTH_DELETE_ON_LOGOUT`` deletes only on an unsafe-method logout: a GET (a
    link, an image, a cross-site page) signs the guest out and keeps it for the purge."""

    @pytest.mark.parametrize("method", ["get", "head", "options"])
    def test_a_safe_method_logout_keeps_the_guest(self, method: str) -> None:
        request, guest = guest_request(method)
        Basket.objects.create(owner=guest)
        logout_view(request)
        assert not request.user.is_authenticated
        assert Guest.objects.filter(user_id=guest.pk).exists()
        assert Basket.objects.filter(owner_id=guest.pk).exists()

    def test_a_logout_signal_without_a_request_keeps_it(self) -> None:
        guest = make_guest(days_ago=0)
        delete_guest_on_logout(type(guest), request=None, user=guest)
        assert exists(guest)

    @pytest.mark.parametrize("method", ["post", "delete"])
    def test_an_unsafe_method_logout_deletes_it(self, method: str) -> None:
        request, guest = guest_request(method)
        logout_view(request)
        assert not exists(guest)


LINK = "/auth/anonymous/link/"
MEMBER_PASSWORD = "correct-horse-42"  # anonauth.test.make_registered_user's


def guest_with_note() -> tuple[Client, Any]:
    """A browser signed in as a guest that wrote a note; and the guest's id."""
    client = guest_client()
    guest_id = client.session[SESSION_KEY]
    Note.objects.create(author_id=guest_id, text="the guest's")
    return client, guest_id


def still_the_guest_s(guest_id: Any) -> bool:
    return Guest.objects.filter(user_id=guest_id).exists() and (
        Note.objects.get().author_id == int(guest_id)
    )


@pytest.mark.django_db
class TestInactiveAccount:
    """A guest is never linked into an account that cannot log in: it would lose its
    data and its session to an account nobody can use."""

    @pytest.fixture
    def inactive(self) -> Any:
        return make_member(is_active=False)

    def test_link_guest_refuses(self, inactive: Any) -> None:
        guest = make_guest(days_ago=0)
        Note.objects.create(author=guest, text="the guest's")
        with capture_signal(signals.guest_linking) as linking, pytest.raises(InvalidCredentials):
            link_guest(guest, inactive)
        assert linking == []
        assert still_the_guest_s(guest.pk)

    @override_settings(
        AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.AllowAllUsersModelBackend"]
    )
    def test_a_login_of_an_inactive_user_links_nothing(self, inactive: Any) -> None:
        """A backend that lets inactive users in: the project's ``login()`` goes on, the
        guest is not linked into the account."""
        client, guest_id = guest_with_note()
        response = client.post(
            "/sync-login/", {"username": inactive.get_username(), "password": MEMBER_PASSWORD}
        )
        assert response.json()["id"] == inactive.pk
        assert still_the_guest_s(guest_id)

    @override_settings(
        AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.AllowAllUsersModelBackend"]
    )
    def test_the_link_endpoint_refuses(self, inactive: Any) -> None:
        client, guest_id = guest_with_note()
        response = client.post(
            LINK, {"login": inactive.get_username(), "password": MEMBER_PASSWORD}
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == int(guest_id)
        assert still_the_guest_s(guest_id)


def addresses() -> Iterator[str]:
    """A fresh client address each time: a botnet, so the per-IP limit never applies."""
    return (f"203.0.113.{n}" for n in itertools.count(1))


def link_attempt(client: Client, login: str, password: str, address: str) -> tuple[int, str]:
    response = client.post(LINK, {"login": login, "password": password}, REMOTE_ADDR=address)
    return response.status_code, response.json().get("code", "")


@pytest.mark.django_db
class TestPerAccountLinkLimit:
    """``link/`` counts failed passwords per account (``ANONAUTH_LINK_RATE_LIMIT``, 5/m),
    whatever the address: a brute force spread over many addresses stops too."""

    @pytest.fixture(autouse=True)
    def _one_window(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """All attempts in one rate-limit window: django-ratelimit's windows are aligned
        to the clock, and a minute boundary between two attempts would reset the count."""
        now = time.time()
        monkeypatch.setattr(ratelimit_core.time, "time", lambda: now)

    def test_the_sixth_wrong_password_from_a_sixth_address_is_refused(self) -> None:
        owner = make_member()
        client, guest_id = guest_with_note()
        ips = addresses()
        codes = [link_attempt(client, owner.get_username(), "guess", next(ips)) for _ in range(6)]
        assert codes == [(400, "invalid_credentials")] * 5 + [(429, "rate_limited")]
        # the right password too, until the window passes
        assert link_attempt(client, owner.get_username(), MEMBER_PASSWORD, next(ips)) == (
            429,
            "rate_limited",
        )
        assert still_the_guest_s(guest_id)

    def test_the_count_is_per_login_whatever_its_case(self) -> None:
        owner = make_member()
        client, _ = guest_with_note()
        ips = addresses()
        email = str(owner.email)
        logins = [email, email.upper(), email.title(), f" {email}", email, email.upper()]
        codes = [link_attempt(client, login, "guess", next(ips))[1] for login in logins]
        assert codes == ["invalid_credentials"] * 5 + ["rate_limited"]

    def test_other_accounts_are_not_affected(self) -> None:
        owner, other = make_member(), make_member()
        client, _ = guest_with_note()
        ips = addresses()
        for _ in range(6):
            link_attempt(client, owner.get_username(), "guess", next(ips))
        assert link_attempt(client, other.get_username(), MEMBER_PASSWORD, next(ips)) == (200, "")
        assert Note.objects.get().author_id == other.pk

    def test_after_the_window_the_right_password_links(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        owner = make_member()
        client, _ = guest_with_note()
        ips = addresses()
        for _ in range(6):
            link_attempt(client, owner.get_username(), "guess", next(ips))
        later = time.time() + 61
        monkeypatch.setattr(ratelimit_core.time, "time", lambda: later)
        assert link_attempt(client, owner.get_username(), MEMBER_PASSWORD, next(ips)) == (200, "")

    def test_successes_are_not_counted(self) -> None:
        owner = make_member()
        ips = addresses()
        for _ in range(6):
            client, _ = guest_with_note()
            assert link_attempt(client, owner.get_username(), MEMBER_PASSWORD, next(ips))[0] == 200
            Note.objects.all().delete()

    @override_settings(ANONAUTH_LINK_RATE_LIMIT=None)
    def test_no_rate_no_per_account_limit(self) -> None:
        owner = make_member()
        client, _ = guest_with_note()
        ips = addresses()
        login = owner.get_username()
        codes = {link_attempt(client, login, "guess", next(ips))[1] for _ in range(7)}
        assert codes == {"invalid_credentials"}

    @override_settings(ANONAUTH_LINK_RATE_LIMIT="2/m")
    def test_the_setting_sets_the_per_account_count(self) -> None:
        owner = make_member()
        client, _ = guest_with_note()
        ips = addresses()
        codes = [
            link_attempt(client, owner.get_username(), "guess", next(ips))[1] for _ in range(3)
        ]
        assert codes == ["invalid_credentials", "invalid_credentials", "rate_limited"]


@pytest.mark.django_db(transaction=True)
class TestLinkKeepsWhatProtectsTheGuest:
    """A relation the link does not move (``ANONAUTH_LINK_EXCLUDE``) that protects the
    guest: the link fails cleanly (``deletion_blocked``), before anything is committed,
    and the guest keeps its data."""

    @pytest.mark.parametrize(
        ("label", "make_row"),
        [
            ("testapp.AccessLog.visitor", lambda pk: AccessLog.objects.create(visitor_id=pk)),
            ("testapp.Invoice.customer", lambda pk: Invoice.objects.create(customer_id=pk)),
        ],
    )
    def test_the_link_endpoint_refuses(self, label: str, make_row: Any) -> None:
        owner = make_member()
        client, guest_id = guest_with_note()
        make_row(guest_id)
        with override_settings(ANONAUTH_LINK_EXCLUDE=[label]):
            response = client.post(
                LINK, {"login": owner.get_username(), "password": MEMBER_PASSWORD}
            )
        assert (response.status_code, response.json()["code"]) == (409, "deletion_blocked")
        assert still_the_guest_s(guest_id)
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == int(guest_id)


@pytest.mark.django_db(transaction=True)
def test_a_guest_that_a_do_nothing_row_protects_cannot_delete_itself() -> None:
    """``POST delete/`` of such a guest answered 503 ``unavailable`` (the constraint
    failed at the commit): it is a 409 ``deletion_blocked`` and the guest is kept."""
    from tests.testapp.models import AccessLog

    client = guest_client()
    guest_id = client.get("/auth/anonymous/session/").json()["user"]["id"]
    AccessLog.objects.create(visitor_id=guest_id)
    response = client.post(
        "/auth/anonymous/delete/", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )
    assert response.status_code == 409
    assert response.json()["code"] == "deletion_blocked"
    assert Guest.objects.filter(user_id=guest_id).exists()
