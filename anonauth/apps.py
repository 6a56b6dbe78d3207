from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnonAuthConfig(AppConfig):
    name = "anonauth"
    verbose_name = _("Guest users")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth.signals import user_logged_in, user_logged_out
        from django.core import checks as django_checks
        from django.db.models.signals import post_save

        from anonauth import audit, checks, receivers, signals, upgrade

        django_checks.register(checks.check_settings)
        django_checks.register(checks.check_middleware)
        django_checks.register(checks.check_backends)
        django_checks.register(checks.check_caches, django_checks.Tags.caches)
        django_checks.register(checks.check_security, django_checks.Tags.security)
        user_logged_out.connect(
            receivers.delete_guest_on_logout, dispatch_uid="anonauth.delete_guest_on_logout"
        )
        post_save.connect(
            upgrade.end_guest_status_on_password,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="anonauth.end_guest_status_on_password",
        )
        user_logged_in.connect(
            receivers.link_guest_on_login, dispatch_uid="anonauth.link_guest_on_login"
        )
        for signal, receiver in (
            (signals.guest_upgraded, audit.on_guest_upgraded),
            (signals.guest_linked, audit.on_guest_linked),
            (signals.guest_deleted, audit.on_guest_deleted),
            (signals.guests_purged, audit.on_guests_purged),
        ):
            signal.connect(receiver, dispatch_uid=f"anonauth.audit.{receiver.__name__}")
