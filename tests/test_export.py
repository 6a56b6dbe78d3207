"""The data export: its rows (every relation kind link handles), exclusions, serializers,
bounded memory, the endpoint (auth, rate limit, errors, ASGI) and the admin action."""

from __future__ import annotations

import json
import logging
import re
import tracemalloc
import warnings
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection
from django.db.models import FileField
from django.db.models.fields.files import FieldFile
from django.test import AsyncClient, Client, override_settings
from rest_framework import serializers
from rest_framework.authtoken.models import Token

from anonauth import export, link
from anonauth.admin import GuestAdmin
from anonauth.guests import create_guest
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, guest_client, make_registered_user
from example_project.shop.models import Order
from tests.linkapp.models import (
    Draft,
    KeyedProfile,
    Like,
    Membership,
    Note,
    Profile,
    ProfilePhoto,
    Team,
)

pytestmark = pytest.mark.django_db

EXPORT = "/auth/anonymous/export/"
SIGN_IN = "/auth/anonymous/sign-in/"


def note_as_text(note: Note) -> dict[str, Any]:
    """A project's serializer: a callable."""
    return {"note": note.text.upper()}


class ProfileSerializer(serializers.ModelSerializer[Profile]):
    """A project's serializer: a DRF serializer class."""

    class Meta:
        model = Profile
        fields = ["nickname"]


def user_with_likes(user: Any) -> dict[str, Any]:
    """The user model's serializer: the default, plus the generic relation link leaves."""
    user_type = ContentType.objects.get_for_model(user)
    likes = Like.objects.filter(content_type=user_type, object_id=str(user.pk))
    return {**export.default_user(user), "likes": list(likes.values_list("pk", flat=True))}


def broken_row(obj: Any) -> dict[str, Any]:
    raise DatabaseError("the database went away mid-export")


@pytest.fixture
def guest() -> Any:
    return create_guest()


