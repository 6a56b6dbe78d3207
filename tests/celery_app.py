"""The Celery app of the worker test: broker and results at ``CELERY_BROKER_URL``.

Started as ``celery -A tests.celery_app worker``; Celery's Django fix-up sets Django up
from ``DJANGO_SETTINGS_MODULE`` before the task module is imported.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")

app = Celery("anonauth_tests", include=["anonauth.tasks"])
app.conf.update(
    broker_url=BROKER_URL,
    result_backend=BROKER_URL if BROKER_URL.startswith("redis") else "cache+memory://",
    task_default_queue=os.environ.get("ANONAUTH_TEST_QUEUE", "anonauth-tests"),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
