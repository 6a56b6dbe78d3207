from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, models, transaction
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.test import Client, override_settings
from django.test.utils import isolate_apps

from anonauth import link, signals
from anonauth.exceptions import LinkConflict, NotGuest
from anonauth.guests import create_guest, is_guest
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, connected, guest_client, make_registered_user
from tests.linkapp.models import (
    Badge,
    Bookmark,
    Draft,
    Invoice,
    KeyedProfile,
    Like,
    Membership,
    Note,
    Page,
    Profile,
    ProfilePhoto,
    Tag,
    Team,
    Vote,
    Wallet,
)
from tests.testapp.models import Basket, BasketItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest() -> Any:
    return create_guest()


def exists(user: Any) -> bool:
    return get_user_model().objects.filter(pk=user.pk).exists()


class TestReassignment:
    def test_foreign_key(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="g1")
        Note.objects.create(author=guest, text="g2")
        Note.objects.create(author=member, text="m1")
        result = link.link_guest(guest, member)
        assert sorted(Note.objects.filter(author=member).values_list("text", flat=True)) == [
            "g1",
            "g2",
            "m1",
        ]
        assert result.moved["linkapp.Note.author"] == 2
        assert result.guest_deleted
        assert not exists(guest)

    def test_nullable_foreign_key(self, guest: Any, member: Any) -> None:
        Draft.objects.create(editor=guest, title="mine")
        Draft.objects.create(editor=None, title="orphan")
        link.link_guest(guest, member)
        assert Draft.objects.get(title="mine").editor == member
        assert Draft.objects.get(title="orphan").editor is None

    def test_one_to_one_keeps_the_accounts_by_default(self, guest: Any, member: Any) -> None:
        Profile.objects.create(user=guest, nickname="guesty")
        Profile.objects.create(user=member, nickname="member")
        result = link.link_guest(guest, member)
        assert list(Profile.objects.values_list("nickname", flat=True)) == ["member"]
        assert result.dropped == {"linkapp.Profile.user": 1}
        assert "linkapp.Profile.user" not in result.moved

    def test_one_to_one_moves_when_the_account_has_none(self, guest: Any, member: Any) -> None:
        Profile.objects.create(user=guest, nickname="guesty")
        link.link_guest(guest, member)
        assert Profile.objects.get().user == member

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Profile.user": "keep_guest"})
    def test_one_to_one_keep_guest(self, guest: Any, member: Any) -> None:
        Profile.objects.create(user=guest, nickname="guesty")
        Profile.objects.create(user=member, nickname="member")
        result = link.link_guest(guest, member)
        assert Profile.objects.get().nickname == "guesty"
        assert Profile.objects.get().user == member
        assert result.dropped == {"linkapp.Profile.user": 1}
        assert result.moved == {"linkapp.Profile.user": 1}

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Profile.user": "error"})
    def test_one_to_one_error_rolls_everything_back(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="kept with the guest")
        Profile.objects.create(user=guest, nickname="guesty")
        Profile.objects.create(user=member, nickname="member")
        with pytest.raises(LinkConflict) as raised:
            link.link_guest(guest, member)
        assert raised.value.code == "link_conflict"
        assert is_guest(get_user_model().objects.get(pk=guest.pk))
        assert Note.objects.get().author_id == guest.pk
        assert Profile.objects.get(nickname="guesty").user_id == guest.pk

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Profile.user": "error"})
    def test_error_policy_without_a_conflict_moves(self, guest: Any, member: Any) -> None:
        Profile.objects.create(user=guest, nickname="guesty")
        link.link_guest(guest, member)
        assert Profile.objects.get().user == member

    def test_unique_foreign_key(self, guest: Any, member: Any) -> None:
        Wallet.objects.create(owner=guest, balance=5)
        Wallet.objects.create(owner=member, balance=50)
        result = link.link_guest(guest, member)
        assert list(Wallet.objects.values_list("balance", flat=True)) == [50]
        assert result.dropped == {"linkapp.Wallet.owner": 1}

    def test_unique_together(self, guest: Any, member: Any) -> None:
        Vote.objects.create(voter=guest, poll="colour", choice="red")
        Vote.objects.create(voter=guest, poll="size", choice="L")
        Vote.objects.create(voter=member, poll="colour", choice="blue")
        result = link.link_guest(guest, member)
        votes = dict(Vote.objects.filter(voter=member).values_list("poll", "choice"))
        assert votes == {"colour": "blue", "size": "L"}
        assert result.moved == {"linkapp.Vote.voter": 1}
        assert result.dropped == {"linkapp.Vote.voter": 1}

    def test_conditional_unique_constraint(self, guest: Any, member: Any) -> None:
        Bookmark.objects.create(owner=guest, url="/a", pinned=True)  # collides
        Bookmark.objects.create(owner=guest, url="/b", pinned=True)  # no twin
        Bookmark.objects.create(owner=guest, url="/a", pinned=False)  # outside the condition
        Bookmark.objects.create(owner=member, url="/a", pinned=True)
        result = link.link_guest(guest, member)
        assert Bookmark.objects.filter(owner=member).count() == 3
        assert result.dropped == {"linkapp.Bookmark.owner": 1}
        assert result.moved == {"linkapp.Bookmark.owner": 2}

    def test_many_to_many_automatic_through_table(self, guest: Any, member: Any) -> None:
        both, guests_only = Team.objects.create(name="both"), Team.objects.create(name="guest's")
        both.fans.add(guest, member)
        guests_only.fans.add(guest)
        result = link.link_guest(guest, member)
        assert sorted(Team.objects.filter(fans=member).values_list("name", flat=True)) == [
            "both",
            "guest's",
        ]
        assert both.fans.count() == 1  # the duplicate pair was dropped, not doubled
        assert result.moved == {"linkapp.Team.fans": 1}
        assert result.dropped == {"linkapp.Team.fans": 1}

    def test_many_to_many_explicit_through_model(self, guest: Any, member: Any) -> None:
        both, other = Team.objects.create(name="both"), Team.objects.create(name="other")
        Membership.objects.create(team=both, person=guest, role="captain")
        Membership.objects.create(team=both, person=member, role="member")
        Membership.objects.create(team=other, person=guest)
        link.link_guest(guest, member)
        assert Membership.objects.get(team=both).role == "member"
        assert Membership.objects.get(team=other).person == member

    def test_protect_foreign_key_is_moved_before_the_delete(self, guest: Any, member: Any) -> None:
        Invoice.objects.create(customer=guest, amount=10)
        result = link.link_guest(guest, member)
        assert Invoice.objects.get().customer == member
        assert result.guest_deleted

    def test_rows_hanging_off_moved_rows_come_along(self, guest: Any, member: Any) -> None:
        basket = Basket.objects.create(owner=guest)
        BasketItem.objects.create(basket=basket, name="Mug", quantity=3)
        link.link_guest(guest, member)
        assert Basket.objects.get(owner=member).items.get().quantity == 3

    def test_generic_foreign_keys_are_left_to_receivers(self, guest: Any, member: Any) -> None:
        """A GenericForeignKey is no relation to the user model: a receiver moves it."""
        user_type = ContentType.objects.get_for_model(get_user_model())
        Like.objects.create(content_type=user_type, object_id=str(guest.pk))

        def move_likes(sender: Any, guest: Any, user: Any, **kwargs: Any) -> None:
            Like.objects.filter(content_type=user_type, object_id=str(guest.pk)).update(
                object_id=str(user.pk)
            )

        with connected(signals.guest_linking, move_likes):
            link.link_guest(guest, member)
        assert Like.objects.get().object_id == str(member.pk)

    def test_framework_tables_are_excluded(self, guest: Any, member: Any) -> None:
        labels = {relation.label for relation in link.relations_to_reassign()}
        assert "anonauth.Guest.user" not in labels
        assert "admin.LogEntry.user" not in labels
        user_label = get_user_model()._meta.label
        assert f"{user_label}.groups" not in labels
        assert "linkapp.Note.author" in labels
        assert "linkapp.Team.fans" in labels

    @override_settings(ANONAUTH_LINK_REASSIGN=["linkapp.Note.author"])
    def test_reassign_a_chosen_list(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="moves")
        Draft.objects.create(editor=guest, title="stays and is nulled with the guest")
        result = link.link_guest(guest, member)
        assert result.moved == {"linkapp.Note.author": 1}
        assert Draft.objects.get().editor is None

    @override_settings(ANONAUTH_LINK_EXCLUDE=["linkapp.Note.author", "anonauth.Guest.user"])
    def test_excluded_relations_go_with_the_guest(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="deleted with the guest")
        link.link_guest(guest, member)
        assert not Note.objects.exists()

    @pytest.mark.parametrize(
        "setting",
        [
            {"ANONAUTH_LINK_EXCLUDE": ["admin.LogEntry.user"]},  # replaces the default list
            {"ANONAUTH_LINK_EXCLUDE": []},
            {"ANONAUTH_LINK_REASSIGN": ["anonauth.Guest.user", "linkapp.Note.author"]},
        ],
    )
    def test_the_guest_flag_never_moves(
        self, guest: Any, member: Any, setting: dict[str, Any]
    ) -> None:
        # Moving the Guest row would make the account a guest: deleted at its next
        # sign-out, purged once stale.
        Note.objects.create(author=guest, text="moves")
        with override_settings(**setting):
            assert "anonauth.Guest.user" not in {r.label for r in link.relations_to_reassign()}
            result = link.link_guest(guest, member)
        assert "anonauth.Guest.user" not in result.moved
        assert not is_guest(get_user_model().objects.get(pk=member.pk))
        assert not Guest.objects.exists()
        assert Note.objects.get().author == member

    @override_settings(ANONAUTH_LINK_DELETE_GUEST=False)
    def test_keep_the_guest_user(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="moves")
        result = link.link_guest(guest, member)
        assert not result.guest_deleted
        assert exists(guest)
        assert Note.objects.get().author == member

    def test_labels(self) -> None:
        labels = link.known_labels()
        assert {
            "testapp.Basket.owner",
            "testapp.Invoice.customer",
            "linkapp.Team.fans",
            "linkapp.Membership.person",
        } <= labels
        assert link.unknown_labels(["testapp.Basket.owner", "testapp.Basket.nope"]) == [
            "testapp.Basket.nope"
        ]


