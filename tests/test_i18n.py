"""Translations: every API error answers in the request's language (``LocaleMiddleware``),
and the catalogues in ``anonauth/locale`` are complete and compiled.

The German texts below are those of ``anonauth/locale/de`` (DRF's and Django's own for
``not_authenticated`` and the password validators' messages).
"""

from __future__ import annotations

import ast
import gettext
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.exceptions import RequestDataTooBig
from django.core.management import call_command
from django.db import DatabaseError
from django.test import Client, override_settings
from django.utils import translation
from rest_framework.renderers import JSONRenderer

import anonauth
from anonauth.conf import conf
from anonauth.exceptions import (
    AnonAuthError,
    CreationRefused,
    LinkFailed,
    PasswordInvalid,
    UsernameInUse,
)
from anonauth.test import BROWSER_USER_AGENT, guest_client, make_registered_user
from anonauth.upgrade import check_password
from anonauth.views import STATUS_BY_CODE, exception_handler
from tests.linkapp.models import Profile
from tests.testapp.models import Invoice

API = "/auth/anonymous/"
SIGN_IN, SESSION, DELETE = f"{API}sign-in/", f"{API}session/", f"{API}delete/"
UPGRADE, LINK = f"{API}upgrade/", f"{API}link/"
PASSWORD = "correct-horse-42"
LANGUAGES = [("en", "English"), ("de", "German"), ("fr", "French"), ("es", "Spanish")]
LOCALE_MIDDLEWARE = "django.middleware.locale.LocaleMiddleware"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
# DRF's own codes the views answer with besides ``STATUS_BY_CODE``'s.
DRF_CODES = {"not_authenticated", "csrf_failed"}

LOCALE = Path(anonauth.__file__).parent / "locale"
# Those of ``make messages`` (the Makefile).
MAKEMESSAGES_OPTIONS = {"all": True, "no_obsolete": True, "no_wrap": True, "add_location": "file"}


