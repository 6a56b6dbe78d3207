"""Continuing on another device: transfer codes (anonauth.transfer, its API and page)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from anonauth import db, transfer
from anonauth.guests import delete_guest
from anonauth.link import link_guest
from anonauth.models import Guest, TransferCode
from anonauth.purge import purge_guests
from anonauth.test import BROWSER_USER_AGENT, guest_client, make_registered_user
from anonauth.upgrade import upgrade_guest
from tests.test_guests_races import race_test
from tests.threads import run_together

pytestmark = pytest.mark.django_db

TRANSFER = "/auth/anonymous/transfer/"
REDEEM = "/auth/anonymous/transfer/redeem/"
ENTER = "/auth/anonymous/transfer/enter/"
SESSION = "/auth/anonymous/session/"
APP_AGENT = "okhttp/4.12"


def csrf(client: Client) -> dict[str, str]:
    return {settings.CSRF_HEADER_NAME: client.cookies[settings.CSRF_COOKIE_NAME].value}


def first_device() -> tuple[Client, Any]:
    """A browser signed in as a new guest, and that guest's id."""
    client = guest_client(Client(enforce_csrf_checks=True))
    return client, int(client.session[SESSION_KEY])


def ask_code(client: Client) -> str:
    response = client.post(TRANSFER, **csrf(client))
    assert response.status_code == 201, response.content
    code: str = response.json()["code"]
    return code


def second_device() -> Client:
    """A browser that has never been here (no cookies yet but the CSRF one)."""
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, enforce_csrf_checks=True)
    client.cookies[settings.CSRF_COOKIE_NAME] = "b" * 32
    return client


def redeem(client: Client, code: str) -> Any:
    return client.post(REDEEM, {"code": code}, content_type="application/json", **csrf(client))


def signed_in_id(client: Client, **headers: Any) -> Any:
    response = client.get(SESSION, **headers)
    return response.json()["user"]["id"] if response.status_code == 200 else None


class TestIssue:
    def test_a_guest_gets_a_short_grouped_code(self) -> None:
        client, guest_id = first_device()
        before = timezone.now()
        body = client.post(TRANSFER, **csrf(client)).json()
        code = body["code"]
        assert len(code) == 9
        assert code[4] == "-"
        assert transfer.normalise(code) is not None
        expires = timezone.datetime.fromisoformat(body["expires_at"])
        assert timedelta(seconds=599) < expires - before <= timedelta(seconds=601)
        assert body["redeem_url"] == f"http://testserver{ENTER}?code={code.replace('-', '')}"
        row = TransferCode.objects.get()
        assert row.guest_id == guest_id
        assert row.digest == transfer.digest(code.replace("-", ""))
        assert code.replace("-", "") not in row.digest  # only the keyed hash is stored
        assert row.session_key == client.session.session_key

    def test_the_digest_is_keyed_by_the_secret_key(self) -> None:
        mine = transfer.digest("ABCDEFGH")
        with override_settings(SECRET_KEY="another-secret-key-" * 3):
            assert transfer.digest("ABCDEFGH") != mine

    def test_a_new_code_replaces_the_old_one_and_expired_ones_go(self) -> None:
        client, _ = first_device()
        other, _ = first_device()
        old = ask_code(client)
        stale = ask_code(other)
        TransferCode.objects.filter(digest=transfer.digest(stale.replace("-", ""))).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        new = ask_code(client)
        assert TransferCode.objects.count() == 1
        assert redeem(second_device(), old).json()["code"] == "invalid_transfer_code"
        assert redeem(second_device(), new).status_code == 200

    def test_a_registered_user_cannot_ask(self) -> None:
        client = Client()
        client.force_login(make_registered_user())
        response = client.post(TRANSFER)
        assert (response.status_code, response.json()["code"]) == (403, "not_guest")
        assert not TransferCode.objects.exists()

    def test_an_anonymous_visitor_cannot_ask(self) -> None:
        response = Client().post(TRANSFER)
        assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")

    def test_not_a_guest_in_the_core_function(self) -> None:
        request = RequestFactory().post(TRANSFER)
        request.user = make_registered_user()
        with pytest.raises(transfer.NotGuest):
            transfer.issue(request)

    @override_settings(ANONAUTH_TRANSFER_RATE_LIMIT="2/h")
    def test_rate_limited_per_guest(self) -> None:
        client, _ = first_device()
        ask_code(client)
        ask_code(client)
        response = client.post(TRANSFER, **csrf(client))
        assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
        assert response.json()["detail"] == str(transfer.RATE_LIMITED_MESSAGE)
        assert int(response["Retry-After"]) >= 1

    @override_settings(ANONAUTH_TRANSFER_RATE_LIMIT="3/h")
    def test_rate_limited_per_address(self) -> None:
        for _ in range(3):
            ask_code(first_device()[0])
        client, _ = first_device()
        assert client.post(TRANSFER, **csrf(client)).status_code == 429

    def test_a_digest_collision_draws_again(self, monkeypatch: pytest.MonkeyPatch) -> None:
        client, _ = first_device()
        other, _ = first_device()
        taken = ask_code(other).replace("-", "")
        drawn = iter(taken + "BBBBBBBB")
        monkeypatch.setattr(transfer.secrets, "choice", lambda alphabet: next(drawn))
        assert ask_code(client) == "BBBB-BBBB"
        assert TransferCode.objects.count() == 2


