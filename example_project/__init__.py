"""The example shop. Loads its Celery app (when Celery is installed) so that tasks sent
from the web process use its settings: eager without a broker, a worker with one."""

from __future__ import annotations

try:
    from example_project.celery import app as celery_app
except ImportError:  # pragma: no cover - Celery is an optional extra
    celery_app = None

__all__ = ["celery_app"]
