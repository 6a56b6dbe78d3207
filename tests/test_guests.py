from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY, authenticate, get_user_model, logout
from django.contrib.auth.hashers import (
    UNUSABLE_PASSWORD_PREFIX,
    UNUSABLE_PASSWORD_SUFFIX_LENGTH,
    make_password,
)
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError
from django.http import HttpRequest
from django.test import RequestFactory, override_settings
from django.utils import timezone
from django.utils.crypto import RANDOM_STRING_CHARS

from anonauth import guests, sessions, signals, state
from anonauth.exceptions import AlreadyAuthenticated, NotGuest
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, capture_signal, connected, guest_client
from tests.testapp import captcha
from tests.testapp.models import Basket

pytestmark = pytest.mark.django_db


def browser_request(method: str = "get", cookies: dict[str, str] | None = None) -> HttpRequest:
    request = getattr(RequestFactory(), method)("/", HTTP_USER_AGENT=BROWSER_USER_AGENT)
    request.COOKIES.update(cookies if cookies is not None else {"csrftoken": "a" * 32})
    request.session = SessionStore()
    request.user = AnonymousUser()
    return request


class TestIsGuest:
    def test_guest(self) -> None:
        assert guests.is_guest(guests.create_guest())

    def test_registered_user(self, member: Any) -> None:
        assert not guests.is_guest(member)

    def test_anonymous_and_unsaved(self) -> None:
        assert not guests.is_guest(AnonymousUser())
        assert not guests.is_guest(get_user_model()())
        assert not guests.is_guest(None)

    def test_cached_on_the_instance(self, django_assert_num_queries: Any) -> None:
        user = get_user_model().objects.get(pk=guests.create_guest().pk)
        with django_assert_num_queries(1):
            assert guests.is_guest(user)
            assert guests.is_guest(user)


