"""Guest metadata (``anonauth.metadata``): validated, stored in the creation's INSERT,
shown by ``session/`` and the admin, handed to the upgrade and link receivers."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from anonauth import metadata, signals
from anonauth.exceptions import MetadataInvalid, MetadataTooDeep, MetadataTooLarge
from anonauth.guests import create_guest
from anonauth.link import link_guest
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, capture_signal, make_registered_user
from anonauth.upgrade import upgrade_guest
from tests.testapp import policy_hooks

pytestmark = pytest.mark.django_db

SIGN_IN = "/auth/anonymous/sign-in/"
SESSION = "/auth/anonymous/session/"
LAZY = "/guest-fn/"
CAMPAIGN_HOOK = "tests.testapp.policy_hooks.campaign"
PASSWORD = "correct-horse-42"


def sign_in(client: Client, body: Any, **extra: Any) -> Any:
    return client.post(SIGN_IN, json.dumps(body), content_type="application/json", **extra)


def browser(**headers: Any) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, **headers)
    client.cookies["seen"] = "1"
    return client


def nothing_created() -> None:
    assert not get_user_model().objects.exists()
    assert not Guest.objects.exists()
    assert not Session.objects.exists()


class TestClean:
    @pytest.mark.parametrize(
        "value",
        [
            {},
            {"utm_campaign": "spring", "n": 3, "x": 1.5, "ok": True, "none": None},
            {"a": {"b": [1, "two", None]}},
            {"ü": "ünïcödé ✓"},
            {"k" * metadata.MAX_KEY_LENGTH: ""},
        ],
    )
    def test_json_objects_are_kept(self, value: dict[str, Any]) -> None:
        assert metadata.clean(value) == value

    def test_none_is_no_metadata(self) -> None:
        assert metadata.clean(None) == {}

    @pytest.mark.parametrize(
        "value",
        [
            [1],
            "text",
            3,
            {"": 1},
            {"k" * (metadata.MAX_KEY_LENGTH + 1): 1},
            {1: "an int key"},
            {"nul\x00": 1},
            {"a": "nul\x00"},
            {"a": ["nul\x00"]},
            {"a": "\ud800"},
            {"a": float("nan")},
            {"a": float("inf")},
            {"a": (1, 2)},
            {"a": {1, 2}},
            {"a": object()},
        ],
    )
    def test_anything_else_is_invalid(self, value: Any) -> None:
        with pytest.raises(MetadataInvalid) as raised:
            metadata.clean(value)
        assert raised.value.code == "metadata_invalid"

    def test_nesting_is_capped_at_three_levels(self) -> None:
        assert metadata.clean({"a": {"b": {"c": 1}}})
        assert metadata.clean({"a": [[1]]})
        with pytest.raises(MetadataTooDeep, match="at most 3 levels") as raised:
            metadata.clean({"a": {"b": {"c": [1]}}})
        assert raised.value.code == "metadata_too_deep"

    @override_settings(ANONAUTH_METADATA_MAX_DEPTH=1)
    def test_the_depth_setting(self) -> None:
        assert metadata.clean({"a": 1})
        with pytest.raises(MetadataTooDeep, match="at most 1 level deep"):
            metadata.clean({"a": []})

    def test_a_self_containing_object_is_refused(self) -> None:
        value: dict[str, Any] = {}
        value["again"] = value
        with pytest.raises(MetadataInvalid):
            metadata.clean(value)

    def test_the_size_is_compact_utf8_json(self) -> None:
        # {"a":"..."} is 8 bytes around the text; "é" is 2 bytes in UTF-8.
        assert metadata.encode({"a": "é"}) == '{"a":"é"}'.encode()
        at_cap = {"a": "x" * (1024 - 8)}
        assert metadata.clean(at_cap) == at_cap
        with pytest.raises(MetadataTooLarge, match="at most 1024 bytes") as raised:
            metadata.clean({"a": "é" * 509})  # 1026 bytes, 517 characters
        assert raised.value.code == "metadata_too_large"

    @override_settings(ANONAUTH_METADATA_MAX_BYTES=None)
    def test_none_lifts_the_size_cap(self) -> None:
        assert metadata.clean({"a": "x" * 100_000})
        with pytest.raises(MetadataInvalid):  # the other rules still hold
            metadata.clean({"a": "\x00"})

    @override_settings(ANONAUTH_METADATA_MAX_BYTES=0)
    def test_zero_accepts_no_metadata(self) -> None:
        assert metadata.clean({}) == {}
        assert metadata.clean(None) == {}
        with pytest.raises(MetadataTooLarge, match="at most 0 bytes"):
            metadata.clean({"a": 1})


class TestSignIn:
    def test_metadata_is_stored_with_the_new_guest_and_shown(self) -> None:
        client = Client()
        sent = {"utm_campaign": "spring", "ab": ["b"]}
        response = sign_in(client, {"metadata": sent})
        assert response.status_code == 201
        assert response.json()["user"]["metadata"] == sent
        assert Guest.objects.get().metadata == sent
        assert client.get(SESSION).json()["user"]["metadata"] == sent

    @pytest.mark.parametrize("body", [{}, {"metadata": None}, {"other": 1}])
    def test_no_metadata_is_an_empty_object(self, body: dict[str, Any]) -> None:
        response = sign_in(Client(), body)
        assert response.status_code == 201
        assert response.json()["user"]["metadata"] == {}
        assert Guest.objects.get().metadata == {}

    def test_an_empty_body_still_signs_in(self) -> None:
        assert Client().post(SIGN_IN).status_code == 201

    def test_the_metadata_is_written_in_the_guests_insert(self) -> None:
        with CaptureQueriesContext(connection) as queries:
            assert sign_in(Client(), {"metadata": {"campaign": "spring"}}).status_code == 201
        writes = "\n".join(
            q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "WITH"))
        )  # one INSERT per row, or one statement of them all (PostgreSQL: anonauth.inserts)
        rows = re.findall(r'INSERT INTO "(\w+)" \(([^)]*)\)', writes)
        tables = [table for table, _ in rows]
        user_table = get_user_model()._meta.db_table
        expected = [user_table, "anonauth_guest", "django_session", "anonauth_auditevent"]
        assert sorted(tables) == sorted(expected)  # user, Guest, session, audit: no UPDATE
        assert '"metadata"' in dict(rows)["anonauth_guest"]
        assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        commits = [q for q in queries.captured_queries if q["sql"] == "COMMIT"]
        assert len(commits) <= 1

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"metadata": [1]}, "metadata_invalid"),
            ({"metadata": "campaign=spring"}, "metadata_invalid"),
            ({"metadata": {"": 1}}, "metadata_invalid"),
            ({"metadata": {"a": "\u0000"}}, "metadata_invalid"),
            ({"metadata": {"a": {"b": {"c": {}}}}}, "metadata_too_deep"),
            ({"metadata": {"a": "x" * 1100}}, "metadata_too_large"),
            ([{"metadata": {}}], "invalid"),
        ],
    )
    def test_bad_metadata_is_a_400_and_creates_nothing(self, body: Any, code: str) -> None:
        response = sign_in(Client(), body)
        assert (response.status_code, response.json()["code"]) == (400, code)
        assert response.json()["detail"]
        nothing_created()

    def test_a_lone_surrogate_is_a_400(self) -> None:
        body = '{"metadata": {"a": "\\ud800"}}'  # valid JSON, not encodable as UTF-8
        response = Client().post(SIGN_IN, body, content_type="application/json")
        assert (response.status_code, response.json()["code"]) == (400, "metadata_invalid")
        nothing_created()

    def test_a_form_cannot_carry_metadata(self) -> None:
        response = Client().post(SIGN_IN, {"metadata": '{"a": 1}'})
        assert (response.status_code, response.json()["code"]) == (400, "metadata_invalid")
        nothing_created()

    def test_a_signed_in_guest_keeps_its_metadata_and_nothing_is_written(self) -> None:
        client = Client()
        sign_in(client, {"metadata": {"campaign": "first"}})
        with CaptureQueriesContext(connection) as plain:
            assert sign_in(client, {}).status_code == 200
        with CaptureQueriesContext(connection) as queries:
            response = sign_in(client, {"metadata": {"campaign": "second"}})
        assert response.status_code == 200
        assert response.json()["user"]["metadata"] == {"campaign": "first"}
        assert Guest.objects.get().metadata == {"campaign": "first"}
        assert len(queries.captured_queries) == len(plain.captured_queries)
        writes = ("INSERT", "UPDATE", "DELETE")
        assert not [q for q in queries.captured_queries if q["sql"].startswith(writes)]

    def test_a_signed_in_guests_bad_metadata_is_still_refused(self) -> None:
        client = Client()
        sign_in(client, {})
        response = sign_in(client, {"metadata": [1]})
        assert (response.status_code, response.json()["code"]) == (400, "metadata_invalid")

    def test_a_registered_user_is_refused_as_before(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        response = sign_in(client, {"metadata": {"a": 1}})
        assert (response.status_code, response.json()["code"]) == (409, "already_authenticated")
        assert client.get(SESSION).json()["user"]["metadata"] is None


class TestBeforeCreateHook:
    @pytest.fixture(autouse=True)
    def _hook(self, settings: Any) -> None:
        settings.ANONAUTH_BEFORE_CREATE = CAMPAIGN_HOOK
        policy_hooks.SEEN.clear()

    def test_the_lazy_path_stores_what_the_hook_returns(self) -> None:
        client = browser()
        assert client.get(f"{LAZY}?utm_campaign=spring").json()["is_guest"]
        assert Guest.objects.get().metadata == {"campaign": "spring"}
        assert client.get(SESSION).json()["user"]["metadata"] == {"campaign": "spring"}

    def test_the_hook_sees_and_can_extend_the_clients_metadata(self) -> None:
        response = Client().post(
            f"{SIGN_IN}?utm_campaign=spring",
            json.dumps({"metadata": {"ab": "b"}}),
            content_type="application/json",
        )
        assert response.status_code == 201
        assert Guest.objects.get().metadata == {"ab": "b", "campaign": "spring"}

    def test_returning_none_keeps_the_clients_metadata(self) -> None:
        assert sign_in(Client(), {"metadata": {"ab": "b"}}).status_code == 201
        assert Guest.objects.get().metadata == {"ab": "b"}
        assert browser().get(LAZY).json()["is_guest"]
        assert Guest.objects.filter(metadata={}).count() == 1

    @override_settings(ANONAUTH_BEFORE_CREATE="tests.testapp.policy_hooks.allows")
    def test_returning_anything_else_only_allows(self) -> None:
        assert sign_in(Client(), {"metadata": {"ab": "b"}}).status_code == 201
        assert Guest.objects.get().metadata == {"ab": "b"}

    def test_the_hooks_metadata_is_checked_too(self) -> None:
        response = Client().post(f"{SIGN_IN}?utm_campaign={'x' * 1100}")
        assert (response.status_code, response.json()["code"]) == (503, "before_create_failed")
        nothing_created()

    @override_settings(ANONAUTH_BEFORE_CREATE="tests.testapp.policy_hooks.unstorable")
    def test_unstorable_metadata_from_the_hook_fails_closed(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.ERROR, logger="anonauth"):
            refusal = browser().get(LAZY).json()["refusal"]
        assert refusal == "before_create_failed"
        assert "returned invalid metadata" in caplog.text
        assert not Guest.objects.exists()

    def test_create_guest_does_not_ask_the_hook(self) -> None:
        assert create_guest(metadata={"imported": True}).anonauth_guest.metadata == {
            "imported": True
        }
        assert policy_hooks.SEEN == []


class TestCreateGuest:
    def test_metadata_is_validated_and_stored(self) -> None:
        guest = create_guest(metadata={"source": "import"})
        assert Guest.objects.get(user=guest).metadata == {"source": "import"}
        with pytest.raises(MetadataTooDeep):
            create_guest(metadata={"a": {"b": {"c": [1]}}})
        assert Guest.objects.count() == 1


class TestReceivers:
    """Every path that sends guest_upgraded, guest_linking or guest_linked hands the
    receivers the guest's metadata as it was (the Guest row is gone afterwards)."""

    METADATA = {"campaign": "spring"}

    def test_upgrade_in_python(self, django_capture_on_commit_callbacks: Any) -> None:
        guest = create_guest(metadata=self.METADATA)
        with (
            capture_signal(signals.guest_upgraded) as calls,
            django_capture_on_commit_callbacks(execute=True),
        ):
            upgrade_guest(guest, email="ada@example.com", password=PASSWORD)
        assert [call["metadata"] for call in calls] == [self.METADATA]

    def test_upgrade_through_the_api(self, django_capture_on_commit_callbacks: Any) -> None:
        client = Client()
        sign_in(client, {"metadata": self.METADATA})
        body = {"email": "ada@example.com", "password": PASSWORD}
        with (
            capture_signal(signals.guest_upgraded) as calls,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = client.post(
                "/auth/anonymous/upgrade/", json.dumps(body), content_type="application/json"
            )
        assert response.status_code == 200
        assert response.json()["user"]["metadata"] is None  # no longer a guest
        assert [(c["method"], c["metadata"]) for c in calls] == [("password", self.METADATA)]

    def test_a_password_set_another_way(self, django_capture_on_commit_callbacks: Any) -> None:
        guest = create_guest(metadata=self.METADATA)
        with (
            capture_signal(signals.guest_upgraded) as calls,
            django_capture_on_commit_callbacks(execute=True),
        ):
            guest.set_password(PASSWORD)
            guest.save()
        assert [(c["method"], c["metadata"]) for c in calls] == [("password_set", self.METADATA)]

    def test_a_password_set_on_a_fresh_instance(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        """The flag is not cached on a fresh instance: the metadata is read from the row."""
        user = get_user_model().objects.get(pk=create_guest(metadata=self.METADATA).pk)
        with (
            capture_signal(signals.guest_upgraded) as calls,
            django_capture_on_commit_callbacks(execute=True),
        ):
            user.set_password(PASSWORD)
            user.save()
        assert [c["metadata"] for c in calls] == [self.METADATA]
        assert not Guest.objects.exists()

    def test_link_in_python(self, member: Any, django_capture_on_commit_callbacks: Any) -> None:
        guest = create_guest(metadata=self.METADATA)
        with (
            capture_signal(signals.guest_linking) as linking,
            capture_signal(signals.guest_linked) as linked,
            django_capture_on_commit_callbacks(execute=True),
        ):
            link_guest(guest, member)
        assert [call["metadata"] for call in linking + linked] == [self.METADATA] * 2

    def test_link_through_the_api(
        self, member: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        client = Client()
        sign_in(client, {"metadata": self.METADATA})
        body = {"login": member.get_username(), "password": PASSWORD}
        with (
            capture_signal(signals.guest_linking) as linking,
            capture_signal(signals.guest_linked) as linked,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = client.post(
                "/auth/anonymous/link/", json.dumps(body), content_type="application/json"
            )
        assert response.status_code == 200
        assert [call["metadata"] for call in linking + linked] == [self.METADATA] * 2

    def test_link_through_djangos_login(
        self, member: Any, settings: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        settings.ANONAUTH_BEFORE_CREATE = CAMPAIGN_HOOK
        client = browser()
        assert client.get(f"{LAZY}?utm_campaign=spring").json()["is_guest"]
        credentials = {"username": member.get_username(), "password": PASSWORD}
        with (
            capture_signal(signals.guest_linking) as linking,
            capture_signal(signals.guest_linked) as linked,
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert client.post("/accounts/login/", credentials).status_code == 302
        assert [call["metadata"] for call in linking + linked] == [{"campaign": "spring"}] * 2


class TestAdmin:
    def test_the_guest_page_shows_the_metadata_indented_and_escaped(self) -> None:
        guest = create_guest(metadata={"campaign": "<script>alert(1)</script>", "n": 1})
        staff = Client()
        staff.force_login(
            make_registered_user(email="boss@example.com", is_staff=True, is_superuser=True)
        )
        page = staff.get(f"/admin/anonauth/guest/{guest.pk}/change/").content.decode()
        shown = page.split('<pre class="anonauth-metadata">')[1].split("</pre>")[0]
        assert shown == (
            "{\n  &quot;campaign&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;,"
            "\n  &quot;n&quot;: 1\n}"
        )
        assert "<script>alert(1)" not in page
