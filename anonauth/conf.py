"""anonauth's settings: one typed property per ``ANONAUTH_*`` setting, read live.

Nothing is written onto ``django.conf.settings``; every property reads the project's
value on each access so ``override_settings`` works in tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings

DEFAULT_BLOCKED_USER_AGENTS: tuple[str, ...] = (
    r"^\s*$",  # no user agent at all
    r"bot\b",
    r"bot/",
    r"crawl",
    r"spider",
    r"slurp",
    r"facebookexternalhit",
    r"preview",
    r"monitor",
    r"^curl/",
    r"^wget/",
    r"^python-requests/",
    r"^python-urllib/",
    r"^python-httpx/",
    r"^aiohttp/",
    r"^go-http-client/",
    r"^java/",
    r"^okhttp/",
    r"^apache-httpclient/",
    r"^libwww-perl/",
    r"^scrapy/",
    r"^httpie/",
    r"^postmanruntime/",
)

# Framework tables whose rows belong to the account: never moved from a guest on link.
DEFAULT_LINK_EXCLUDE: tuple[str, ...] = (
    "anonauth.Guest.user",
    "admin.LogEntry.user",
    "account.EmailAddress.user",
    "socialaccount.SocialAccount.user",
    "mfa.Authenticator.user",
    "usersessions.UserSession.user",
    "authtoken.Token.user",
)


class Settings:
    """Typed, live view of the ``ANONAUTH_*`` settings with their defaults."""

    def _get(self, name: str, default: Any) -> Any:
        return getattr(settings, f"ANONAUTH_{name}", default)

    @property
    def ENABLED(self) -> bool:
        value: bool = self._get("ENABLED", True)
        return value

    @property
    def BLOCKED_USER_AGENTS(self) -> Sequence[str]:
        value: Sequence[str] = self._get("BLOCKED_USER_AGENTS", DEFAULT_BLOCKED_USER_AGENTS)
        return value

    @property
    def REQUIRE_COOKIE(self) -> bool:
        value: bool = self._get("REQUIRE_COOKIE", True)
        return value

    @property
    def RATE_LIMIT(self) -> str | None:
        value: str | None = self._get("RATE_LIMIT", "30/m")
        return value

    @property
    def CAPTCHA_VERIFIER(self) -> str | None:
        value: str | None = self._get("CAPTCHA_VERIFIER", None)
        return value

    @property
    def SESSION_AGE(self) -> int:
        value: int = self._get("SESSION_AGE", int(timedelta(days=30).total_seconds()))
        return value

    @property
    def TOUCH_INTERVAL(self) -> int:
        value: int = self._get("TOUCH_INTERVAL", int(timedelta(hours=1).total_seconds()))
        return value

    @property
    def MAX_AGE(self) -> timedelta:
        value: timedelta | int = self._get("MAX_AGE", timedelta(days=30))
        return value if isinstance(value, timedelta) else timedelta(seconds=value)

    @property
    def EMAIL_DOMAIN(self) -> str:
        value: str = self._get("EMAIL_DOMAIN", "guest.invalid")
        return value

    @property
    def USERNAME_GENERATOR(self) -> str:
        value: str = self._get("USERNAME_GENERATOR", "anonauth.guests.generate_username")
        return value

    @property
    def DELETE_ON_LOGOUT(self) -> bool:
        value: bool = self._get("DELETE_ON_LOGOUT", True)
        return value

    @property
    def REGISTER_URL(self) -> str | None:
        value: str | None = self._get("REGISTER_URL", None)
        return value

    @property
    def LINK_REASSIGN(self) -> str | Sequence[str]:
        value: str | Sequence[str] = self._get("LINK_REASSIGN", "all")
        return value

    @property
    def LINK_EXCLUDE(self) -> Sequence[str]:
        value: Sequence[str] = self._get("LINK_EXCLUDE", DEFAULT_LINK_EXCLUDE)
        return value

    @property
    def LINK_CONFLICTS(self) -> Mapping[str, str]:
        value: Mapping[str, str] = self._get("LINK_CONFLICTS", {})
        return value

    @property
    def LINK_DELETE_GUEST(self) -> bool:
        value: bool = self._get("LINK_DELETE_GUEST", True)
        return value

    @property
    def LINK_RATE_LIMIT(self) -> str | None:
        value: str | None = self._get("LINK_RATE_LIMIT", "5/m")
        return value

    @property
    def UPGRADE_RATE_LIMIT(self) -> str | None:
        value: str | None = self._get("UPGRADE_RATE_LIMIT", "10/h")
        return value

    @property
    def TRUSTED_PROXIES(self) -> int:
        value: int = self._get("TRUSTED_PROXIES", 0)
        return value

    @property
    def PROBE_COOKIE_NAME(self) -> str:
        value: str = self._get("PROBE_COOKIE_NAME", "anonauth")
        return value

    @property
    def PURGE_SPARE(self) -> str | None:
        value: str | None = self._get("PURGE_SPARE", None)
        return value

    @property
    def PURGE_BATCH_SIZE(self) -> int:
        value: int = self._get("PURGE_BATCH_SIZE", 2000)
        return value

    @property
    def PURGE_LOCK_TIMEOUT(self) -> int:
        value: int = self._get("PURGE_LOCK_TIMEOUT", 600)
        return value

    @property
    def PURGE_SHARDS(self) -> int:
        value: int = self._get("PURGE_SHARDS", 1)
        return value

    @property
    def AUDIT(self) -> bool:
        value: bool = self._get("AUDIT", True)
        return value

    # Continuing on another device (anonauth.transfer)

    @property
    def TRANSFER_CODE_AGE(self) -> int:
        value: int = self._get("TRANSFER_CODE_AGE", 600)
        return value

    @property
    def TRANSFER_RATE_LIMIT(self) -> str | None:
        value: str | None = self._get("TRANSFER_RATE_LIMIT", "10/h")
        return value

    @property
    def TRANSFER_REDEEM_RATE_LIMIT(self) -> str | None:
        value: str | None = self._get("TRANSFER_REDEEM_RATE_LIMIT", "10/m")
        return value

    @property
    def TRANSFER_ENDS_FIRST_SESSION(self) -> bool:
        value: bool = self._get("TRANSFER_ENDS_FIRST_SESSION", False)
        return value

    @property
    def BEFORE_CREATE(self) -> str | None:
        value: str | None = self._get("BEFORE_CREATE", None)
        return value

    @property
    def LIVE_GUEST_CAP(self) -> int | None:
        value: int | None = self._get("LIVE_GUEST_CAP", None)
        return value

    # Data export (anonauth.export)

    @property
    def EXPORT_SERIALIZERS(self) -> Mapping[str, str]:
        value: Mapping[str, str] = self._get("EXPORT_SERIALIZERS", {})
        return value

    @property
    def EXPORT_RATE_LIMIT(self) -> str | None:
        value: str | None = self._get("EXPORT_RATE_LIMIT", "10/h")
        return value

    @property
    def METRICS(self) -> bool | str:
        value: bool | str = self._get("METRICS", False)
        return value

    @property
    def METADATA_MAX_BYTES(self) -> int | None:
        value: int | None = self._get("METADATA_MAX_BYTES", 1024)
        return value

    @property
    def METADATA_MAX_DEPTH(self) -> int:
        value: int = self._get("METADATA_MAX_DEPTH", 3)
        return value

    @property
    def EMAIL_GENERATOR(self) -> str:
        value: str = self._get("EMAIL_GENERATOR", "anonauth.guests.generate_email")
        return value


conf = Settings()