class TestCreateGuest:
    def test_a_real_logged_in_user_with_an_unusable_password(self) -> None:
        user = guests.create_guest()
        assert user.pk is not None
        assert user.is_authenticated
        assert not user.is_anonymous
        assert user.is_active
        assert not user.has_usable_password()
        guest = Guest.objects.get(user=user)
        assert guest.creation_key is None
        assert guest.last_seen >= guest.created_at - timedelta(seconds=1)

    def test_sends_guest_created_after_commit(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        request = browser_request()
        with capture_signal(signals.guest_created) as calls:
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                user = guests.create_guest(request=request)
            assert calls == []  # not before the transaction commits
            for callback in callbacks:
                callback()
        assert calls == [
            {
                "sender": type(user),
                "signal": signals.guest_created,
                "user": user,
                "request": request,
            }
        ]

    def test_unique_random_usernames(self) -> None:
        names = {guests.create_guest().get_username() for _ in range(20)}
        assert len(names) == 20

    def test_database_error_leaves_nothing_behind(self) -> None:
        model = get_user_model()
        with override_settings(
            ANONAUTH_USERNAME_GENERATOR="tests.testapp.captcha.scripted_username"
        ):
            captcha.NAMES[:] = ["guest-taken"] * (1 + guests.USERNAME_ATTEMPTS)
            guests.create_guest()
            with pytest.raises(IntegrityError):
                guests.create_guest()
        assert model.objects.count() == 1
        assert Guest.objects.count() == 1

    def test_username_collision_is_retried(self) -> None:
        with override_settings(
            ANONAUTH_USERNAME_GENERATOR="tests.testapp.captcha.scripted_username"
        ):
            captcha.NAMES[:] = ["guest-one", "guest-one", "guest-two"]
            first = guests.create_guest()
            second = guests.create_guest()
        assert first.get_username().split("@")[0] == "guest-one"
        assert second.get_username().split("@")[0] == "guest-two"
        assert captcha.NAMES == []

    @override_settings(ANONAUTH_USERNAME_GENERATOR="tests.testapp.captcha.too_long_username")
    def test_generator_must_respect_max_length(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="longer than"):
            guests.create_guest()
        assert not get_user_model().objects.exists()


def test_a_guest_has_the_unusable_password_django_would_give_it() -> None:
    first, second = guests.create_guest(), guests.create_guest()
    assert not first.has_usable_password()
    assert not authenticate(username=first.get_username(), password="")
    prefix, suffix = first.password[:1], first.password[1:]
    assert prefix == UNUSABLE_PASSWORD_PREFIX
    assert len(suffix) == UNUSABLE_PASSWORD_SUFFIX_LENGTH
    assert set(suffix) <= set(RANDOM_STRING_CHARS)
    assert first.password != second.password
    assert len(make_password(None)) == len(first.password)  # the shape Django gives it


class TestGenerateUsername:
    def test_default_shape(self) -> None:
        name = guests.generate_username(max_length=150)
        assert name.startswith("guest-")
        assert len(name) == 26
        assert name[6:].isalnum()

    def test_short_fields_drop_the_prefix(self) -> None:
        name = guests.generate_username(max_length=10)
        assert len(name) == 10
        assert not name.startswith("guest-")


@pytest.mark.auth_user_only
def test_auth_user_guests_keep_an_empty_email() -> None:
    assert guests.create_guest().email == ""


@pytest.mark.auth_user_only
@override_settings(ANONAUTH_EMAIL_GENERATOR="tests.testapp.generators.scripted_email")
def test_the_email_generator_is_not_asked_when_the_model_needs_no_email() -> None:
    from tests.testapp import generators

    generators.CALLS.clear()
    assert guests.create_guest().email == ""
    assert generators.CALLS == []


class TestGenerateEmail:
    def test_default_shape(self) -> None:
        local, _, domain = guests.generate_email(max_length=254).partition("@")
        assert domain == "guest.invalid"
        assert local.startswith("guest-")
        assert len(local) == 26

    @override_settings(ANONAUTH_EMAIL_DOMAIN="guests.example.com")
    def test_the_domain_setting(self) -> None:
        assert guests.generate_email(max_length=254).endswith("@guests.example.com")

    def test_a_short_field_gets_a_short_local_part(self) -> None:
        email = guests.generate_email(max_length=30)
        assert len(email) <= 30
        assert email.endswith("@guest.invalid")

    @override_settings(ANONAUTH_USERNAME_GENERATOR="tests.testapp.captcha.scripted_username")
    def test_the_local_part_comes_from_the_username_generator(self) -> None:
        captcha.NAMES[:] = ["guest-from-the-username-generator"]
        assert guests.generate_email(max_length=254) == (
            "guest-from-the-username-generator@guest.invalid"
        )


class TestEnsureGuest:
    def test_creates_and_logs_in_keeping_session_data(self) -> None:
        request = browser_request()
        request.session["theme"] = "dark"
        request.session.save()
        old_key = request.session.session_key
        user = guests.ensure_guest(request)
        assert guests.is_guest(user)
        assert request.user == user
        assert request.session[SESSION_KEY] == str(user.pk)
        assert request.session["theme"] == "dark"
        request.session.save()
        assert request.session.session_key != old_key  # a key nobody could have planted
        assert SESSION_KEY not in SessionStore(old_key)  # the old session stays anonymous
        assert request.session.get_expiry_age() == 30 * 24 * 3600

    def test_returns_the_signed_in_user(self, member: Any) -> None:
        request = browser_request()
        request.user = member
        assert guests.ensure_guest(request) is member
        assert not Guest.objects.exists()

    def test_same_cookie_within_the_window_claims_the_same_guest(self) -> None:
        first = guests.ensure_guest(browser_request(cookies={"csrftoken": "c" * 32}))
        again = guests.ensure_guest(browser_request(cookies={"csrftoken": "c" * 32}))
        assert again.pk == first.pk
        assert Guest.objects.count() == 1

    def test_a_cookie_reused_after_the_window_gets_a_new_guest(self) -> None:
        first = guests.ensure_guest(browser_request(cookies={"csrftoken": "d" * 32}))
        Guest.objects.update(created_at=timezone.now() - guests.CLAIM_WINDOW * 2)
        second = guests.ensure_guest(browser_request(cookies={"csrftoken": "d" * 32}))
        assert second.pk != first.pk
        assert Guest.objects.get(user=second).creation_key is None

    def test_different_cookies_get_different_guests(self) -> None:
        one = guests.ensure_guest(browser_request(cookies={"csrftoken": "e" * 32}))
        two = guests.ensure_guest(browser_request(cookies={"csrftoken": "f" * 32}))
        assert one.pk != two.pk


class TestAdmissionGates:
    def refusal(self, request: HttpRequest) -> str | None:
        user = guests.ensure_guest(request)
        refusal = state.of(request).refusal
        assert getattr(request, "anonauth_refusal", None) is refusal  # the deprecated name
        assert user.is_authenticated == (refusal is None)
        return refusal.code if refusal else None

    def test_admitted(self) -> None:
        assert self.refusal(browser_request()) is None

    @override_settings(ANONAUTH_ENABLED=False)
    def test_disabled(self) -> None:
        assert self.refusal(browser_request()) == "disabled"

    @pytest.mark.parametrize("method", ["head", "options"])
    def test_head_and_options(self, method: str) -> None:
        assert self.refusal(browser_request(method)) == "method_refused"

    @pytest.mark.parametrize(
        "agent",
        [
            "",
            "   ",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0)",
            "facebookexternalhit/1.1",
            "curl/8.5.0",
            "Wget/1.21",
            "python-requests/2.32.3",
            "Python-urllib/3.11",
            "python-httpx/0.27",
            "Go-http-client/1.1",
            "Scrapy/2.11 (+https://scrapy.org)",
        ],
    )
    def test_bots_and_http_libraries(self, agent: str) -> None:
        request = browser_request()
        request.META["HTTP_USER_AGENT"] = agent
        assert self.refusal(request) == "user_agent_refused"

    def test_missing_user_agent(self) -> None:
        request = browser_request()
        del request.META["HTTP_USER_AGENT"]
        assert self.refusal(request) == "user_agent_refused"

    @override_settings(ANONAUTH_BLOCKED_USER_AGENTS=[r"firefox"])
    def test_custom_blocklist(self) -> None:
        assert self.refusal(browser_request()) == "user_agent_refused"

    @override_settings(ANONAUTH_BLOCKED_USER_AGENTS=[])
    def test_empty_blocklist_blocks_nothing(self) -> None:
        request = browser_request()
        request.META["HTTP_USER_AGENT"] = "curl/8"
        assert self.refusal(request) is None

    def test_no_cookie(self) -> None:
        assert self.refusal(browser_request(cookies={})) == "no_cookie"

    @override_settings(ANONAUTH_REQUIRE_COOKIE=False)
    def test_cookie_not_required(self) -> None:
        assert self.refusal(browser_request(cookies={})) is None

    @override_settings(ANONAUTH_RATE_LIMIT="2/m")
    def test_rate_limit_per_ip(self) -> None:
        assert [self.refusal(browser_request(cookies={"c": str(i)})) for i in range(3)] == [
            None,
            None,
            "rate_limited",
        ]
        other_ip = browser_request(cookies={"c": "other"})
        other_ip.META["REMOTE_ADDR"] = "10.0.0.9"
        assert self.refusal(other_ip) is None
        assert Guest.objects.count() == 3

    @override_settings(ANONAUTH_RATE_LIMIT=None)
    def test_rate_limit_off(self) -> None:
        assert all(self.refusal(browser_request(cookies={"c": str(i)})) is None for i in range(40))

    @override_settings(ANONAUTH_CAPTCHA_VERIFIER="tests.testapp.captcha.verify")
    def test_captcha(self) -> None:
        assert self.refusal(browser_request()) == "captcha_failed"
        request = browser_request(cookies={"csrftoken": "z" * 32})
        request.META["HTTP_X_CAPTCHA"] = "ok"
        assert self.refusal(request) is None