class TestPreconditions:
    def test_registered_user_cannot_be_linked(self, member: Any) -> None:
        other = make_registered_user(email="other@example.com")
        with pytest.raises(NotGuest):
            link.link_guest(other, member)

    def test_not_into_a_guest(self, guest: Any) -> None:
        with pytest.raises(NotGuest):
            link.link_guest(guest, create_guest())

    def test_not_into_itself(self, guest: Any) -> None:
        with pytest.raises(NotGuest):
            link.link_guest(guest, guest)


class TestSignals:
    def test_linking_inside_then_linked_after_commit(
        self, guest: Any, member: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        events: list[tuple[str, Any]] = []

        def linking(sender: Any, guest: Any, user: Any, request: Any, **kwargs: Any) -> None:
            events.append(
                ("linking", (guest.pk, user.pk, Guest.objects.filter(user=guest).exists()))
            )

        def linked(
            sender: Any, guest_id: Any, user: Any, request: Any, result: Any, **kwargs: Any
        ) -> None:
            events.append(("linked", (guest_id, user.pk, result.moved)))

        Note.objects.create(author=guest, text="n")
        guest_id = guest.pk
        with (
            connected(signals.guest_linking, linking),
            connected(signals.guest_linked, linked),
            django_capture_on_commit_callbacks(execute=True),
        ):
            link.link_guest(guest, member)
            assert [name for name, _ in events] == ["linking"]
        assert events == [
            ("linking", (guest_id, member.pk, True)),
            ("linked", (guest_id, member.pk, {"linkapp.Note.author": 1})),
        ]

    def test_a_raising_receiver_rolls_everything_back(self, guest: Any, member: Any) -> None:
        Note.objects.create(author=guest, text="safe")

        def broken(**kwargs: Any) -> None:
            Note.objects.update(text="half-done")
            raise RuntimeError("receiver bug")

        with connected(signals.guest_linking, broken), pytest.raises(RuntimeError):
            link.link_guest(guest, member)
        note = Note.objects.get()
        assert (note.text, note.author_id) == ("safe", guest.pk)
        assert Guest.objects.filter(user=guest).exists()


def guest_browser_with(note: str) -> tuple[Client, Any]:
    client = guest_client()
    user_id = int(client.session[SESSION_KEY])
    Note.objects.create(author_id=user_id, text=note)
    return client, user_id


class TestLinkOnLogin:
    def test_login_view_links_the_guest(self, member: Any) -> None:
        client, guest_id = guest_browser_with("from the guest")
        response = client.post(
            "/accounts/login/", {"username": member.get_username(), "password": "correct-horse-42"}
        )
        assert response.status_code == 302
        assert Note.objects.get().author == member
        assert not get_user_model().objects.filter(pk=guest_id).exists()
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == member.pk

    def test_a_failed_link_keeps_the_guest_and_the_login(
        self, member: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        client, guest_id = guest_browser_with("kept")

        def broken(**kwargs: Any) -> None:
            raise RuntimeError("receiver bug")

        with connected(signals.guest_linking, broken):
            client.post(
                "/accounts/login/",
                {"username": member.get_username(), "password": "correct-horse-42"},
            )
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == member.pk
        assert Note.objects.get().author_id == guest_id
        assert Guest.objects.filter(user_id=guest_id).exists()
        assert "linking guest" in caplog.text
        assert "receiver bug" in caplog.text

    @override_settings(ANONAUTH_LINK_EXCLUDE=["admin.LogEntry.user"])
    def test_a_project_exclude_list_keeps_the_account_at_sign_out(self, member: Any) -> None:
        client, _ = guest_browser_with("from the guest")
        Note.objects.create(author=member, text="the account's own")
        client.post(
            "/accounts/login/", {"username": member.get_username(), "password": "correct-horse-42"}
        )
        client.post("/accounts/logout/")
        assert exists(member)
        assert Note.objects.filter(author=member).count() == 2

    def test_two_guests_of_one_person_both_end_up_in_the_account(self, member: Any) -> None:
        for device in ("phone", "laptop"):  # one after the other
            client, _ = guest_browser_with(f"from the {device}")
            client.post(
                "/accounts/login/",
                {"username": member.get_username(), "password": "correct-horse-42"},
            )
        notes = Note.objects.filter(author=member).values_list("text", flat=True)
        assert sorted(notes) == ["from the laptop", "from the phone"]
        assert not Guest.objects.exists()

    def test_force_login_of_the_same_registered_user_links_nothing(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        client.force_login(member)
        assert get_user_model().objects.count() == 1

    def test_logging_in_without_a_guest(self, member: Any) -> None:
        client = Client()
        client.post(
            "/accounts/login/", {"username": member.get_username(), "password": "correct-horse-42"}
        )
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == member.pk


LINK = "/auth/anonymous/link/"


class TestLinkEndpoint:
    def test_links_and_logs_in(self, member: Any) -> None:
        client, guest_id = guest_browser_with("n")
        response = client.post(
            LINK, {"login": member.get_username(), "password": "correct-horse-42"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["user"]["id"] == member.pk
        assert body["user"]["is_guest"] is False
        assert body["moved"] == {"linkapp.Note.author": 1}
        assert body["dropped"] == {}
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == member.pk
        assert not get_user_model().objects.filter(pk=guest_id).exists()

    def test_login_by_email(self, member: Any) -> None:
        client, _ = guest_browser_with("n")
        response = client.post(
            LINK, {"login": "MEMBER@example.com", "password": "correct-horse-42"}
        )
        assert response.status_code == 200

    def test_wrong_password(self, member: Any) -> None:
        client, guest_id = guest_browser_with("n")
        response = client.post(LINK, {"login": member.get_username(), "password": "nope"})
        assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")
        assert Note.objects.get().author_id == guest_id

    def test_missing_fields(self) -> None:
        client, _ = guest_browser_with("n")
        response = client.post(LINK, {})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"

    def test_registered_user(self, member: Any) -> None:
        client = Client()
        client.force_login(member)
        response = client.post(LINK, {"login": "x", "password": "y"})
        assert (response.status_code, response.json()["code"]) == (403, "not_guest")

    def test_anonymous(self) -> None:
        assert Client().post(LINK, {"login": "x", "password": "y"}).status_code == 401

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Profile.user": "error"})
    def test_conflict(self, member: Any) -> None:
        client, guest_id = guest_browser_with("n")
        Profile.objects.create(user_id=guest_id, nickname="g")
        Profile.objects.create(user=member, nickname="m")
        response = client.post(
            LINK, {"login": member.get_username(), "password": "correct-horse-42"}
        )
        assert (response.status_code, response.json()["code"]) == (409, "link_conflict")
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == guest_id
        assert Note.objects.get().author_id == guest_id

    @override_settings(ANONAUTH_LINK_RATE_LIMIT="2/m")
    def test_rate_limited_like_a_login(self, member: Any) -> None:
        client, _ = guest_browser_with("n")
        codes = [
            client.post(LINK, {"login": member.get_username(), "password": "guess"}).json()["code"]
            for _ in range(3)
        ]
        assert codes == ["invalid_credentials", "invalid_credentials", "rate_limited"]

    def test_csrf_enforced(self, member: Any) -> None:
        """A forged cross-site link would move the victim's guest data to the attacker."""
        client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, enforce_csrf_checks=True)
        client.get("/csrf/")
        token = client.cookies["csrftoken"].value
        assert client.post("/auth/anonymous/sign-in/", HTTP_X_CSRFTOKEN=token).status_code == 201
        guest_id = client.get("/auth/anonymous/session/").json()["user"]["id"]
        Note.objects.create(author_id=guest_id, text="victim's")
        forged = client.post(LINK, {"login": member.get_username(), "password": "correct-horse-42"})
        assert (forged.status_code, forged.json()["code"]) == (403, "csrf_failed")
        assert Note.objects.get().author_id == guest_id
        token = client.cookies["csrftoken"].value
        genuine = client.post(
            LINK,
            {"login": member.get_username(), "password": "correct-horse-42"},
            HTTP_X_CSRFTOKEN=token,
        )
        assert genuine.status_code == 200


def test_integrity_is_kept_when_a_unique_twin_appears(guest: Any, member: Any) -> None:
    """Sanity: the constraint the link resolves really exists in the database."""
    Profile.objects.create(user=member, nickname="m")
    with pytest.raises(IntegrityError):
        Profile.objects.create(user=member, nickname="again")


# A profile keyed by its user (its primary key is the OneToOneField): linking changes
# that key, so the rows that reference the profile must follow it.


def keyed_profile(user: Any, bio: str, *captions: str, cover: str = "") -> KeyedProfile:
    """``user``'s profile with a photo per caption (and ``cover``, its cover photo)."""
    profile = KeyedProfile.objects.create(user=user, bio=bio)
    for caption in (*captions, cover) if cover else captions:
        ProfilePhoto.objects.create(profile=profile, caption=caption, cover=caption == cover)
    return profile


def photos(user: Any) -> list[str]:
    """The captions of the photos on ``user``'s profile (``*`` marks the cover)."""
    rows = ProfilePhoto.objects.filter(profile_id=user.pk).values_list("caption", "cover")
    return sorted(f"{caption}*" if cover else caption for caption, cover in rows)


def foreign_keys_hold() -> bool:
    """Whether every deferred foreign key holds now (the test's transaction never
    commits, where the database would check them)."""
    try:
        connection.check_constraints()
    except IntegrityError:
        return False
    return True


class TestProfileKeyedByTheUser:
    def test_its_photos_follow_it(self, guest: Any, member: Any) -> None:
        keyed_profile(guest, "guest's", "hills", cover="beach")
        result = link.link_guest(guest, member)
        assert foreign_keys_hold()
        assert KeyedProfile.objects.get().pk == member.pk
        assert photos(member) == ["beach*", "hills"]
        assert result.moved == {"linkapp.KeyedProfile.user": 1, "linkapp.ProfilePhoto.profile": 2}

    def test_its_photos_join_the_accounts_profile(self, guest: Any, member: Any) -> None:
        """``keep_target``: the account's profile stays, the guest's photos join it; the
        account's cover photo stays the cover (the guest's, a unique twin, is dropped)."""
        keyed_profile(guest, "guest's", "hills", cover="beach")
        keyed_profile(member, "member's", "city", cover="portrait")
        result = link.link_guest(guest, member)
        assert foreign_keys_hold()
        assert KeyedProfile.objects.get().bio == "member's"
        assert photos(member) == ["city", "hills", "portrait*"]
        assert result.moved == {"linkapp.ProfilePhoto.profile": 1}
        assert result.dropped == {
            "linkapp.KeyedProfile.user": 1,
            "linkapp.ProfilePhoto.profile": 1,
        }

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.KeyedProfile.user": "keep_guest"})
    def test_keep_guest_keeps_the_accounts_photos(self, guest: Any, member: Any) -> None:
        """The guest's profile replaces the account's; the account's photos stay, on it,
        and the guest's cover photo wins."""
        keyed_profile(guest, "guest's", "hills", cover="beach")
        keyed_profile(member, "member's", "city", cover="portrait")
        result = link.link_guest(guest, member)
        assert foreign_keys_hold()
        assert KeyedProfile.objects.get().bio == "guest's"
        assert KeyedProfile.objects.get().pk == member.pk
        assert photos(member) == ["beach*", "city", "hills"]
        assert result.moved == {"linkapp.KeyedProfile.user": 1, "linkapp.ProfilePhoto.profile": 2}
        assert result.dropped == {
            "linkapp.KeyedProfile.user": 1,
            "linkapp.ProfilePhoto.profile": 1,
        }

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.KeyedProfile.user": "error"})
    def test_error_policy_keeps_everything(self, guest: Any, member: Any) -> None:
        keyed_profile(guest, "guest's", "hills")
        keyed_profile(member, "member's", "city")
        with pytest.raises(LinkConflict):
            link.link_guest(guest, member)
        assert foreign_keys_hold()
        assert (photos(guest), photos(member)) == (["hills"], ["city"])

    def test_photos_of_the_account_alone_stay(self, guest: Any, member: Any) -> None:
        keyed_profile(member, "member's", "city", cover="portrait")
        link.link_guest(guest, member)
        assert foreign_keys_hold()
        assert photos(member) == ["city", "portrait*"]


def log_in(client: Client, member: Any) -> Any:
    return client.post(
        "/accounts/login/", {"username": member.get_username(), "password": "correct-horse-42"}
    )


def delete_the_profile_behind_djangos_back(guest: Any, **kwargs: Any) -> None:
    """A receiver bug: raw SQL skips ``on_delete``, the guest's photos point at nothing."""
    table, key = (connection.ops.quote_name(KeyedProfile._meta.db_table), KeyedProfile._meta.pk)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {key.column} = %s", [guest.pk])


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)


@pytest.mark.django_db(transaction=True)
class TestInsideAnOuterTransaction:
    """With ``ATOMIC_REQUESTS`` (or a caller's ``atomic()``) the link is a savepoint: a
    deferred foreign key it left broken would fail only the outer commit, after the
    link reported success (a 500 on the login)."""

    @pytest.mark.usefixtures("atomic_requests")
    def test_a_keyed_profile_links_at_login(self) -> None:
        member = make_registered_user()
        client, guest_id = guest_browser_with("n")
        keyed_profile(get_user_model().objects.get(pk=guest_id), "guest's", "hills")
        assert log_in(client, member).status_code == 302
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == member.pk
        assert photos(member) == ["hills"]
        assert not get_user_model().objects.filter(pk=guest_id).exists()

    @pytest.mark.parametrize("accounts", [[], ["city"]], ids=["moved", "joined"])
    def test_an_outer_atomic_commits(self, guest: Any, accounts: list[str]) -> None:
        member = make_registered_user()
        keyed_profile(guest, "guest's", "hills", cover="beach")
        if accounts:
            keyed_profile(member, "member's", *accounts)
        with transaction.atomic():
            link.link_guest(guest, member)
        assert photos(member) == sorted(["beach*", "hills", *accounts])

    @pytest.mark.parametrize("atomic", [True, False], ids=["atomic-requests", "autocommit"])
    def test_a_broken_foreign_key_fails_the_link_not_the_login(
        self, atomic: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic)
        member = make_registered_user()
        client, guest_id = guest_browser_with("kept")
        keyed_profile(get_user_model().objects.get(pk=guest_id), "guest's", "hills")
        with connected(signals.guest_linking, delete_the_profile_behind_djangos_back):
            response = log_in(client, member)
        assert response.status_code == 302
        assert client.get("/auth/anonymous/session/").json()["user"]["id"] == member.pk
        assert "linking guest" in caplog.text
        assert Guest.objects.filter(user_id=guest_id).exists()
        assert Note.objects.get().author_id == guest_id
        assert KeyedProfile.objects.get().pk == guest_id
        assert ProfilePhoto.objects.get().profile_id == guest_id

    def test_a_broken_foreign_key_fails_inside_the_link(self, guest: Any) -> None:
        member, guest_id = make_registered_user(), guest.pk
        keyed_profile(guest, "guest's", "hills")
        with transaction.atomic():
            with (
                connected(signals.guest_linking, delete_the_profile_behind_djangos_back),
                pytest.raises(IntegrityError),
            ):
                link.link_guest(guest, member)
            Note.objects.create(author=member, text="the outer transaction goes on")
        assert Note.objects.get().author == member
        assert ProfilePhoto.objects.get().profile_id == guest_id
        assert Guest.objects.filter(user_id=guest_id).exists()


# Expression UniqueConstraints: Tag allows one name per owner whatever its case, and one
# pinned tag per colour whatever its case.


def tags(user: Any) -> list[str]:
    return sorted(Tag.objects.filter(owner=user).values_list("name", flat=True))


class TestNullsNotDistinct:
    """``UniqueConstraint(nulls_distinct=False)``: a NULL collides with a NULL (the
    database enforces it where it can, PostgreSQL 15 on; the model says so everywhere)."""

    def badges(self, user: Any) -> list[tuple[int | None, str]]:
        rows = Badge.objects.filter(owner=user).values_list("level", "label")
        return sorted(rows, key=lambda row: (row[0] or 0, row[1]))

    def test_a_null_collides_with_a_null(self, guest: Any, member: Any) -> None:
        Badge.objects.create(owner=guest, level=None, label="guest's")  # collides
        Badge.objects.create(owner=guest, level=3, label="gold")
        Badge.objects.create(owner=member, level=None, label="member's")
        result = link.link_guest(guest, member)
        assert self.badges(member) == [(None, "member's"), (3, "gold")]
        assert result.dropped == {"linkapp.Badge.owner": 1}

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Badge.owner": "keep_guest"})
    def test_keep_guest(self, guest: Any, member: Any) -> None:
        Badge.objects.create(owner=guest, level=None, label="guest's")
        Badge.objects.create(owner=member, level=None, label="member's")
        link.link_guest(guest, member)
        assert self.badges(member) == [(None, "guest's")]


class TestExpressionUniqueConstraints:
    def test_lower(self, guest: Any, member: Any) -> None:
        Tag.objects.create(owner=guest, name="Teapot")  # collides with the account's
        Tag.objects.create(owner=guest, name="Kettle")
        Tag.objects.create(owner=member, name="teapot")
        result = link.link_guest(guest, member)
        assert tags(member) == ["Kettle", "teapot"]
        assert result.moved == {"linkapp.Tag.owner": 1}
        assert result.dropped == {"linkapp.Tag.owner": 1}

    def test_with_a_condition(self, guest: Any, member: Any) -> None:
        Tag.objects.create(owner=guest, name="a", colour="Red", pinned=True)  # collides
        Tag.objects.create(owner=guest, name="b", colour="RED")  # outside the condition
        Tag.objects.create(owner=guest, name="c", colour="blue", pinned=True)  # no twin
        Tag.objects.create(owner=member, name="m", colour="red", pinned=True)
        result = link.link_guest(guest, member)
        assert tags(member) == ["b", "c", "m"]
        assert result.moved == {"linkapp.Tag.owner": 2}
        assert result.dropped == {"linkapp.Tag.owner": 1}

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Tag.owner": "keep_guest"})
    def test_keep_guest(self, guest: Any, member: Any) -> None:
        Tag.objects.create(owner=guest, name="Teapot")
        Tag.objects.create(owner=member, name="teapot")
        Tag.objects.create(owner=member, name="Mug")
        link.link_guest(guest, member)
        assert tags(member) == ["Mug", "Teapot"]

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Tag.owner": "error"})
    def test_error_policy(self, guest: Any, member: Any) -> None:
        Tag.objects.create(owner=guest, name="Teapot")
        Tag.objects.create(owner=member, name="teapot")
        with pytest.raises(LinkConflict):
            link.link_guest(guest, member)
        assert (tags(guest), tags(member)) == (["Teapot"], ["teapot"])

    def test_the_user_field_inside_an_expression(self, guest: Any, member: Any) -> None:
        """``Lower(Concat(Cast("owner"), "/", "slug"))``: the guest's row is compared as
        it will be once moved, its owner read as the account."""
        Page.objects.create(owner=guest, slug="Home")  # collides with the account's
        Page.objects.create(owner=guest, slug="About")
        Page.objects.create(owner=member, slug="home")
        result = link.link_guest(guest, member)
        assert sorted(Page.objects.filter(owner=member).values_list("slug", flat=True)) == [
            "About",
            "home",
        ]
        assert result.dropped == {"linkapp.Page.owner": 1}

    @isolate_apps("tests.linkapp")
    def test_expressions_it_cannot_compare_are_left_out(self) -> None:
        """``RawSQL`` may read any column: its constraint is not resolved (a row that breaks
        it fails the link, rolled back). One that does not read the user field cannot
        break by a move."""

        class Sticker(models.Model):
            owner = models.ForeignKey(get_user_model(), models.CASCADE, related_name="+")
            name = models.CharField(max_length=20)

            class Meta:
                app_label = "linkapp"
                constraints = [
                    models.UniqueConstraint(RawSQL("lower(name)", ()), "owner", name="raw"),
                    models.UniqueConstraint(Lower("name"), name="everyone"),
                    models.UniqueConstraint(Lower("name").desc(), "owner_id", name="desc"),
                ]

            def __str__(self) -> str:
                return self.name

        sets = link.unique_sets(Sticker, "owner")
        assert [(list(s.fields), list(s.expressions)) for s in sets] == [([], [Lower("name")])]

    def test_at_sign_in_the_guests_other_tags_become_the_accounts(self, member: Any) -> None:
        client, guest_id = guest_browser_with("n")
        Tag.objects.create(owner_id=guest_id, name="Teapot")
        Tag.objects.create(owner_id=guest_id, name="Kettle")
        Tag.objects.create(owner=member, name="teapot")
        log_in(client, member)
        assert tags(member) == ["Kettle", "teapot"]
        assert Note.objects.get().author == member
        assert not Guest.objects.filter(user_id=guest_id).exists()