def document(user: Any) -> dict[str, Any]:
    text = "".join(export.export_user(user))
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def rows(user: Any, label: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document(user)["relations"][label]
    return found


def body(response: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(b"".join(response.streaming_content))
    return parsed


class TestRows:
    def test_foreign_key(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="g1")
        Note.objects.create(author=guest, text="g2")
        Note.objects.create(author=member, text="m1")
        found = rows(guest, "linkapp.Note.author")
        assert [(r["text"], r["author"]) for r in found] == [("g1", guest.pk), ("g2", guest.pk)]

    def test_nullable_foreign_key(self, guest: Any) -> None:
        Draft.objects.create(editor=guest, title="mine")
        Draft.objects.create(editor=None, title="orphan")
        assert [r["title"] for r in rows(guest, "linkapp.Draft.editor")] == ["mine"]

    def test_one_to_one(self, guest: Any) -> None:
        profile = Profile.objects.create(user=guest, nickname="guesty")
        assert rows(guest, "linkapp.Profile.user") == [
            {"id": profile.pk, "user": guest.pk, "nickname": "guesty"}
        ]

    def test_many_to_many_automatic_through_table(self, guest: Any, member: Any) -> None:
        team = Team.objects.create(name="reds")
        team.fans.add(guest, member)
        user_field = get_user_model()._meta.model_name
        [row] = rows(guest, "linkapp.Team.fans")
        assert (row["team"], row[user_field]) == (team.pk, guest.pk)

    def test_many_to_many_explicit_through_table(self, guest: Any) -> None:
        team = Team.objects.create(name="blues")
        Membership.objects.create(team=team, person=guest, role="captain")
        [row] = rows(guest, "linkapp.Membership.person")
        assert (row["team"], row["person"], row["role"]) == (team.pk, guest.pk, "captain")

    def test_rows_referencing_a_model_keyed_by_the_user(self, guest: Any, member: Any) -> None:
        """A profile whose primary key is its user, and its photos: the photos hold the
        user's key too, and are the user's data (a link moves them along)."""
        profile = KeyedProfile.objects.create(user=guest, bio="mine")
        ProfilePhoto.objects.create(profile=profile, caption="hills")
        ProfilePhoto.objects.create(profile=profile, caption="city", cover=True)
        other = KeyedProfile.objects.create(user=member, bio="theirs")
        ProfilePhoto.objects.create(profile=other, caption="not mine")

        assert [r["bio"] for r in rows(guest, "linkapp.KeyedProfile.user")] == ["mine"]
        photos = rows(guest, "linkapp.ProfilePhoto.profile")
        assert [(r["caption"], r["profile"]) for r in photos] == [
            ("hills", guest.pk),
            ("city", guest.pk),
        ]

    def test_a_generic_foreign_key_is_no_relation_to_the_user(self, guest: Any) -> None:
        user_type = ContentType.objects.get_for_model(guest)
        Like.objects.create(content_type=user_type, object_id=str(guest.pk))
        assert not any(label.startswith("linkapp.Like") for label in document(guest)["relations"])

    def test_every_exported_relation_is_listed_even_empty(self, guest: Any) -> None:
        labels = [relation.label for relation in export.exported_relations()]
        assert list(document(guest)["relations"]) == labels
        assert all(found == [] for found in document(guest)["relations"].values())

    def test_default_serialisation(self, member: Any) -> None:
        order = Order.objects.create(customer=member, total=Decimal("12.50"))
        [row] = rows(member, "shop.Order.customer")
        assert row == {
            "id": order.pk,
            "customer": member.pk,  # a foreign key as the primary key it holds
            "created_at": DjangoJSONEncoder().default(order.created_at),  # ISO 8601
            "total": "12.50",  # a decimal as a string
        }
        assert row["created_at"].startswith(f"{order.created_at:%Y-%m-%dT%H:%M:%S}")

    def test_the_encoder_never_stops_on_a_type(self) -> None:
        file = FieldFile(None, FileField(), "uploads/cv.pdf")
        empty = FieldFile(None, FileField(), "")
        encoded = export.ExportEncoder().encode([file, empty, b"\x00\xff", memoryview(b"ab"), 1j])
        assert json.loads(encoded) == ["uploads/cv.pdf", "", "AP8=", "YWI=", "1j"]


class TestHeader:
    def test_a_guest(self, guest: Any) -> None:
        Guest.objects.filter(pk=guest.pk).update(metadata={"campaign": "spring"})
        found = document(guest)
        assert (found["format"], found["version"]) == ("anonauth.export", 1)
        assert found["user"]["id"] == guest.pk
        assert "password" not in found["user"]
        flag = Guest.objects.get(pk=guest.pk)
        assert found["guest"] == {
            "created_at": found["guest"]["created_at"],
            "last_seen": found["guest"]["last_seen"],
            "metadata": {"campaign": "spring"},
        }
        assert found["guest"]["created_at"].startswith(f"{flag.created_at:%Y-%m-%dT%H:%M:%S}")

    def test_no_guest_secrets(self, guest: Any) -> None:
        Guest.objects.filter(pk=guest.pk).update(
            creation_key="c" * 64, session_key="s" * 32, network_key="n" * 64
        )
        text = "".join(export.export_user(guest))
        assert "c" * 64 not in text
        assert "s" * 32 not in text
        assert "n" * 64 not in text

    def test_a_registered_user(self, member: Any) -> None:
        found = document(member)
        assert found["guest"] is None
        assert found["user"]["id"] == member.pk
        assert "password" not in found["user"]
        assert member.password not in json.dumps(found)


class TestExcluded:
    def test_framework_tables_are_left_out_whatever_link_exclude_says(self, member: Any) -> None:
        Token.objects.create(user=member)
        LogEntry.objects.create(
            user=member,
            content_type=ContentType.objects.get_for_model(Note),
            object_id="1",
            object_repr="note",
            action_flag=ADDITION,
        )
        member.groups.add(Group.objects.create(name="editors"))
        member.user_permissions.add(Permission.objects.first())
        with override_settings(ANONAUTH_LINK_EXCLUDE=[]):
            labels = set(document(member)["relations"])
            text = "".join(export.export_user(member))
        assert Token.objects.get().key not in text
        user_label = get_user_model()._meta.label
        assert not labels & {
            "authtoken.Token.user",
            "admin.LogEntry.user",
            "anonauth.Guest.user",
            "anonauth.TransferCode.guest",
            f"{user_label}.groups",
            f"{user_label}.user_permissions",
        }

    @override_settings(ANONAUTH_LINK_EXCLUDE=["linkapp.Note.author"])
    def test_link_exclude_is_left_out(self, guest: Any) -> None:
        Note.objects.create(author=guest, text="secret")
        found = document(guest)
        assert "linkapp.Note.author" not in found["relations"]
        assert "secret" not in json.dumps(found)
        assert "linkapp.Draft.editor" in found["relations"]


class TestSerializers:
    @override_settings(
        ANONAUTH_EXPORT_SERIALIZERS={
            "linkapp.Note": "tests.test_export.note_as_text",
            "linkapp.Profile": "tests.test_export.ProfileSerializer",
        }
    )
    def test_a_callable_and_a_drf_serializer(self, guest: Any) -> None:
        Note.objects.create(author=guest, text="hello")
        Profile.objects.create(user=guest, nickname="guesty")
        found = document(guest)["relations"]
        assert found["linkapp.Note.author"] == [{"note": "HELLO"}]
        assert found["linkapp.Profile.user"] == [{"nickname": "guesty"}]

    def test_the_user_models_serializer_writes_the_header(self, guest: Any) -> None:
        like = Like.objects.create(
            content_type=ContentType.objects.get_for_model(guest), object_id=str(guest.pk)
        )
        label = get_user_model()._meta.label
        paths = {label: "tests.test_export.user_with_likes"}
        with override_settings(ANONAUTH_EXPORT_SERIALIZERS=paths):
            assert document(guest)["user"]["likes"] == [like.pk]

    @pytest.mark.parametrize(
        ("paths", "message"),
        [
            ({"linkapp.Nothing": "tests.test_export.note_as_text"}, "which is no model"),
            ({"linkapp.Note": "tests.nowhere.serialize"}, "does not import"),
        ],
    )
    def test_misconfigured(self, guest: Any, paths: dict[str, str], message: str) -> None:
        with (
            override_settings(ANONAUTH_EXPORT_SERIALIZERS=paths),
            pytest.raises(ImproperlyConfigured, match=message),
        ):
            document(guest)


class TestStreaming:
    def test_the_header_comes_first_alone(self, guest: Any) -> None:
        Note.objects.create(author=guest, text="later")
        chunks = export.export_user(guest)
        first = next(chunks)
        assert first.endswith('"relations": {')
        assert "later" not in first
        assert "later" in "".join(chunks)

    def test_chunks_are_bounded(self, guest: Any) -> None:
        Note.objects.bulk_create(Note(author=guest, text="x" * 50) for _ in range(3000))
        sizes = [len(chunk) for chunk in export.export_user(guest)]
        assert len(sizes) > 2
        assert max(sizes) < export.FLUSH_AT + 200  # one row over, at most

    def test_one_query_per_relation(self, guest: Any, django_assert_num_queries: Any) -> None:
        Note.objects.bulk_create(Note(author=guest, text="n") for _ in range(5))
        relations = export.exported_relations()
        with django_assert_num_queries(1 + len(relations)):
            "".join(export.export_user(guest))

    def test_rows_removed_mid_stream_leave_a_valid_document(self, guest: Any) -> None:
        Note.objects.create(author=guest, text="gone")
        chunks = export.export_user(guest)
        first = next(chunks)
        Note.objects.all().delete()
        found = json.loads(first + "".join(chunks))
        assert found["relations"]["linkapp.Note.author"] == []

    def test_a_link_mid_stream_leaves_a_valid_document(self, guest: Any, member: Any) -> None:
        """The guest signs into its account while its export streams: the rows moved
        with it are the account's now, and the document still closes."""
        Note.objects.create(author=guest, text="moved")
        guest_id = guest.pk
        chunks = export.export_user(guest)
        first = next(chunks)
        link.link_guest(guest, member)  # deletes the guest: guest.pk is None now
        found = json.loads(first + "".join(chunks))
        assert found["user"]["id"] == guest_id
        assert found["relations"]["linkapp.Note.author"] == []
        assert Note.objects.get().author == member

    def test_chunks_join_pieces_up_to_the_size(self) -> None:
        assert list(export._chunked([["ab", "cd"], ["e"]], size=2)) == ["ab", "cd", "e"]
        assert list(export._chunked([["ab", "cd"]], size=2)) == ["ab", "cd"]

    def test_the_filename_is_safe_in_a_header(self) -> None:
        name = export.filename(SimpleNamespace(pk='7"; evil\r\nX: y'))
        assert re.fullmatch(r"data-export-7-evil-X-y-\d{4}-\d{2}-\d{2}\.json", name), name
        assert re.fullmatch(r"data-export-\d{4}-\d{2}-\d{2}\.json", export.filename())

    def test_closing_the_stream_ends_the_generator(self, guest: Any) -> None:
        stream = export.ExportStream(export.export_user(guest), "user")
        next(iter(stream))
        stream.close()
        assert stream.chunks.gi_frame is None

    def test_several_users(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="g")
        Note.objects.create(author=member, text="m")
        found = json.loads("".join(export.export_users([guest, member])))
        assert [e["user"]["id"] for e in found["exports"]] == [guest.pk, member.pk]
        assert [e["relations"]["linkapp.Note.author"][0]["text"] for e in found["exports"]] == [
            "g",
            "m",
        ]
        assert json.loads("".join(export.export_users([])))["exports"] == []


ROWS = 100_000
# Loading the rows takes about 50 MB (measured: model instances and their dicts); the
# document itself is about 8 MB; the export's peak was about 1 MB. The bound sits far
# below both, and far above the measured peak.
PEAK_BOUND = 4 * 1024 * 1024


def insert_notes(author: Any, count: int) -> None:
    """``count`` notes in one statement (a recursive CTE: SQLite and PostgreSQL)."""
    table = connection.ops.quote_name(Note._meta.db_table)
    sql = (
        f"INSERT INTO {table} (author_id, text) "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
        "SELECT %s, 'note ' || i || ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' FROM n"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, author.pk])


def test_memory_stays_flat_for_100000_rows(guest: Any) -> None:
    """Runs on SQLite and on PostgreSQL (server-side cursors)."""
    insert_notes(guest, ROWS)
    size = 0
    tracemalloc.start()
    try:
        for chunk in export.export_user(guest):
            size += len(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > PEAK_BOUND  # more than the bound: the document was never held whole
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.1f} MB"
    tracemalloc.start()
    try:
        loaded = list(Note.objects.filter(author=guest)[: ROWS // 10])
        _current, tenth = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(loaded) == ROWS // 10
    assert tenth * 10 > 5 * PEAK_BOUND  # loading them all would take over five bounds


class TestEndpoint:
    def test_a_guest_by_cookie(self) -> None:
        client = guest_client()
        me = client.get("/auth/anonymous/session/").json()["user"]
        Note.objects.create(author_id=me["id"], text="mine")
        response = client.get(EXPORT)
        assert response.status_code == 200
        assert response.streaming
        assert response["Content-Type"] == "application/json"
        assert response["Content-Disposition"].startswith(
            f'attachment; filename="data-export-{me["id"]}-'
        )
        assert response["Cache-Control"] == "private, no-store"
        found = body(response)
        assert found["user"]["id"] == me["id"]
        assert found["guest"] is not None
        assert found["relations"]["linkapp.Note.author"][0]["text"] == "mine"

    def test_an_app_client_by_session_token(self) -> None:
        signed_in = Client(HTTP_USER_AGENT="MyApp/1.0").post(SIGN_IN)
        token = signed_in.json()["session_token"]
        response = Client().get(EXPORT, HTTP_X_SESSION_TOKEN=token)
        assert response.status_code == 200
        assert body(response)["user"]["id"] == signed_in.json()["user"]["id"]

    @override_settings(
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"]
        }
    )
    def test_a_drf_token_client(self, member: Any) -> None:
        token = Token.objects.create(user=member)
        response = Client().get(EXPORT, HTTP_AUTHORIZATION=f"Token {token.key}")
        assert response.status_code == 200
        found = body(response)
        assert found["user"]["id"] == member.pk
        assert token.key not in json.dumps(found)  # a credential, never exported

    @override_settings(
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "rest_framework_simplejwt.authentication.JWTAuthentication"
            ]
        }
    )
    def test_a_jwt_guest(self) -> None:
        from anonauth.contrib.simplejwt import refresh_token_for

        guest = create_guest(metadata={"campaign": "app"})
        Note.objects.create(author=guest, text="from the app")
        access = refresh_token_for(guest).access_token
        response = Client().get(EXPORT, HTTP_AUTHORIZATION=f"Bearer {access}")
        assert response.status_code == 200
        found = body(response)
        assert found["user"]["id"] == guest.pk
        assert found["guest"]["metadata"] == {"campaign": "app"}
        assert found["relations"]["linkapp.Note.author"][0]["text"] == "from the app"
        assert str(access) not in json.dumps(found)

    def test_a_registered_user_exports_too(self, member: Any) -> None:
        Note.objects.create(author=member, text="member note")
        client = Client()
        client.force_login(member)
        found = body(client.get(EXPORT))
        assert found["guest"] is None
        assert found["relations"]["linkapp.Note.author"][0]["text"] == "member note"

    def test_anonymous(self) -> None:
        response = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT).get(EXPORT)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert not Guest.objects.exists()  # asking for an export creates no guest

    @override_settings(ANONAUTH_EXPORT_RATE_LIMIT="1/m")
    def test_rate_limited_per_user(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        assert client.get(EXPORT, REMOTE_ADDR="10.0.0.1").status_code == 200
        refused = client.get(EXPORT, REMOTE_ADDR="10.9.9.9")  # another network
        assert refused.status_code == 429
        assert refused.json() == {
            "code": "rate_limited",
            "detail": "Too many data exports from here; try again later.",
        }
        assert int(refused["Retry-After"]) >= 1

    @override_settings(ANONAUTH_EXPORT_RATE_LIMIT="1/m")
    def test_rate_limited_per_network(self) -> None:
        assert guest_client().get(EXPORT).status_code == 200
        assert guest_client().get(EXPORT).status_code == 429

    @override_settings(ANONAUTH_EXPORT_RATE_LIMIT=None)
    def test_no_rate_limit(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        assert {client.get(EXPORT).status_code for _ in range(12)} == {200}

    def test_the_default_rate_limit(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        statuses = [client.get(EXPORT).status_code for _ in range(11)]
        assert statuses == [200] * 10 + [429]

    def test_a_database_down_before_the_stream_is_a_json_503(
        self, member: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        client = Client()
        client.force_login(member)

        def down() -> Any:
            raise DatabaseError("the database is down")

        monkeypatch.setattr("anonauth.export.db.guests", down)
        response = client.get(EXPORT)
        assert response.status_code == 503
        assert not response.streaming
        assert response.json()["code"] == "unavailable"

    @override_settings(ANONAUTH_EXPORT_SERIALIZERS={"linkapp.Note": "tests.test_export.broken_row"})
    def test_a_database_error_mid_stream_cuts_the_json_short(
        self, member: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        Note.objects.create(author=member, text="n")
        client = Client()
        client.force_login(member)
        response = client.get(EXPORT)
        assert response.status_code == 200  # sent before the error
        received: list[bytes] = []
        with caplog.at_level(logging.ERROR, logger="anonauth"), pytest.raises(DatabaseError):
            received.extend(response.streaming_content)
        assert received  # the header went out
        with pytest.raises(json.JSONDecodeError):
            json.loads(b"".join(received))
        assert f"the data export of user {member.pk} failed after it started" in caplog.text

    def test_asgi_streams_without_reading_the_whole_export_first(self, member: Any) -> None:
        Note.objects.create(author=member, text="async")
        client = AsyncClient()
        async_to_sync(client.aforce_login)(member)

        async def fetch() -> tuple[Any, bytes]:
            response = await client.get(EXPORT)
            content = b"".join([chunk async for chunk in response.streaming_content])
            return response, content

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "must consume synchronous iterators"
            response, content = async_to_sync(fetch)()
        assert response.status_code == 200
        assert response.is_async
        assert json.loads(content)["relations"]["linkapp.Note.author"][0]["text"] == "async"


class TestAdminAction:
    def staff(self, *permissions: str) -> Client:
        user = make_registered_user(email="staff@example.com", is_staff=True)
        for codename in ("view_guest", *permissions):
            user.user_permissions.add(Permission.objects.get(codename=codename))
        client = Client()
        client.force_login(user)
        return client

    def post(self, client: Client, *guests: Any) -> Any:
        return client.post(
            "/admin/anonauth/guest/",
            {"action": "export_selected", "_selected_action": [g.pk for g in guests]},
        )

    def test_staff_who_may_view_users(self, guest: Any) -> None:
        other = create_guest()
        create_guest()  # not selected
        Note.objects.create(author=guest, text="first")
        view_user = f"view_{get_user_model()._meta.model_name}"
        response = self.post(self.staff(view_user), guest, other)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith('attachment; filename="data-export-')
        found = body(response)
        assert [e["user"]["id"] for e in found["exports"]] == sorted([guest.pk, other.pk])
        assert found["exports"][0]["relations"]["linkapp.Note.author"][0]["text"] == "first"
        assert all(e["guest"] is not None for e in found["exports"])

    def test_staff_who_may_not_view_users_are_not_offered_it(self, guest: Any, rf: Any) -> None:
        client = self.staff()
        response = self.post(client, guest)
        assert not response.streaming
        request = rf.get("/")
        request.user = get_user_model().objects.get(email="staff@example.com")
        assert "export_selected" not in GuestAdmin(Guest, admin.site).get_actions(request)
        page = client.get("/admin/anonauth/guest/").content.decode()
        assert "export_selected" not in page