class TestSignIn:
    def test_new_then_existing(self) -> None:
        request = browser_request()
        user, created = guests.sign_in(request)
        assert created
        assert guests.sign_in(request) == (user, False)

    def test_registered_user_is_refused(self, member: Any) -> None:
        request = browser_request()
        request.user = member
        with pytest.raises(AlreadyAuthenticated):
            guests.sign_in(request)

    def test_api_clients_need_no_cookie_or_browser_agent(self) -> None:
        request = browser_request(cookies={})
        request.META["HTTP_USER_AGENT"] = "okhttp/4.12"
        assert guests.sign_in(request)[1]


class TestDeleteGuest:
    def test_deletes_the_user_and_its_data(self) -> None:
        request = browser_request()
        user = guests.ensure_guest(request)
        Basket.objects.create(owner=user)
        guests.delete_guest(user, request=request)
        assert not get_user_model().objects.filter(pk=user.pk).exists()
        assert not Basket.objects.exists()
        assert not request.user.is_authenticated
        assert SESSION_KEY not in request.session

    def test_registered_users_are_not_deleted(self, member: Any) -> None:
        with pytest.raises(NotGuest):
            guests.delete_guest(member)
        assert get_user_model().objects.filter(pk=member.pk).exists()

    def test_a_user_that_signs_in_otherwise_is_never_deleted(self, member: Any) -> None:
        # A stray Guest row on an account (a raw update, a bug) must not let a sign-out or
        # the delete endpoint take the account, as the purge refuses to.
        Guest.objects.create(user=member)
        with pytest.raises(NotGuest):
            guests.delete_guest(member)
        assert get_user_model().objects.filter(pk=member.pk).exists()


