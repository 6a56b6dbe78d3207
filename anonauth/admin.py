"""Admin for guests: when each was created and last seen, and a stale filter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from anonauth import audit
from anonauth.conf import conf
from anonauth.models import AuditEvent, Guest
from anonauth.purge import purge_guests


class StaleFilter(admin.SimpleListFilter):
    """Guests not seen for ``ANONAUTH_MAX_AGE`` (the ones a purge would delete)."""

    title = _("activity")
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Stale")), ("no", _("Active"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        cutoff = timezone.now() - conf.MAX_AGE
        if self.value() == "yes":
            return queryset.filter(last_seen__lt=cutoff)
        if self.value() == "no":
            return queryset.filter(last_seen__gte=cutoff)
        return queryset


if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Guest]
    _EventAdmin = admin.ModelAdmin[AuditEvent]
else:
    _ModelAdmin = _EventAdmin = admin.ModelAdmin


@admin.register(Guest)
class GuestAdmin(_ModelAdmin):
    change_list_template = "admin/anonauth/guest/change_list.html"
    list_display = ["user", "created_at", "last_seen", "is_stale"]
    list_filter = [StaleFilter]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    ordering = ["-last_seen"]
    readonly_fields = ["user", "created_at", "last_seen"]
    fields = ["user", "created_at", "last_seen"]
    actions = ["purge_selected"]

    @admin.display(boolean=True, description=_("stale"))
    def is_stale(self, guest: Guest) -> bool:
        return guest.last_seen < timezone.now() - conf.MAX_AGE

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [f"user__{get_user_model().USERNAME_FIELD}"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Purge selected stale guests"), permissions=["delete"])
    def purge_selected(self, request: HttpRequest, queryset: QuerySet[Guest]) -> None:
        """Purge the stale guests among the selected ones, like ``purge_anonymous``."""
        selected = queryset.count()
        result = purge_guests(guests=queryset)
        if result.purged:
            message = ngettext(
                "Purged %(purged)d of %(selected)d selected guest (only stale ones go).",
                "Purged %(purged)d of %(selected)d selected guests (only stale ones go).",
                selected,
            ) % {"purged": result.purged, "selected": selected}
            self.message_user(request, message, messages.SUCCESS)
        else:
            message = ngettext(
                "The selected guest was not purged (only stale ones go).",
                "None of the %(selected)d selected guests was purged (only stale ones go).",
                selected,
            ) % {"selected": selected}
            self.message_user(request, message, messages.INFO)
        if result.blocked:
            kept = ", ".join(sorted(result.blocked_by))
            self.message_user(
                request,
                _("%(count)d kept: other data protects them (%(relations)s).")
                % {"count": result.blocked, "relations": kept},
                messages.WARNING,
            )

    def get_urls(self) -> list[URLPattern]:
        activity = self.admin_site.admin_view(self.activity_view)
        return [
            path("activity/", activity, name="anonauth_guest_activity"),
            *super().get_urls(),
        ]

    def activity_view(self, request: HttpRequest) -> TemplateResponse:
        """The last 30 days of guests created, upgraded, linked and purged, per day."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        series = audit.activity(days=ACTIVITY_DAYS)
        rate = audit.conversion_rate(series)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Guest activity"),
            "chart": bar_chart(series),
            "totals": audit.totals(series),
            "conversion": None if rate is None else f"{rate:.0%}",
            "days": ACTIVITY_DAYS,
            "auditing": conf.AUDIT,
        }
        return TemplateResponse(request, "admin/anonauth/guest/activity.html", context)


ACTIVITY_DAYS = 30
CHART_COLOURS = {
    AuditEvent.CREATED: "#79aec8",
    AuditEvent.UPGRADED: "#5b9b3f",
    AuditEvent.LINKED: "#e0a100",
    AuditEvent.PURGED: "#b0b0b0",
}
CHART_HEIGHT = 180
DAY_WIDTH = 28
BAR_WIDTH = 6


def bar_chart(series: list[audit.Day]) -> dict[str, Any]:
    """Geometry of a grouped bar chart (one group per day, one bar per kind), for SVG."""
    peak = max((day[kind] for day in series for kind in audit.CHART_KINDS), default=0) or 1
    bars = []
    for index, day in enumerate(series):
        for offset, kind in enumerate(audit.CHART_KINDS):
            height = round(day[kind] / peak * CHART_HEIGHT)
            bars.append(
                {
                    "x": index * DAY_WIDTH + 2 + offset * BAR_WIDTH,
                    "y": CHART_HEIGHT - height,
                    "height": height,
                    "colour": CHART_COLOURS[kind],
                    "title": f"{day.day:%b %d}: {day[kind]} {kind}",
                }
            )
    labels = [
        {"x": index * DAY_WIDTH + DAY_WIDTH // 2, "text": f"{day.day:%b %d}"}
        for index, day in enumerate(series)
        if index % 5 == 0 or index == len(series) - 1
    ]
    legend = [{"kind": kind, "colour": CHART_COLOURS[kind]} for kind in audit.CHART_KINDS]
    return {
        "bars": bars,
        "labels": labels,
        "legend": legend,
        "peak": peak,
        "width": len(series) * DAY_WIDTH,
        "bar_width": BAR_WIDTH - 1,
        "height": CHART_HEIGHT,
    }


@admin.register(AuditEvent)
class AuditEventAdmin(_EventAdmin):
    list_display = ["at", "kind", "method", "count"]
    list_filter = ["kind"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
