"""``anonauth.test``: the helpers projects use in their own tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.dispatch import Signal
from django.test import Client, override_settings
from django.test.utils import isolate_apps
from django.utils import timezone

from anonauth import signals
from anonauth.guests import is_guest
from anonauth.models import Guest
from anonauth.test import (
    BROWSER_USER_AGENT,
    _identity_fields,
    capture_signal,
    connected,
    guest_client,
    make_guest,
    make_registered_user,
)

pytestmark = pytest.mark.django_db

ping = Signal()


class TestConnected:
    def test_connected_for_the_block_only(self) -> None:
        heard: list[Any] = []
        with connected(ping, lambda sender, **kwargs: heard.append(sender)):
            ping.send(sender="inside")
        ping.send(sender="after")
        assert heard == ["inside"]

    def test_disconnected_when_the_block_raises(self) -> None:
        heard: list[Any] = []
        with (
            pytest.raises(RuntimeError),
            connected(ping, lambda sender, **kwargs: heard.append(sender)),
        ):
            raise RuntimeError("boom")
        ping.send(sender="after")
        assert heard == []
        assert not ping.has_listeners()

    def test_from_one_sender(self) -> None:
        heard: list[Any] = []
        with connected(ping, lambda sender, **kwargs: heard.append(sender), sender=int):
            ping.send(sender=str)
            ping.send(sender=int)
        assert heard == [int]
        assert not ping.has_listeners(int)


class TestCaptureSignal:
    def test_records_sender_signal_and_arguments(self) -> None:
        with capture_signal(ping) as calls:
            ping.send(sender=str, colour="red")
            ping.send(sender=int, colour="blue")
        ping.send(sender=str, colour="after")
        assert calls == [
            {"sender": str, "signal": ping, "colour": "red"},
            {"sender": int, "signal": ping, "colour": "blue"},
        ]

    def test_from_one_sender(self) -> None:
        with capture_signal(ping, sender=int) as calls:
            ping.send(sender=str)
            ping.send(sender=int)
        assert [call["sender"] for call in calls] == [int]

    def test_always_disconnects(self) -> None:
        with pytest.raises(RuntimeError), capture_signal(ping):
            raise RuntimeError("boom")
        assert not ping.has_listeners()

    def test_anonauths_signals_after_commit(self, django_capture_on_commit_callbacks: Any) -> None:
        with (
            capture_signal(signals.guest_created) as calls,
            django_capture_on_commit_callbacks(execute=True),
        ):
            guest = make_guest()
            assert calls == []
        assert calls == [
            {
                "sender": get_user_model(),
                "signal": signals.guest_created,
                "user": guest,
                "request": None,
            }
        ]


class TestMakeRegisteredUser:
    def test_a_registered_user_with_a_password(self) -> None:
        user = make_registered_user()
        stored = get_user_model().objects.get(pk=user.pk)
        assert not is_guest(stored)
        assert stored.check_password("correct-horse-42")
        assert getattr(stored, stored.get_email_field_name()) == "member@example.com"

    def test_chosen_email_password_and_fields(self) -> None:
        user = make_registered_user("boss@example.com", "s3cret-enough", is_staff=True)
        stored = get_user_model().objects.get(pk=user.pk)
        assert stored.check_password("s3cret-enough")
        assert getattr(stored, "is_staff", None) is True
        assert getattr(stored, stored.get_email_field_name()) == "boss@example.com"

    def test_distinct_users(self) -> None:
        make_registered_user("one@example.com")
        make_registered_user("two@example.com")
        assert get_user_model().objects.count() == 2

    @pytest.mark.auth_user_only
    def test_username_from_the_email(self) -> None:
        assert make_registered_user("ada@example.com").get_username() == "ada"
        assert make_registered_user("x@example.com", username="lovelace").get_username() == (
            "lovelace"
        )

    def test_the_username_under_either_model(self) -> None:
        """The email-keyed model (``--ds=tests.settings_email_user``) takes the email."""
        keyed_by_email = get_user_model().USERNAME_FIELD == "email"
        expected = "ada@example.com" if keyed_by_email else "ada"
        assert make_registered_user("ada@example.com").get_username() == expected


@isolate_apps("tests.testapp")
def test_a_model_without_an_email_field_gets_only_a_username() -> None:
    class Handle(AbstractBaseUser):
        handle = models.CharField(max_length=40, unique=True)
        USERNAME_FIELD = "handle"

        class Meta:
            app_label = "testapp"

    assert _identity_fields(Handle, "ada@example.com") == {"handle": "ada"}


class TestMakeGuest:
    def test_a_guest(self) -> None:
        guest = make_guest()
        assert is_guest(guest)
        assert not guest.has_usable_password()
        assert timezone.now() - Guest.objects.get(pk=guest.pk).last_seen < timedelta(minutes=1)

    def test_seen_ago(self) -> None:
        guest = make_guest(seen_ago=timedelta(days=60))
        age = timezone.now() - Guest.objects.get(pk=guest.pk).last_seen
        assert timedelta(days=60) <= age < timedelta(days=60, minutes=1)


def session_user(client: Client) -> Any:
    return get_user_model().objects.get(pk=client.session[SESSION_KEY])


class TestGuestClient:
    def test_a_new_client_signed_in_as_a_guest(self) -> None:
        client = guest_client()
        guest = session_user(client)
        assert is_guest(guest)
        assert client.session.get_expiry_age() == 30 * 24 * 3600  # a guest's session
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == guest.pk

    def test_browses_guest_allowed_views_as_that_guest(self) -> None:
        client = guest_client()
        body = client.get("/guest-fn/").json()
        assert body == {"id": session_user(client).pk, "is_guest": True, "refusal": None}
        assert Guest.objects.count() == 1

    def test_a_given_client_keeps_its_user_agent(self) -> None:
        client = guest_client(Client(HTTP_USER_AGENT="Mozilla/5.0 Safari/605.1.15"))
        assert client.defaults["HTTP_USER_AGENT"] == "Mozilla/5.0 Safari/605.1.15"
        assert is_guest(session_user(client))

    def test_a_client_without_an_agent_gets_a_browsers(self) -> None:
        client = guest_client(Client())
        assert client.defaults["HTTP_USER_AGENT"] == BROWSER_USER_AGENT

    def test_a_client_that_enforces_csrf(self) -> None:
        client = guest_client(Client(enforce_csrf_checks=True))
        assert is_guest(session_user(client))

    @override_settings(CSRF_HEADER_NAME="HTTP_X_XSRF_TOKEN", CSRF_COOKIE_NAME="xsrf")
    def test_the_projects_csrf_names(self) -> None:
        client = guest_client(Client(enforce_csrf_checks=True))
        assert is_guest(session_user(client))

    def test_a_client_that_holds_a_csrf_cookie_already(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.get("/csrf/")
        assert is_guest(session_user(guest_client(client)))

    def test_each_call_a_new_guest(self) -> None:
        first, second = session_user(guest_client()), session_user(guest_client())
        assert first.pk != second.pk

    @override_settings(
        ANONAUTH_RATE_LIMIT="1/m", ANONAUTH_CAPTCHA_VERIFIER="tests.testapp.captcha.verify"
    )
    def test_neither_rate_limited_nor_asked_for_a_captcha(self) -> None:
        guests = [session_user(guest_client()) for _ in range(3)]
        assert len({guest.pk for guest in guests}) == 3
        refused = Client().post("/auth/anonymous/sign-in/")  # the gates still apply to others
        assert refused.json()["code"] == "captcha_failed"

    @override_settings(ANONAUTH_ENABLED=False)
    def test_disabled(self) -> None:
        with pytest.raises(AssertionError, match="403"):
            guest_client()

    def test_a_registered_client_is_refused(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        with pytest.raises(AssertionError, match="409"):
            guest_client(client)