@pytest.fixture(autouse=True)
def _locale_middleware() -> Iterator[None]:
    """``LocaleMiddleware`` after the session middleware; the language reset afterwards
    (the middleware activates it for the thread and leaves it on)."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index(SESSION_MIDDLEWARE) + 1, LOCALE_MIDDLEWARE)
    with override_settings(MIDDLEWARE=middleware, LANGUAGES=LANGUAGES):
        yield
    translation.deactivate()


# One real request per error code

Send = Callable[[str], Any]  # the request, in the language it is given


def _in(language: str) -> dict[str, str]:
    return {"HTTP_ACCEPT_LANGUAGE": language}


def _member_client() -> Client:
    client = Client()
    client.force_login(make_registered_user())
    return client


def already_authenticated(monkeypatch: pytest.MonkeyPatch) -> Send:
    client = _member_client()
    return lambda language: client.post(SIGN_IN, **_in(language))


def rate_limited(monkeypatch: pytest.MonkeyPatch) -> Send:
    assert Client().post(SIGN_IN).status_code == 201  # the one guest "1/m" allows
    return lambda language: Client().post(SIGN_IN, **_in(language))


def refused_sign_in(monkeypatch: pytest.MonkeyPatch) -> Send:
    return lambda language: Client().post(SIGN_IN, **_in(language))


def unavailable(monkeypatch: pytest.MonkeyPatch) -> Send:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the database is down")

    monkeypatch.setattr("anonauth.guests.sign_in_new_guest", fail)
    return refused_sign_in(monkeypatch)


def not_guest(monkeypatch: pytest.MonkeyPatch) -> Send:
    client = _member_client()
    return lambda language: client.post(DELETE, **_in(language))


def deletion_blocked(monkeypatch: pytest.MonkeyPatch) -> Send:
    client = guest_client()
    Invoice.objects.create(customer_id=client.session[SESSION_KEY])
    return lambda language: client.post(DELETE, **_in(language))


def link(body: dict[str, str]) -> Callable[[pytest.MonkeyPatch], Send]:
    def setup(monkeypatch: pytest.MonkeyPatch) -> Send:
        make_registered_user("ada@example.com", PASSWORD)
        client = guest_client()
        return lambda language: client.post(LINK, body, **_in(language))

    return setup


def link_conflict(monkeypatch: pytest.MonkeyPatch) -> Send:
    account = make_registered_user("ada@example.com", PASSWORD)
    Profile.objects.create(user=account, nickname="ada")
    client = guest_client()
    Profile.objects.create(user_id=client.session[SESSION_KEY], nickname="guest")
    body = {"login": "ada@example.com", "password": PASSWORD}
    return lambda language: client.post(LINK, body, **_in(language))


def upgrade(email: str, password: str = PASSWORD) -> Callable[[pytest.MonkeyPatch], Send]:
    def setup(monkeypatch: pytest.MonkeyPatch) -> Send:
        make_registered_user("taken@example.com")
        client = guest_client()
        body = {"email": email, "password": password}
        return lambda language: client.post(UPGRADE, body, **_in(language))

    return setup


def not_authenticated(monkeypatch: pytest.MonkeyPatch) -> Send:
    return lambda language: Client().get(SESSION, **_in(language))


def csrf_failed(monkeypatch: pytest.MonkeyPatch) -> Send:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, enforce_csrf_checks=True)
    client.get("/csrf/")
    return lambda language: client.post(SIGN_IN, **_in(language))  # no X-CSRFToken


@dataclass
class Case:
    setup: Callable[[pytest.MonkeyPatch], Send]
    german: str | list[str]
    settings: dict[str, Any] = field(default_factory=dict)


CASES = {
    "already_authenticated": Case(
        already_authenticated, "Ein registrierter Benutzer ist bereits angemeldet."
    ),
    "rate_limited": Case(
        rate_limited,
        "Von dieser Adresse wurden zu viele Gäste angelegt; bitte versuchen Sie es später erneut.",
        {"ANONAUTH_RATE_LIMIT": "1/m"},
    ),
    "captcha_failed": Case(
        refused_sign_in,
        "Die CAPTCHA-Prüfung ist fehlgeschlagen.",
        {"ANONAUTH_CAPTCHA_VERIFIER": "tests.testapp.captcha.verify"},
    ),
    "disabled": Case(
        refused_sign_in,
        "Gastbenutzer sind auf dieser Website deaktiviert.",
        {"ANONAUTH_ENABLED": False},
    ),
    "not_guest": Case(not_guest, "Dieser Endpunkt ist nur für Gastbenutzer."),
    "deletion_blocked": Case(
        deletion_blocked, "Der Gast kann nicht gelöscht werden: andere Daten schützen ihn."
    ),
    "invalid_credentials": Case(
        link({"login": "ada@example.com", "password": "wrong"}),
        "Anmeldename oder Passwort ist falsch.",
        {"ANONAUTH_LINK_RATE_LIMIT": None},
    ),
    "link_conflict": Case(
        link_conflict,
        "Das Konto hat bereits Einträge, die linkapp.Profile.user eindeutig hält.",
        {"ANONAUTH_LINK_CONFLICTS": {"linkapp.Profile.user": "error"}},
    ),
    "unavailable": Case(
        unavailable,
        "Ein Gast konnte gerade nicht angelegt werden; bitte versuchen Sie es später erneut.",
    ),
    "invalid_email": Case(upgrade("nope"), "Diese E-Mail-Adresse ist ungültig."),
    "password_invalid": Case(
        upgrade("ada@example.com", password="short"),
        ["Dieses Passwort ist zu kurz. Es muss mindestens 8 Zeichen enthalten."],
        {
            "AUTH_PASSWORD_VALIDATORS": [
                {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
            ]
        },
    ),
    "email_in_use": Case(
        upgrade("taken@example.com"),
        "Diese E-Mail-Adresse wird bereits von einem anderen Konto verwendet.",
    ),
    "not_authenticated": Case(not_authenticated, "Anmeldedaten fehlen."),
    "live_guest_cap": Case(
        rate_limited,
        "Aus diesem Netz sind zu viele Gäste aktiv.",
        {"ANONAUTH_LIVE_GUEST_CAP": 1},
    ),
    "before_create_failed": Case(
        refused_sign_in,
        "Ein Gast konnte gerade nicht angelegt werden; bitte versuchen Sie es später erneut.",
        {"ANONAUTH_BEFORE_CREATE": "tests.testapp.policy_hooks.broken"},
    ),
    "csrf_failed": Case(csrf_failed, "CSRF-Überprüfung fehlgeschlagen: CSRF token missing."),
}


def invalid_transfer_code(monkeypatch: pytest.MonkeyPatch) -> Send:
    body = {"code": "ABCD-EFGH"}
    redeem = "/auth/anonymous/transfer/redeem/"
    return lambda language: Client(HTTP_USER_AGENT="okhttp/4.12").post(
        redeem, body, content_type="application/json", **_in(language)
    )


def sign_in_with(metadata: Any) -> Callable[[pytest.MonkeyPatch], Send]:
    def setup(monkeypatch: pytest.MonkeyPatch) -> Send:
        body = json.dumps({"metadata": metadata})
        return lambda language: Client().post(
            SIGN_IN, body, content_type="application/json", **_in(language)
        )

    return setup


CASES["metadata_invalid"] = Case(sign_in_with([1]), "Metadaten müssen ein JSON-Objekt sein.")
CASES["metadata_too_deep"] = Case(
    sign_in_with({"a": {"b": {"c": [1]}}}),
    "Metadaten dürfen höchstens 3 Ebenen tief verschachtelt sein.",
)
CASES["metadata_too_large"] = Case(
    sign_in_with({"a": "x" * 2000}), "Metadaten dürfen höchstens 1024 Byte JSON umfassen."
)
CASES["invalid_transfer_code"] = Case(
    invalid_transfer_code,
    "Dieser Übertragungscode ist ungültig (er ist vielleicht abgelaufen oder wurde schon "
    "verwendet).",
)
# Not reachable through the API with the tests' user models: rendered by the handler.
HANDLER_ONLY: dict[str, Any] = {
    "username_in_use": UsernameInUse,
    "link_failed": LinkFailed,  # tests/test_abuse.py drives it through a failing receiver
    "request_too_large": RequestDataTooBig,  # and this one through an oversized body
    "creation_refused": CreationRefused,  # an ANONAUTH_BEFORE_CREATE hook's (test_policy)
}


def test_every_code_the_api_answers_is_checked() -> None:
    assert set(CASES) | set(HANDLER_ONLY) == set(STATUS_BY_CODE) | DRF_CODES


@pytest.mark.django_db
@pytest.mark.parametrize("code", sorted(CASES))
def test_errors_answer_in_german(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[code]
    with override_settings(**case.settings):
        send = case.setup(monkeypatch)
        english, german = send("en"), send("de")
    assert german.json() == {"code": code, "detail": case.german}
    assert german.status_code == english.status_code
    assert english.json()["code"] == code
    assert english.json()["detail"] != case.german
    assert german["Content-Language"] == "de"


def rendered(exc: Exception, language: str) -> dict[str, Any]:
    """``exc`` as the API's handler answers it, rendered to JSON in ``language``."""
    with translation.override(language):
        response = exception_handler(exc, {})
        assert response is not None
        body: dict[str, Any] = json.loads(JSONRenderer().render(response.data))
    return body


