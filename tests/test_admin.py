from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, RequestFactory
from django.utils import timezone

from anonauth.admin import GuestAdmin
from anonauth.guests import create_guest
from anonauth.models import Guest
from anonauth.test import make_registered_user
from tests.purge_helpers import exists, make_guest, make_member
from tests.testapp.models import Invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(
        make_registered_user(email="boss@example.com", is_staff=True, is_superuser=True)
    )
    return client


@pytest.fixture
def two_guests() -> tuple[Any, Any]:
    fresh, stale = create_guest(), create_guest()
    Guest.objects.filter(user=stale).update(last_seen=timezone.now() - timedelta(days=31))
    return fresh, stale


def changelist(client: Client, settings: Any, query: str = "") -> str:
    response = client.get(f"/admin/anonauth/guest/{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_changelist_lists_guests(staff: Client, two_guests: tuple[Any, Any], settings: Any) -> None:
    page = changelist(staff, settings)
    for guest in two_guests:
        assert guest.get_username() in page


def test_stale_filter(staff: Client, two_guests: tuple[Any, Any], settings: Any) -> None:
    fresh, stale = two_guests
    stale_page = changelist(staff, settings, "?stale=yes")
    assert stale.get_username() in stale_page
    assert fresh.get_username() not in stale_page
    active_page = changelist(staff, settings, "?stale=no")
    assert fresh.get_username() in active_page
    assert stale.get_username() not in active_page


def test_search_by_username(staff: Client, two_guests: tuple[Any, Any], settings: Any) -> None:
    fresh, stale = two_guests
    page = changelist(staff, settings, f"?q={fresh.get_username()}")
    assert fresh.get_username() in page
    assert stale.get_username() not in page


def test_guests_are_not_added_by_hand(staff: Client, settings: Any) -> None:
    assert staff.get("/admin/anonauth/guest/add/").status_code == 403


def test_the_admin_login_links_a_guest(browser: Client, settings: Any) -> None:
    """The admin's login is Django's login(): a guest signing in there is linked."""
    from tests.linkapp.models import Note

    guest_id = browser.get("/guest-fn/").json()["id"]
    Note.objects.create(author_id=guest_id, text="from the guest")
    staff_user = make_registered_user(email="boss@example.com", is_staff=True, is_superuser=True)
    response = browser.post(
        "/admin/login/",
        {"username": staff_user.get_username(), "password": "correct-horse-42", "next": "/admin/"},
    )
    assert response.status_code == 302
    assert Note.objects.get().author == staff_user
    assert not Guest.objects.exists()


class TestPurgeAction:
    def test_purges_the_stale_among_the_selected(self, rf: RequestFactory) -> None:
        stale, other_stale, fresh = make_guest(), make_guest(), make_guest(days_ago=1)
        protected = make_guest()
        Invoice.objects.create(customer=protected)
        request = rf.post("/")
        request._messages = CookieStorage(request)  # type: ignore[attr-defined]
        selected = Guest.objects.filter(pk__in=[stale.pk, fresh.pk, protected.pk])

        GuestAdmin(Guest, admin.site).purge_selected(request, selected)

        assert (exists(stale), exists(other_stale), exists(fresh)) == (False, True, True)
        assert exists(protected)
        assert [str(m) for m in request._messages] == [  # type: ignore[attr-defined]
            "Purged 1 of 3 selected guests (only stale ones go).",
            "1 kept: other data protects them (testapp.Invoice.customer).",
        ]

    def test_is_offered_to_those_who_may_delete(self, rf: RequestFactory) -> None:
        request = rf.get("/")
        request.user = make_member(is_staff=True, is_superuser=True)
        assert "purge_selected" in GuestAdmin(Guest, admin.site).get_actions(request)


# The admin's rough edges (the release-ready issue): names, read-only guests, the list's
# width, the activity page's series and its localisation, guests in the user admin.


def test_the_app_and_the_model_have_different_names(staff: Client) -> None:
    from django.apps import apps

    assert apps.get_app_config("anonauth").verbose_name == "Guest users"
    page = staff.get("/admin/anonauth/guest/").content.decode()
    # Django 5.2: <div class="breadcrumbs">; Django 6: <ol class="breadcrumbs">.
    match = re.search(r'<(div|ol) class="breadcrumbs">(.*?)</\1>', page, re.DOTALL)
    assert match is not None, page
    breadcrumbs = match.group(2)
    assert "Guest users</a>" in breadcrumbs
    assert "Guests</a>" not in breadcrumbs  # not "Home > Guests > Guests"


def test_a_guest_is_view_only(staff: Client) -> None:
    guest = create_guest()
    url = f"/admin/anonauth/guest/{guest.pk}/change/"
    page = staff.get(url).content.decode()
    assert "View guest" in page
    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page
    assert "Close" in page
    assert f"/admin/anonauth/guest/{guest.pk}/delete/" in page  # deleting stays possible
    assert staff.post(url, {"last_seen": "2000-01-01"}).status_code == 403
    assert Guest.objects.get().last_seen.year != 2000


def test_the_guest_list_has_short_columns(staff: Client) -> None:
    guest = create_guest()
    Guest.objects.filter(user=guest).update(last_seen=timezone.now() - timedelta(hours=3))
    page = changelist(staff, None)
    assert "3\xa0hours ago" in page  # not a full date and time: it fits beside the filters
    assert 'title="' in page.split('class="field-seen"')[1].split("</td>")[0]
    create_guest()
    assert "just now" in changelist(staff, None)  # not "0 minutes ago"


def test_the_guest_list_sorts_by_the_short_columns(
    staff: Client, two_guests: tuple[Any, Any]
) -> None:
    fresh, stale = two_guests
    page = changelist(staff, None, "?o=3")  # the "last seen" column, oldest first
    assert page.index(stale.get_username()) < page.index(fresh.get_username())


class TestTransferCodeAdmin:
    def test_codes_are_listed_without_their_digest(self, staff: Client, rf: Any) -> None:
        from anonauth import transfer
        from anonauth.models import TransferCode

        guest = create_guest()
        request = rf.post("/")
        request.user, request.session = guest, SessionStore()
        transfer.issue(request)
        row = TransferCode.objects.get()
        page = staff.get("/admin/anonauth/transfercode/").content.decode()
        assert guest.get_username() in page
        assert "field-expires_at" in page
        assert "field-created_at" in page
        detail = staff.get(f"/admin/anonauth/transfercode/{row.pk}/change/").content.decode()
        assert guest.get_username() in detail
        assert row.digest not in page + detail
        assert row.digest[:16] not in page + detail

    def test_codes_are_read_only(self, staff: Client) -> None:
        from anonauth.models import TransferCode

        row = TransferCode.objects.create(
            guest_id=create_guest().pk, digest="d" * 64, expires_at=timezone.now()
        )
        url = f"/admin/anonauth/transfercode/{row.pk}/change/"
        page = staff.get(url).content.decode()
        assert 'name="_save"' not in page
        assert staff.get("/admin/anonauth/transfercode/add/").status_code == 403
        later = timezone.now() + timedelta(days=9)
        assert staff.post(url, {"expires_at": later.isoformat()}).status_code == 403
        assert TransferCode.objects.get().expires_at < later


class TestActivityPage:
    def test_every_total_has_its_series(self, staff: Client) -> None:
        from anonauth.admin import CHART_KINDS
        from anonauth.models import AuditEvent

        for kind, _label in AuditEvent.KINDS:
            AuditEvent.objects.create(kind=kind)
        page = staff.get("/admin/anonauth/guest/activity/").content.decode()
        assert set(CHART_KINDS) == {kind for kind, _label in AuditEvent.KINDS}
        assert page.count("<rect ") == len(CHART_KINDS)  # deleted has bars, like its total
        totals = page.split('id="activity-totals"')[1].split("</table>")[0]
        assert totals.count("<th ") == totals.count("<td>") == len(CHART_KINDS)
        legend = page.split('class="activity-legend"')[1].split("</p>")[0]
        assert all(str(label) in legend for _kind, label in AuditEvent.KINDS)

    def test_days_are_formatted_in_the_language_of_the_page(
        self, staff: Client, settings: Any
    ) -> None:
        from django.utils import translation
        from django.utils.formats import date_format

        from anonauth.models import AuditEvent

        AuditEvent.objects.create(kind=AuditEvent.CREATED, count=1234)
        settings.LANGUAGE_CODE = "de"
        settings.USE_THOUSAND_SEPARATOR = True
        page = staff.get("/admin/anonauth/guest/activity/").content.decode()
        with translation.override("de"):
            today = date_format(timezone.localdate(), "MONTH_DAY_FORMAT")
        assert "Dezember" in today or "." in today  # a German day, e.g. "2. Dezember"
        assert f">{today}</text>" in page  # the last day's label
        assert f"<title>{today}: 1.234 " in page  # the bar's tooltip: a German number
        assert 'x="-4"' in page  # the SVG's coordinates are never localised
        assert '<html lang="de"' in page  # the admin itself speaks German


@pytest.mark.auth_user_only  # Django's UserAdmin is for auth.User
class TestUserAdmin:
    def test_guests_are_marked_and_filtered(self, staff: Client) -> None:
        guest = create_guest()
        member = make_registered_user(email="ada@example.com")
        page = staff.get("/admin/auth/user/").content.decode()
        assert "column-is_guest" in page
        assert "By guest" in page
        guests_only = staff.get("/admin/auth/user/?guest=yes").content.decode()
        assert guest.get_username() in guests_only
        assert member.get_username() not in guests_only
        registered = staff.get("/admin/auth/user/?guest=no").content.decode()
        assert guest.get_username() not in registered
        assert member.get_username() in registered

    def test_the_column_costs_no_query_per_row(self, staff: Client) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        create_guest()
        with CaptureQueriesContext(connection) as few:
            staff.get("/admin/auth/user/")
        for _ in range(5):
            create_guest()
            make_registered_user(email=f"user{_}@example.com")
        with CaptureQueriesContext(connection) as many:
            staff.get("/admin/auth/user/")
        assert len(many) == len(few)

    def test_djangos_user_admin_is_extended_on_the_default_site(self) -> None:
        from django.contrib.auth import get_user_model

        from anonauth.admin import GuestListFilter, GuestUserAdminMixin

        model_admin = admin.site._registry[get_user_model()]
        assert isinstance(model_admin, GuestUserAdminMixin)
        request = RequestFactory().get("/")
        assert model_admin.get_list_display(request)[:2] == ["username", "is_guest"]
        assert GuestListFilter in model_admin.get_list_filter(request)

    def test_a_projects_own_user_admin_is_left_alone(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.admin import UserAdmin

        from anonauth.admin import GuestUserAdminMixin, add_guests_to_user_admin

        class ProjectUserAdmin(UserAdmin):  # type: ignore[type-arg]
            list_display = ("username", "email")

        site = admin.AdminSite(name="project")
        site.register(get_user_model(), ProjectUserAdmin)
        assert not add_guests_to_user_admin(site)
        assert type(site._registry[get_user_model()]) is ProjectUserAdmin

        plain = admin.AdminSite(name="plain")
        plain.register(get_user_model(), UserAdmin)
        assert add_guests_to_user_admin(plain)
        assert isinstance(plain._registry[get_user_model()], GuestUserAdminMixin)
        assert not add_guests_to_user_admin(admin.AdminSite(name="empty"))

    def test_the_mixin_on_a_custom_user_admin(self, rf: RequestFactory) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.admin import UserAdmin

        from anonauth.admin import GuestListFilter, GuestUserAdminMixin

        class ProjectUserAdmin(GuestUserAdminMixin, UserAdmin):  # type: ignore[type-arg]
            list_display = ("username", "is_guest", "email")
            list_filter = ("is_staff", GuestListFilter)

        guest, member = create_guest(), make_registered_user(email="ada@example.com")
        model_admin = ProjectUserAdmin(get_user_model(), admin.AdminSite(name="custom"))
        request = rf.get("/")
        assert model_admin.get_list_display(request) == ["username", "is_guest", "email"]
        assert model_admin.get_list_filter(request) == ["is_staff", GuestListFilter]
        users = {user.pk: user for user in model_admin.get_queryset(request)}
        assert model_admin.is_guest(users[guest.pk]) is True
        assert model_admin.is_guest(users[member.pk]) is False
