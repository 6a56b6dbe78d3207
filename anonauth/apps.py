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
        from django.test.signals import setting_changed

        from anonauth import audit, checks, metrics, observe, receivers, signals, upgrade

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
        for event, logs in (
            (signals.guest_upgraded, observe.on_guest_upgraded),
            (signals.guest_linked, observe.on_guest_linked),
        ):
            event.connect(logs, dispatch_uid=f"anonauth.observe.{logs.__name__}")
        setting_changed.connect(metrics.on_setting_changed, dispatch_uid="anonauth.metrics")
        metrics.sync()