class TestRedeem:
    def test_the_second_device_is_signed_in_as_the_same_guest(self) -> None:
        first, guest_id = first_device()
        code = ask_code(first)
        second = second_device()
        response = redeem(second, code)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["user"] == {**body["user"], "id": guest_id, "is_guest": True}
        assert body["session_token"] is None  # a browser keeps the cookie
        assert signed_in_id(second) == guest_id
        assert second.session.session_key != first.session.session_key
        assert signed_in_id(first) == guest_id  # the first device stays signed in
        assert Guest.objects.count() == 1
        assert not TransferCode.objects.exists()

    def test_a_redemption_is_an_audit_event(self) -> None:
        from anonauth.models import AuditEvent

        code = ask_code(first_device()[0])
        assert redeem(second_device(), "ABCD-EFGH").status_code == 400
        assert not AuditEvent.objects.filter(kind=AuditEvent.TRANSFERRED).exists()
        assert redeem(second_device(), code).status_code == 200
        assert AuditEvent.objects.filter(kind=AuditEvent.TRANSFERRED).count() == 1

    @override_settings(ANONAUTH_AUDIT=False)
    def test_no_audit_event_with_auditing_off(self) -> None:
        from anonauth.models import AuditEvent

        assert redeem(second_device(), ask_code(first_device()[0])).status_code == 200
        assert not AuditEvent.objects.exists()

    def test_a_code_works_once(self) -> None:
        code = ask_code(first_device()[0])
        assert redeem(second_device(), code).status_code == 200
        again = redeem(second_device(), code)
        assert (again.status_code, again.json()["code"]) == (400, "invalid_transfer_code")

    def test_typing_is_forgiving(self) -> None:
        code = ask_code(first_device()[0])
        typed = " " + code.lower().replace("-", " ") + " "
        assert redeem(second_device(), typed).status_code == 200

    @pytest.mark.parametrize("typed", ["", "ABCD", "ABCD-EFG0", "ABCDEFGHJ", "ÄBCD-EFGH"])
    def test_malformed_codes(self, typed: str) -> None:
        response = redeem(second_device(), typed)
        expected = "invalid" if typed == "" else "invalid_transfer_code"  # "" fails the field
        assert (response.status_code, response.json()["code"]) == (400, expected)
        assert signed_in_id(second_device()) is None

    def test_an_unknown_code(self) -> None:
        first_device()
        response = redeem(second_device(), "ABCD-EFGH")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_transfer_code")
        assert response.json()["detail"]

    def test_an_expired_code_is_dead(self) -> None:
        code = ask_code(first_device()[0])
        TransferCode.objects.update(expires_at=timezone.now())
        response = redeem(second_device(), code)
        assert response.json()["code"] == "invalid_transfer_code"

    @override_settings(ANONAUTH_TRANSFER_CODE_AGE=60)
    def test_the_code_age_setting(self) -> None:
        ask_code(first_device()[0])
        left = TransferCode.objects.get().expires_at - timezone.now()
        assert timedelta(seconds=58) < left <= timedelta(seconds=60)

    def test_the_code_of_an_upgraded_guest_is_dead(self) -> None:
        first, _ = first_device()
        code = ask_code(first)
        upgrade_guest(Guest.objects.get().user, email="ada@example.com", password="x7!Kq9#vLm2")
        assert not TransferCode.objects.exists()  # gone with the Guest row
        assert redeem(second_device(), code).json()["code"] == "invalid_transfer_code"

    def test_the_code_of_a_linked_guest_is_dead(self) -> None:
        first, _ = first_device()
        code = ask_code(first)
        link_guest(Guest.objects.get().user, make_registered_user())
        assert redeem(second_device(), code).json()["code"] == "invalid_transfer_code"

    def test_the_code_of_a_deleted_guest_is_dead(self) -> None:
        first, _ = first_device()
        code = ask_code(first)
        delete_guest(Guest.objects.get().user)
        assert redeem(second_device(), code).json()["code"] == "invalid_transfer_code"

    def test_the_code_of_a_purged_guest_is_dead(self) -> None:
        first, _ = first_device()
        code = ask_code(first)
        Guest.objects.update(last_seen=timezone.now() - timedelta(days=60))
        assert purge_guests().deleted["anonauth.TransferCode"] == 1
        assert not TransferCode.objects.exists()
        assert redeem(second_device(), code).json()["code"] == "invalid_transfer_code"

    def test_a_guest_that_goes_while_the_code_is_read(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An upgrade that commits between reading the code and locking its guest: the
        lock finds no guest any more (the code is refused, nothing is signed in)."""
        code = ask_code(first_device()[0])
        monkeypatch.setattr(db, "lock_guest", lambda pk: False)
        second = second_device()
        assert redeem(second, code).json()["code"] == "invalid_transfer_code"
        assert signed_in_id(second) is None

    def test_a_client_signed_in_as_another_guest_is_refused(self) -> None:
        code = ask_code(first_device()[0])
        other, other_id = first_device()
        response = redeem(other, code)
        assert (response.status_code, response.json()["code"]) == (409, "already_authenticated")
        assert signed_in_id(other) == other_id
        assert TransferCode.objects.exists()  # still usable elsewhere

    def test_a_registered_user_is_refused(self) -> None:
        code = ask_code(first_device()[0])
        client = Client()
        client.force_login(make_registered_user())
        response = client.post(REDEEM, {"code": code}, content_type="application/json")
        assert (response.status_code, response.json()["code"]) == (409, "already_authenticated")

    @override_settings(ANONAUTH_TRANSFER_REDEEM_RATE_LIMIT="3/m")
    def test_guessing_is_rate_limited_and_every_attempt_counts(self) -> None:
        code = ask_code(first_device()[0])
        for guess in ("AAAA-AAAA", "BBBB-BBBB", "nonsense"):
            assert redeem(second_device(), guess).status_code == 400
        response = redeem(second_device(), code)  # the right code, too late
        assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
        assert TransferCode.objects.exists()

    def test_an_app_client_gets_a_session_token(self) -> None:
        first, guest_id = first_device()
        code = ask_code(first)
        app = Client(HTTP_USER_AGENT=APP_AGENT)
        response = app.post(REDEEM, {"code": code}, content_type="application/json")
        token = response.json()["session_token"]
        assert token
        fresh = Client(HTTP_USER_AGENT=APP_AGENT)
        assert signed_in_id(fresh, HTTP_X_SESSION_TOKEN=token) == guest_id

    @override_settings(ANONAUTH_TRANSFER_ENDS_FIRST_SESSION=True)
    def test_the_first_device_can_be_signed_out(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        first, guest_id = first_device()
        code = ask_code(first)
        second = second_device()
        with django_capture_on_commit_callbacks(execute=True):
            assert redeem(second, code).status_code == 200
        assert signed_in_id(first) is None
        assert signed_in_id(second) == guest_id
        assert Guest.objects.get().session_key == second.session.session_key


class TestAfterwards:
    def test_an_upgrade_on_one_device_signs_the_other_out(self) -> None:
        first, guest_id = first_device()
        second = second_device()
        redeem(second, ask_code(first))
        body = {"email": "ada@example.com", "password": "x7!Kq9#vLm2"}
        upgraded = first.post("/auth/anonymous/upgrade/", body, **csrf(first))
        assert upgraded.status_code == 200, upgraded.content
        assert signed_in_id(first) == guest_id
        assert signed_in_id(second) is None  # the auth hash follows the new password


class TestSessionsAndRows:
    def test_a_code_row_names_its_guest_not_its_code(self) -> None:
        client, guest_id = first_device()
        code = ask_code(client).replace("-", "")
        text = str(TransferCode.objects.get())
        assert text.startswith(f"transfer code of {guest_id} until ")
        assert code not in text

    @override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
    def test_cookie_stored_sessions_cannot_be_ended(self) -> None:
        from anonauth import sessions

        sessions.end_sessions(["whatever"])  # nothing server-side to delete; no error

    def test_ending_sessions_deletes_them(self) -> None:
        from anonauth import sessions

        client, _ = first_device()
        key = client.session.session_key
        assert key is not None
        sessions.end_sessions([key, ""])
        assert signed_in_id(client) is None


class TestEnterPage:
    def test_the_link_fills_the_code_in(self) -> None:
        response = second_device().get(ENTER, {"code": "ABCDEFGH"})
        assert response.status_code == 200
        assert b'value="ABCDEFGH"' in response.content
        assert b"csrfmiddlewaretoken" in response.content

    def test_a_browser_redeems_and_is_redirected(self) -> None:
        first, guest_id = first_device()
        code = ask_code(first)
        second = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
        response = second.post(ENTER, {"code": code})
        assert response.status_code == 302
        assert response["Location"] == settings.LOGIN_REDIRECT_URL
        assert signed_in_id(second) == guest_id

    def test_a_wrong_code_shows_the_error(self) -> None:
        response = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).post(ENTER, {"code": "zz"})
        assert response.status_code == 400
        assert b"This transfer code is not valid" in response.content
        assert b'value="zz"' in response.content

    def test_the_page_needs_the_csrf_token(self) -> None:
        response = second_device().post(ENTER, {"code": "ABCD-EFGH"})
        assert response.status_code == 403


@pytest.fixture
def without_segno(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)  # import segno raises ImportError


class TestTemplateTag:
    TAG = Template("{% load anonauth %}{% transfer_code code %}")

    def test_the_code_and_a_qr_code_of_the_redeem_page(self) -> None:
        request = RequestFactory().get("/")
        html = self.TAG.render(Context({"code": "ABCDEFGH", "request": request}))
        assert '<span class="anonauth-transfer-code">ABCD-EFGH</span>' in html
        assert "<svg" in html
        assert f"<title>http://testserver{ENTER}?code=ABCDEFGH</title>" in html

    @pytest.mark.usefixtures("without_segno")
    def test_text_only_without_segno(self) -> None:
        request = RequestFactory().get("/")
        html = self.TAG.render(Context({"code": "ABCD-EFGH", "request": request}))
        assert html == '<span class="anonauth-transfer-code">ABCD-EFGH</span>'

    def test_text_only_outside_a_request_and_escaped(self) -> None:
        html = self.TAG.render(Context({"code": "<b>"}))
        assert html == '<span class="anonauth-transfer-code">&lt;b&gt;</span>'


@race_test
def test_two_redemptions_of_one_code_one_wins() -> None:
    first, guest_id = first_device()
    code = ask_code(first)
    devices = [second_device(), second_device()]
    responses = run_together(*(lambda d=d: redeem(d, code) for d in devices))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 400]
    assert [signed_in_id(d) is not None for d in devices].count(True) == 1
    assert not TransferCode.objects.exists()
    assert Guest.objects.filter(pk=guest_id).exists()
