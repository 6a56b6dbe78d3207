"""Guest metadata: a small JSON object stored with a guest when it is created.

It comes from the client (``POST sign-in/`` ``{"metadata": {...}}``) or from the
project's ``ANONAUTH_BEFORE_CREATE`` hook, which may return the object to store (on the
lazy path and for the API alike). It is written in the same INSERT as the ``Guest`` row,
shown by ``session/`` and the admin, and handed to the ``guest_upgraded``,
``guest_linking`` and ``guest_linked`` receivers as ``metadata`` so a project can carry
it over to the account. It is data, never a credential: nothing in anonauth decides who
may do what from it, and neither should a project (the client chose it).

:func:`clean` is the one validation: an object with string keys of at most
:data:`MAX_KEY_LENGTH` characters, JSON values only (strings, finite numbers, booleans,
null, lists, objects; no NUL character, no lone surrogate), nested at most
``ANONAUTH_METADATA_MAX_DEPTH`` levels, at most ``ANONAUTH_METADATA_MAX_BYTES`` bytes as
compact UTF-8 JSON.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from anonauth.conf import conf
from anonauth.exceptions import MetadataInvalid, MetadataTooDeep, MetadataTooLarge

MAX_KEY_LENGTH = 64
SCALARS = (str, int, float, bool, type(None))


def clean(value: Any) -> dict[str, Any]:
    """``value`` as a guest's metadata (``None``, absent, is ``{}``), or raise
    :class:`MetadataInvalid`, :class:`MetadataTooDeep` or :class:`MetadataTooLarge`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetadataInvalid(_("Metadata must be a JSON object."))
    _check_size(value)  # first: a large object is refused before it is walked
    _check_value(value, depth=1)
    return value


def encode(value: dict[str, Any]) -> bytes:
    """``value`` as compact UTF-8 JSON: what ``ANONAUTH_METADATA_MAX_BYTES`` measures."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _check_value(value: Any, *, depth: int) -> None:
    if isinstance(value, dict | list):
        _check_depth(depth)
        if isinstance(value, dict):
            for key in value:
                _check_key(key)
        for item in value.values() if isinstance(value, dict) else value:
            _check_value(item, depth=depth + 1)
    elif not isinstance(value, SCALARS):  # a tuple or set, which json.dumps would accept
        raise MetadataInvalid(_("Metadata values must be JSON: text, numbers, lists, objects."))
    elif isinstance(value, str):
        _check_text(value)


def _check_depth(depth: int) -> None:
    most = conf.METADATA_MAX_DEPTH
    if depth > most:
        message = ngettext_lazy(
            "Metadata may be nested at most {count} level deep.",
            "Metadata may be nested at most {count} levels deep.",
            most,
        )
        raise MetadataTooDeep(format_lazy(message, count=most))


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        message = _("Metadata keys must be text of 1 to {count} characters.")
        raise MetadataInvalid(format_lazy(message, count=MAX_KEY_LENGTH))
    _check_text(key)


def _check_text(text: str) -> None:
    """PostgreSQL's ``jsonb`` stores no NUL character (lone surrogates, which UTF-8
    cannot encode, were refused by :func:`_check_size`)."""
    if "\x00" in text:
        raise MetadataInvalid(_("Metadata text must not contain the NUL character."))


def _check_size(value: dict[str, Any]) -> None:
    try:
        size = len(encode(value))
    except (TypeError, ValueError, RecursionError) as error:  # (UnicodeError is a ValueError)
        raise MetadataInvalid(_("The metadata cannot be stored as JSON.")) from error
    most = conf.METADATA_MAX_BYTES
    if most is not None and value and size > most:
        message = ngettext_lazy(
            "Metadata may be at most {count} byte of JSON.",
            "Metadata may be at most {count} bytes of JSON.",
            most,
        )
        raise MetadataTooLarge(format_lazy(message, count=most))
