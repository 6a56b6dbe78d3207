"""The child process of ``tests/test_faults.py``'s killed-worker test.

A separate module that imports nothing from Django at import time: a ``spawn`` child
imports its target's module before Django is set up, so the target cannot live in a test
module. The child sets Django up on the parent's *test* database, links a guest and
hangs inside the link's transaction until the parent kills it.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any

# The child never outlives a parent that forgot it for longer than this.
HANG_SECONDS = 60.0


def link_and_hang(
    settings_module: str,
    database_name: str,
    guest_pk: Any,
    account_pk: Any,
    hook: str,
    reached: Any,
    report: Any,
) -> None:
    """Link ``guest_pk`` into ``account_pk``; at ``hook`` tell the parent and hang.

    ``settings_module`` is the parent's (``tests.settings``, or the email-user run's),
    ``database_name`` the parent's test database.

    ``hook`` is ``"linking"`` (a ``guest_linking`` receiver that first moves the guest's
    notes itself) or ``"deleting"`` (a ``pre_delete`` of the guest, after every relation
    was moved). ``report`` gets ``("backend", pid)`` (the PostgreSQL backend's process
    id), then ``("error", traceback)`` if anything fails before the hang.
    """
    try:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
        from django.conf import settings

        # Before any connection: the parent's test database, not the one DATABASE_URL names.
        settings.DATABASES["default"]["NAME"] = database_name
        import django

        django.setup()

        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.db.models.signals import pre_delete

        from anonauth.link import link_guest
        from anonauth.signals import guest_linking
        from anonauth.test import connected
        from tests.linkapp.models import Note

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            report.put(("backend", cursor.fetchone()[0]))

        model = get_user_model()
        guest = model._default_manager.get(pk=guest_pk)
        account = model._default_manager.get(pk=account_pk)

        def hang(**kwargs: Any) -> None:
            if hook == "linking":  # a receiver that moves some rows itself first
                Note.objects.filter(author=kwargs["guest"]).update(author=kwargs["user"])
            reached.set()
            time.sleep(HANG_SECONDS)
            raise RuntimeError("the parent never killed the child")

        if hook == "linking":
            with connected(guest_linking, hang):
                link_guest(guest, account)
        else:
            with connected(pre_delete, hang, sender=model):
                link_guest(guest, account)
    except BaseException:
        report.put(("error", traceback.format_exc()))
        raise
