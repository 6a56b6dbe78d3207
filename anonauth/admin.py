"""Admin for guests: when each was created and last seen, a stale filter, the activity
chart, and a guest filter and column for the user model's own admin."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from anonauth import audit, db, export, guests
from anonauth.conf import conf
from anonauth.models import AuditEvent, Guest, TransferCode
from anonauth.purge import purge_guests

logger = logging.getLogger("anonauth")


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
    _CodeAdmin = admin.ModelAdmin[TransferCode]
else:
    _ModelAdmin = _EventAdmin = _CodeAdmin = admin.ModelAdmin


@admin.register(Guest)
class GuestAdmin(_ModelAdmin):
    """Guests, read-only: they are created by visitors and changed by anonauth alone."""

    change_list_template = "admin/anonauth/guest/change_list.html"
    # Short columns (a date, "3 hours ago"; the full time on hover), so the list fits
    # beside the admin's sidebar and the filters.
    list_display = ["user", "created", "seen", "is_stale"]
    list_filter = [StaleFilter]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    ordering = ["-last_seen"]
    readonly_fields = ["user", "created_at", "last_seen", "stored_metadata"]
    fields = ["user", "created_at", "last_seen", "stored_metadata"]
    actions = ["purge_selected", "export_selected"]

    @admin.display(description=_("metadata"))
    def stored_metadata(self, guest: Guest) -> str:
        """The guest's metadata as indented JSON (escaped: the client wrote it)."""
        text = json.dumps(guest.metadata, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre class="anonauth-metadata">{}</pre>', text)

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, guest: Guest) -> str:
        return _with_full_time(guest.created_at, date_format(_local(guest.created_at)))

    @admin.display(description=_("last seen"), ordering="last_seen")
    def seen(self, guest: Guest) -> str:
        if timezone.now() - guest.last_seen < timedelta(minutes=1):
            ago = gettext("just now")
        else:
            ago = gettext("%(time)s ago") % {"time": timesince(guest.last_seen, depth=1)}
        return _with_full_time(guest.last_seen, ago)

    @admin.display(boolean=True, description=_("stale"))
    def is_stale(self, guest: Guest) -> bool:
        return guest.last_seen < timezone.now() - conf.MAX_AGE

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [f"user__{get_user_model().USERNAME_FIELD}"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: the detail page is view-only (no Save buttons); delete stays."""
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

    @admin.action(description=_("Export data"), permissions=["export"])
    def export_selected(
        self, request: HttpRequest, queryset: QuerySet[Guest]
    ) -> StreamingHttpResponse:
        """Stream the selected guests' data exports as one JSON document."""
        user_ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        logger.info("anonauth: staff user %s exports %d guests", request.user.pk, len(user_ids))
        users = (user for pk in user_ids if (user := db.users().filter(pk=pk).first()))
        stream = export.ExportStream(export.export_users(users), f"{len(user_ids)} guests")
        return export.streaming_response(request, stream, export.filename())

    def has_export_permission(self, request: HttpRequest) -> bool:
        """Staff who may view (or change) users: the export shows all of a user's data."""
        opts = get_user_model()._meta
        return any(
            request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
            for action in ("view", "change")
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
            "totals": chart_totals(series),
            "conversion": None if rate is None else f"{rate:.0%}",
            "days": ACTIVITY_DAYS,
            "auditing": conf.AUDIT,
        }
        return TemplateResponse(request, "admin/anonauth/guest/activity.html", context)


def _local(moment: Any) -> Any:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def _with_full_time(moment: Any, text: str) -> str:
    """``text``, with the full local date and time as its tooltip."""
    full = date_format(_local(moment), "DATETIME_FORMAT")
    return format_html('<span title="{}">{}</span>', full, text)


ACTIVITY_DAYS = 30
# The kinds the activity page shows, in its order: each has a bar, a legend entry and a
# total (the totals table and the chart draw from this one list).
CHART_KINDS = (
    AuditEvent.CREATED,
    AuditEvent.UPGRADED,
    AuditEvent.LINKED,
    AuditEvent.PURGED,
    AuditEvent.DELETED,
    AuditEvent.TRANSFERRED,
)
CHART_COLOURS = {
    AuditEvent.CREATED: "#79aec8",
    AuditEvent.UPGRADED: "#5b9b3f",
    AuditEvent.LINKED: "#e0a100",
    AuditEvent.PURGED: "#b0b0b0",
    AuditEvent.DELETED: "#c4534a",
    AuditEvent.TRANSFERRED: "#8e6bbf",
}
KIND_LABELS = dict(AuditEvent.KINDS)  # translated
CHART_HEIGHT = 180
BAR_WIDTH = 5
DAY_WIDTH = len(CHART_KINDS) * BAR_WIDTH + 3
# Room around the plot: the y axis' numbers on the left, a day label's overhang right.
CHART_MARGIN = {"left": 36, "right": 44, "top": 6, "bottom": 24}


def bar_chart(series: list[audit.Day]) -> dict[str, Any]:
    """Geometry of a grouped bar chart (one group per day, one bar per kind), for SVG.

    Days are ``date`` objects and kinds carry their translated label: the template
    formats and localises them (``{{ day|date:"MONTH_DAY_FORMAT" }}``).
    """
    peak = max((day[kind] for day in series for kind in CHART_KINDS), default=0) or 1
    bars = []
    for index, day in enumerate(series):
        for offset, kind in enumerate(CHART_KINDS):
            height = round(day[kind] / peak * CHART_HEIGHT)
            bars.append(
                {
                    "x": index * DAY_WIDTH + 2 + offset * BAR_WIDTH,
                    "y": CHART_HEIGHT - height,
                    "height": height,
                    "colour": CHART_COLOURS[kind],
                    "day": day.day,
                    "count": day[kind],
                    "label": KIND_LABELS[kind],
                }
            )
    labels = [
        {"x": index * DAY_WIDTH + DAY_WIDTH // 2, "day": day.day}
        for index, day in enumerate(series)
        if index % 5 == 0 or index == len(series) - 1
    ]
    legend = [
        {"kind": kind, "label": KIND_LABELS[kind], "colour": CHART_COLOURS[kind]}
        for kind in CHART_KINDS
    ]
    width = len(series) * DAY_WIDTH
    margin = CHART_MARGIN
    return {
        "bars": bars,
        "labels": labels,
        "legend": legend,
        "peak": peak,
        "width": width,
        "bar_width": BAR_WIDTH - 1,
        "height": CHART_HEIGHT,
        "outer_width": margin["left"] + width + margin["right"],
        "outer_height": margin["top"] + CHART_HEIGHT + margin["bottom"],
        "origin": f"{-margin['left']} {-margin['top']}",
    }


def chart_totals(series: list[audit.Day]) -> list[dict[str, Any]]:
    """The total of each charted kind, in the chart's order, with its label and colour."""
    summed = audit.totals(series)
    return [
        {
            "kind": kind,
            "label": KIND_LABELS[kind],
            "colour": CHART_COLOURS[kind],
            "total": summed[kind],
        }
        for kind in CHART_KINDS
    ]


@admin.register(AuditEvent)
class AuditEventAdmin(_EventAdmin):
    list_display = ["at", "kind", "method", "count"]
    list_filter = ["kind"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TransferCode)
class TransferCodeAdmin(_CodeAdmin):
    """Live transfer codes, read-only: which guest, issued and expiring when. The digest
    is never shown (it is all that stands for a live code); deleting one revokes it."""

    list_display = ["guest", "created_at", "expires_at"]
    list_select_related = ["guest__user"]
    ordering = ["-created_at"]
    fields = ["guest", "created_at", "expires_at"]
    readonly_fields = ["guest", "created_at", "expires_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The user model's admin, where staff look for people: which users are guests.


class GuestListFilter(admin.SimpleListFilter):
    """A list filter for the user model's admin: guests, or registered users only."""

    title = _("guest")
    parameter_name = "guest"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Guests")), ("no", _("Registered users"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(anonauth_guest__isnull=False)
        if self.value() == "no":
            return queryset.filter(anonauth_guest__isnull=True)
        return queryset


class GuestUserAdminMixin:
    """Add to your user model's ``ModelAdmin``: an *is guest* column (after the first
    one) and :class:`GuestListFilter`, with the guest flag fetched by the list's own
    query (``select_related``), not one query per row::

        @admin.register(User)
        class UserAdmin(GuestUserAdminMixin, BaseUserAdmin): ...

    anonauth adds them by itself when the user model's admin is Django's own
    ``django.contrib.auth.admin.UserAdmin`` on the default site.
    """

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))  # type: ignore[misc]
        if "is_guest" in columns:
            return columns
        return [*columns[:1], "is_guest", *columns[1:]]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))  # type: ignore[misc]
        return filters if GuestListFilter in filters else [*filters, GuestListFilter]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        return queryset.select_related("anonauth_guest")

    @admin.display(boolean=True, description=_("guest"), ordering="anonauth_guest")
    def is_guest(self, user: Any) -> bool:
        return guests.is_guest(user)


def add_guests_to_user_admin(site: admin.AdminSite = admin.site) -> bool:
    """Re-register the user model on ``site`` with :class:`GuestUserAdminMixin`, if its
    admin there is exactly Django's ``UserAdmin``; return whether it did. A project's
    own user admin is left alone (add the mixin to it)."""
    from django.contrib.auth.admin import UserAdmin

    user_model = get_user_model()
    if type(site._registry.get(user_model)) is not UserAdmin:
        return False

    class GuestUserAdmin(GuestUserAdminMixin, UserAdmin):  # type: ignore[type-arg]
        pass

    site.unregister(user_model)
    site.register(user_model, GuestUserAdmin)
    return True


def _import_auth_admin() -> None:
    """Django's ``UserAdmin`` registers ``auth.User`` when its module is imported; import
    it first, so the order of ``INSTALLED_APPS`` does not matter."""
    from django.apps import apps

    if apps.is_installed("django.contrib.auth"):
        import django.contrib.auth.admin  # noqa: F401


_import_auth_admin()
add_guests_to_user_admin()