@pytest.mark.parametrize(
    ("error", "code", "german_detail"),
    [
        (
            LinkFailed(),
            "link_failed",
            "Dieser Gast konnte nicht mit dem Konto zusammengeführt werden; "
            "es wurde nichts geändert.",
        ),
        (RequestDataTooBig("too big"), "request_too_large", "Der Inhalt der Anfrage ist zu groß."),
    ],
)
def test_handler_only_errors_in_german(error: Exception, code: str, german_detail: str) -> None:
    assert rendered(error, "de") == {"code": code, "detail": german_detail}
    assert rendered(error, "en")["detail"] != german_detail


def test_username_in_use_in_german() -> None:
    german = rendered(UsernameInUse(), "de")
    assert german == {
        "code": "username_in_use",
        "detail": "Dieser Benutzername wird bereits von einem anderen Konto verwendet.",
    }
    assert rendered(UsernameInUse(), "en")["detail"] != german["detail"]


def _error_classes(base: type[AnonAuthError] = AnonAuthError) -> Iterator[type[AnonAuthError]]:
    yield base
    for subclass in base.__subclasses__():
        yield from _error_classes(subclass)


@pytest.mark.parametrize("error", sorted(set(_error_classes()), key=lambda cls: cls.__name__))
def test_every_default_message_is_translated(error: type[AnonAuthError]) -> None:
    exc = error([]) if error is PasswordInvalid else error()
    english = str(exc.message)
    for language in ("de", "fr", "es"):
        with translation.override(language):
            assert str(exc) != english, (error, language)


def test_lazy_messages_render_in_the_language_of_the_response() -> None:
    """A message is kept lazy by the exception: it is translated when it is rendered,
    in the language active then, whichever was active when it was raised."""
    with pytest.raises(PasswordInvalid) as raised:
        check_password("", None)
    assert rendered(raised.value, "de")["detail"] == ["Geben Sie ein Passwort ein."]
    assert rendered(raised.value, "en")["detail"] == ["Enter a password."]
    with translation.override("de"):
        assert str(raised.value) == "Geben Sie ein Passwort ein."


