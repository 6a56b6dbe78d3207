"""Guest users for Django: created lazily, upgraded in place, linked, purged."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
