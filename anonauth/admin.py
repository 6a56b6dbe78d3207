"""Admin for guests: when each was created and last seen, and a stale filter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from anonauth.conf import conf
from anonauth.models import Guest
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
else:
    _ModelAdmin = admin.ModelAdmin


@admin.register(Guest)
class GuestAdmin(_ModelAdmin):
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
        message = ngettext(
            "Purged %(purged)d of %(selected)d selected guest (only stale ones go).",
            "Purged %(purged)d of %(selected)d selected guests (only stale ones go).",
            selected,
        ) % {"purged": result.purged, "selected": selected}
        self.message_user(request, message, messages.SUCCESS)
        if result.blocked:
            kept = ", ".join(sorted(result.blocked_by))
            self.message_user(
                request,
                _("%(count)d kept: other data protects them (%(relations)s).")
                % {"count": result.blocked, "relations": kept},
                messages.WARNING,
            )