@pytest.mark.django_db
def test_an_error_in_french() -> None:
    client = guest_client()
    body = {"email": f"ada@{conf.EMAIL_DOMAIN}", "password": PASSWORD}
    response = client.post(UPGRADE, body, **_in("fr"))
    assert response.json() == {
        "code": "invalid_email",
        "detail": f"Les adresses sous {conf.EMAIL_DOMAIN} ne peuvent pas être utilisées.",
    }


@pytest.mark.django_db
def test_an_error_in_spanish() -> None:
    model = get_user_model()
    limit = model._meta.get_field(model.get_email_field_name()).max_length
    domain = ".".join(["d" * 60] * 5) + ".com"  # a valid address longer than the field
    client = guest_client()
    response = client.post(UPGRADE, {"email": f"ada@{domain}", "password": PASSWORD}, **_in("es"))
    assert response.json() == {
        "code": "invalid_email",
        "detail": f"Use como máximo {limit} caracteres.",
    }


# The catalogues


@dataclass
class Entry:
    msgid: str
    context: str | None = None
    plural: str | None = None
    msgstrs: dict[int, str] = field(default_factory=dict)
    fuzzy: bool = False

    @property
    def translated(self) -> bool:
        return bool(self.msgstrs) and all(self.msgstrs.values()) and not self.fuzzy


def read_po(path: Path) -> dict[tuple[str | None, str], Entry]:
    """The entries of a ``.po`` file by (context, msgid), the header and obsolete ones left
    out: enough of the format for ``makemessages``' output."""
    entries: dict[tuple[str | None, str], Entry] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry = _read_block(block)
        if entry is not None and entry.msgid:
            entries[entry.context, entry.msgid] = entry
    return entries


def _read_block(block: str) -> Entry | None:
    fields: dict[str, str] = {}
    key = ""
    fuzzy = False
    for line in block.strip().splitlines():
        if line.startswith("#,"):
            fuzzy = fuzzy or any(flag.strip() == "fuzzy" for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            fields[key] += ast.literal_eval(line)
        else:
            key, _, value = line.partition(" ")
            fields[key] = ast.literal_eval(value)
    if "msgid" not in fields:
        return None  # comments only: obsolete entries (#~) and the like
    msgstrs = {int(key[7:-1]): value for key, value in fields.items() if key.startswith("msgstr[")}
    if "msgstr" in fields:
        msgstrs[0] = fields["msgstr"]
    return Entry(fields["msgid"], fields.get("msgctxt"), fields.get("msgid_plural"), msgstrs, fuzzy)


def catalogues() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))


def test_the_shipped_languages() -> None:
    assert [path.parts[-3] for path in catalogues()] == ["de", "es", "fr"]


@pytest.mark.parametrize("po", catalogues(), ids=lambda path: path.parts[-3])
def test_every_message_is_translated_and_compiled(po: Path) -> None:
    entries = read_po(po)
    untranslated = [msgid for (_, msgid), entry in entries.items() if not entry.translated]
    assert not untranslated, f"untranslated or fuzzy in {po}: {untranslated}"
    with po.with_suffix(".mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog
    assert compiled == {**_expected_catalog(entries), "": compiled[""]}, (
        f"{po.with_suffix('.mo')} is not compiled from {po.name}: run make messages"
    )


def _expected_catalog(entries: dict[tuple[str | None, str], Entry]) -> dict[Any, str]:
    catalog: dict[Any, str] = {}
    for entry in entries.values():
        key = entry.msgid if entry.context is None else f"{entry.context}\x04{entry.msgid}"
        if entry.plural is None:
            catalog[key] = entry.msgstrs[0]
        else:
            catalog.update({(key, n): text for n, text in entry.msgstrs.items()})
    return catalog


@pytest.mark.skipif(
    shutil.which("xgettext") is None, reason="needs gettext: apt-get install gettext"
)
def test_the_catalogues_are_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``make messages`` would change no msgid; every placeholder is kept (msgfmt --check)."""
    copy = tmp_path / "anonauth"
    shutil.copytree(LOCALE.parent, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)
    call_command("makemessages", verbosity=0, **MAKEMESSAGES_OPTIONS)
    for po in catalogues():
        regenerated = copy / po.relative_to(LOCALE.parent)
        missing = sorted(set(read_po(regenerated)) - set(read_po(po)), key=str)
        obsolete = sorted(set(read_po(po)) - set(read_po(regenerated)), key=str)
        assert (missing, obsolete) == ([], []), f"{po}: run make messages, translate"
        subprocess.run(["msgfmt", "--check", "--output-file=/dev/null", str(po)], check=True)