class TestLogout:
    def test_a_guest_that_logs_out_is_deleted(self) -> None:
        request = browser_request("post")  # a GET logout keeps it (test_abuse_purge_link)
        user = guests.ensure_guest(request)
        logout(request)
        assert not get_user_model().objects.filter(pk=user.pk).exists()

    @override_settings(ANONAUTH_DELETE_ON_LOGOUT=False)
    def test_kept_when_disabled(self) -> None:
        request = browser_request()
        user = guests.ensure_guest(request)
        logout(request)
        assert Guest.objects.filter(user=user).exists()

    def test_a_protected_guest_logs_out_and_is_kept(self, caplog: pytest.LogCaptureFixture) -> None:
        """Data that PROTECTs the guest blocks its deletion, never the logout."""
        from tests.testapp.models import Invoice

        client = guest_client()
        guest_id = client.session[SESSION_KEY]
        Invoice.objects.create(customer_id=guest_id)
        response = client.post("/accounts/logout/")
        assert response.status_code == 200  # LogoutView's page: no LOGOUT_REDIRECT_URL here
        assert Guest.objects.filter(user_id=guest_id).exists()
        assert client.get("/auth/anonymous/session/").status_code == 401
        assert "logged out and was kept" in caplog.text

    def test_registered_users_are_untouched(self, member: Any) -> None:
        request = browser_request()
        request.user = member
        logout(request)
        assert get_user_model().objects.filter(pk=member.pk).exists()


class TestTouch:
    def signed_in(self, seen_ago: int) -> HttpRequest:
        request = browser_request()
        guests.ensure_guest(request)
        request.session[sessions.SEEN_SESSION_KEY] = int(time.time()) - seen_ago
        Guest.objects.update(last_seen=timezone.now() - timedelta(days=3))
        return request

    def test_due_after_the_interval(self) -> None:
        request = self.signed_in(seen_ago=3601)
        assert sessions.touch_due(request)
        sessions.touch(request)
        guest = Guest.objects.get()
        assert timezone.now() - guest.last_seen < timedelta(minutes=1)
        assert guest.creation_key is None
        assert not sessions.touch_due(request)

    def test_not_due_within_the_interval(self) -> None:
        assert not sessions.touch_due(self.signed_in(seen_ago=60))

    @override_settings(ANONAUTH_TOUCH_INTERVAL=30)
    def test_interval_setting(self) -> None:
        assert sessions.touch_due(self.signed_in(seen_ago=60))

    def test_not_due_for_an_unread_session(self) -> None:
        request = self.signed_in(seen_ago=9999)
        request.session.accessed = False
        assert not sessions.touch_due(request)

    def test_a_session_whose_guest_is_gone_loses_its_marker(self) -> None:
        request = self.signed_in(seen_ago=9999)
        Guest.objects.all().delete()
        sessions.touch(request)
        assert sessions.SEEN_SESSION_KEY not in request.session


class TestNoPasswordlessLogin:
    """A guest's only credential is its session: no backend logs it in by a name."""

    @pytest.mark.parametrize("password", [None, "", "!", "guest"])
    def test_by_username_or_email(self, password: str | None) -> None:
        user = guests.create_guest()
        model = get_user_model()
        credentials = [
            {"username": user.get_username(), "password": password},
            {model.USERNAME_FIELD: user.get_username(), "password": password},
        ]
        email = getattr(user, model.get_email_field_name(), "")
        if email:
            credentials.append({"email": email, "password": password})
        for given in credentials:
            assert authenticate(RequestFactory().post("/"), **given) is None


def test_a_failing_guest_created_receiver_is_logged_and_harmless(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    with (
        connected(signals.guest_created, broken),
        django_capture_on_commit_callbacks(execute=True),
    ):
        user = guests.create_guest()
    assert Guest.objects.filter(user=user).exists()
    [record] = [r for r in caplog.records if r.name == "anonauth"]
    assert "raised" in record.getMessage()
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "receiver bug"
