from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from anonauth import audit, signals
from anonauth.guests import create_guest
from anonauth.link import link_guest
from anonauth.models import AuditEvent
from anonauth.test import guest_client, make_registered_user

pytestmark = pytest.mark.django_db


def events() -> list[tuple[str, str, int]]:
    return list(AuditEvent.objects.order_by("pk").values_list("kind", "method", "count"))


class TestRecording:
    def test_created_linked(self, django_capture_on_commit_callbacks: Any, member: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            guest = create_guest()
        with django_capture_on_commit_callbacks(execute=True):
            link_guest(guest, member)
        assert events() == [("created", "", 1), ("linked", "", 1)]

    def test_upgraded_with_its_method(self, django_capture_on_commit_callbacks: Any) -> None:
        from anonauth.upgrade import upgrade_guest

        guest = create_guest()
        with django_capture_on_commit_callbacks(execute=True):
            upgrade_guest(guest, email="ada@example.com", password="correct-horse-42")
        # the creation's event is written in the creation's own transaction
        assert events() == [("created", "", 1), ("upgraded", "password", 1)]

    def test_deleted_through_the_api(self, django_capture_on_commit_callbacks: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            client = guest_client()
            assert client.post("/auth/anonymous/delete/").status_code == 204
        assert events() == [("created", "", 1), ("deleted", "", 1)]

    def test_purged_batches_carry_their_count(self) -> None:
        signals.guests_purged.send(AuditEvent, user_ids=[1, 2, 3])
        signals.guests_purged.send(AuditEvent, user_ids=[])
        assert events() == [("purged", "", 3)]

    def test_no_personal_data(self) -> None:
        fields = {f.name for f in AuditEvent._meta.get_fields()}
        assert fields == {"id", "kind", "method", "count", "at"}

    @override_settings(ANONAUTH_AUDIT=False)
    def test_switched_off(self, django_capture_on_commit_callbacks: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            create_guest()
        assert events() == []

    def test_a_rolled_back_creation_records_nothing(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        from django.db import transaction

        def create_then_fail() -> None:
            with transaction.atomic():
                create_guest()
                raise RuntimeError("rolled back")

        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(RuntimeError, match="rolled back"),
        ):
            create_then_fail()
        assert callbacks == []
        assert events() == []

    def test_logout_deletion_is_recorded(self, django_capture_on_commit_callbacks: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            client = guest_client()
            client.post("/accounts/logout/")
        assert [kind for kind, _m, _c in events()] == ["created", "deleted"]


def at_days_ago(days: int, kind: str, count: int = 1, method: str = "") -> None:
    AuditEvent.objects.create(
        kind=kind, count=count, method=method, at=timezone.now() - timedelta(days=days)
    )


class TestActivity:
    def test_sums_per_day_and_kind(self) -> None:
        at_days_ago(0, "created", 1)
        at_days_ago(0, "created", 1)
        at_days_ago(0, "purged", 40)
        at_days_ago(3, "upgraded", method="social")
        at_days_ago(45, "created")  # outside the window
        series = audit.activity(days=30)
        assert len(series) == 30
        assert series[-1].day == timezone.localdate()
        assert (series[-1]["created"], series[-1]["purged"]) == (2, 40)
        assert series[-4]["upgraded"] == 1
        assert audit.totals(series)["created"] == 2

    def test_conversion_rate(self) -> None:
        assert audit.conversion_rate(audit.activity()) is None
        at_days_ago(1, "created", 4)
        at_days_ago(1, "upgraded")
        at_days_ago(2, "linked")
        assert audit.conversion_rate(audit.activity()) == 0.5


class TestAdminPage:
    @pytest.fixture
    def staff(self) -> Client:
        client = Client()
        client.force_login(
            make_registered_user(email="boss@example.com", is_staff=True, is_superuser=True)
        )
        return client

    def test_chart_and_rate(self, staff: Client) -> None:
        at_days_ago(0, "created", 4)
        at_days_ago(0, "linked", 1)
        at_days_ago(2, "upgraded", 1)
        page = staff.get("/admin/anonauth/guest/activity/").content.decode()
        assert 'id="activity-chart"' in page
        assert page.count("<rect ") == 3  # one bar per non-empty day and kind
        assert '<strong id="conversion-rate">50%</strong>' in page
        assert "cdn" not in page.lower()
        assert "<script" not in page.split('id="content-main"')[1]

    def test_linked_from_the_guest_list(self, staff: Client) -> None:
        page = staff.get("/admin/anonauth/guest/").content.decode()
        assert "/admin/anonauth/guest/activity/" in page

    def test_needs_view_permission(self) -> None:
        client = Client()
        client.force_login(make_registered_user(email="clerk@example.com", is_staff=True))
        assert client.get("/admin/anonauth/guest/activity/").status_code == 403

    def test_anonymous_goes_to_the_admin_login(self) -> None:
        response = Client().get("/admin/anonauth/guest/activity/")
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]

    def test_events_are_read_only_in_the_admin(self, staff: Client) -> None:
        at_days_ago(0, "created")
        assert staff.get("/admin/anonauth/auditevent/").status_code == 200
        assert staff.get("/admin/anonauth/auditevent/add/").status_code == 403
