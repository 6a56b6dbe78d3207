"""Data export: every row that points at a user, as one JSON document streamed in chunks.

The rows are found as a link finds them (:func:`anonauth.link.user_relations`), minus
``ANONAUTH_LINK_EXCLUDE`` and the framework tables of :data:`FRAMEWORK_APPS`, and read
with ``.iterator()``: one chunk of rows is in memory at a time, whatever their number.
The document (``"format": "anonauth.export"``, ``"version": 1``)::

    {"format": "anonauth.export", "version": 1, "exported_at": "2026-…",
     "user": {...}, "guest": {"created_at": "…", "last_seen": "…", "metadata": {…}} or null,
     "relations": {"shop.Cart.owner": [{...}, ...], ...}}

The first chunk (the header: the user and its ``Guest`` row) is built before anything
is sent (:class:`ExportStream`), so a database that is down gives a JSON error, not a
broken download; an error after that is logged and cuts the document short (invalid
JSON), never a valid-looking partial export.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from rest_framework.serializers import BaseSerializer

from anonauth import db
from anonauth.conf import conf
from anonauth.exceptions import RateLimited
from anonauth.guests import check_rate
from anonauth.link import Relation, data_relations, with_dependents

logger = logging.getLogger("anonauth")

FORMAT = "anonauth.export"
VERSION = 1
# Apps whose rows are never exported, whatever ANONAUTH_LINK_EXCLUDE says: credentials,
# secrets and the site's own bookkeeping, not the user's data.
FRAMEWORK_APPS = frozenset(
    {
        "anonauth",  # the guest flag (the header has its facts), transfer-code digests
        "admin",  # the admin's log of what staff did
        "sessions",
        "authtoken",  # DRF tokens
        "knox",  # django-rest-knox tokens
        "token_blacklist",  # simplejwt's outstanding tokens
        "oauth2_provider",  # django-oauth-toolkit grants and tokens
        "mfa",  # django-allauth's authenticators: TOTP secrets, recovery codes
        "usersessions",  # django-allauth's list of sessions: session keys
        "otp_totp",  # django-otp devices: their secrets
        "otp_hotp",
        "otp_static",
        "otp_email",
    }
)
# The user's fields the header leaves out (without a serializer of the project's own).
SECRET_USER_FIELDS = frozenset({"password"})
CHUNK_SIZE = 2000  # rows fetched per database round trip
FLUSH_AT = 64 * 1024  # characters gathered before a chunk is sent
EXPORT_RATE_GROUP = "anonauth.export"
RATE_LIMITED_MESSAGE = _("Too many data exports from here; try again later.")

Serializer = Callable[[Any], Any]

# The document's OpenAPI schema (what the export endpoint documents).
DOCUMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "format": {"type": "string", "enum": [FORMAT]},
        "version": {"type": "integer", "enum": [VERSION]},
        "exported_at": {"type": "string", "format": "date-time"},
        "user": {
            "type": "object",
            "additionalProperties": True,
            "description": "The user's fields, without the password hash.",
        },
        "guest": {
            "type": "object",
            "nullable": True,
            "properties": {
                "created_at": {"type": "string", "format": "date-time"},
                "last_seen": {"type": "string", "format": "date-time"},
                "metadata": {"type": "object", "additionalProperties": True},
            },
            "required": ["created_at", "last_seen", "metadata"],
            "description": "When the guest was created and last seen, and the metadata it was "
            "created with; null for a registered user.",
        },
        "relations": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": True},
            },
            "description": 'Per relation ("app_label.ModelName.field_name"), the rows '
            "that point at the user, by primary key.",
        },
    },
    "required": ["format", "version", "exported_at", "user", "guest", "relations"],
}


class ExportEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder (ISO 8601 datetimes, decimals and UUIDs as strings), with binary
    data as base64 and anything else as its ``str()``: an export never stops on a type."""

    def default(self, o: Any) -> Any:
        if isinstance(o, bytes | memoryview):
            return base64.b64encode(bytes(o)).decode("ascii")
        if isinstance(o, FieldFile):
            return o.name  # as stored: what the default rows, read as tuples, hold too
        try:
            return super().default(o)
        except TypeError:
            return str(o)


_encode = ExportEncoder(ensure_ascii=False).encode


def exported_relations() -> list[Relation]:
    """The relations an export reads: link's :func:`~anonauth.link.data_relations`
    (every relation to the user model, minus ``ANONAUTH_LINK_EXCLUDE`` and the user
    model's own ``groups`` and ``user_permissions``) and the rows a link moves along
    with them (the photos of a profile keyed by its user), minus the apps of
    :data:`FRAMEWORK_APPS`."""
    return [
        relation
        for relation in with_dependents(data_relations())
        if relation.model._meta.app_label not in FRAMEWORK_APPS
    ]


def default_row(obj: models.Model) -> dict[str, Any]:
    """Every concrete field of ``obj`` by name: foreign keys as the primary key they hold,
    files as their name."""
    return {field.name: field.value_from_object(obj) for field in obj._meta.concrete_fields}


def default_user(user: Any) -> dict[str, Any]:
    """The user's row without its password hash."""
    row = default_row(user)
    for name in SECRET_USER_FIELDS:
        row.pop(name, None)
    return row


class Serializers:
    """The serializer of each model: ``ANONAUTH_EXPORT_SERIALIZERS``' or the default."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self.by_model: dict[type[models.Model], Serializer] = {
            _model(label): _serializer(label, path) for label, path in paths.items()
        }

    def rows(self, queryset: models.QuerySet[Any], chunk_size: int) -> Iterator[Any]:
        """Each row of ``queryset``, serialized, ``chunk_size`` rows fetched at a time.

        Without a serializer of the project's, the rows are read as tuples of the
        concrete fields (what :func:`default_row` gives, without building instances).
        """
        serializer = self.by_model.get(queryset.model)
        if serializer is not None:
            return map(serializer, queryset.iterator(chunk_size=chunk_size))
        fields = queryset.model._meta.concrete_fields
        names = [field.name for field in fields]
        values = queryset.values_list(*(field.attname for field in fields))
        return (
            dict(zip(names, row, strict=True)) for row in values.iterator(chunk_size=chunk_size)
        )

    def user(self, user: Any) -> Any:
        serializer = self.by_model.get(type(user))
        return default_user(user) if serializer is None else serializer(user)


def _model(label: str) -> type[models.Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as error:
        raise ImproperlyConfigured(
            f"ANONAUTH_EXPORT_SERIALIZERS names {label!r}, which is no model."
        ) from error


def _serializer(label: str, path: str) -> Serializer:
    try:
        target = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"ANONAUTH_EXPORT_SERIALIZERS[{label!r}] = {path!r} does not import: {error}"
        ) from error
    if isinstance(target, type) and issubclass(target, BaseSerializer):
        return partial(_drf_data, target)
    serializer: Serializer = target
    return serializer


def _drf_data(serializer_class: type[BaseSerializer[Any]], obj: Any) -> Any:
    return serializer_class(obj).data


def export_user(user: Any, *, chunk_size: int = CHUNK_SIZE) -> Generator[str, None, None]:
    """Yield the JSON text of ``user``'s export in chunks; the first is the header."""
    serializers = Serializers(conf.EXPORT_SERIALIZERS)
    parts = _user_parts(user, serializers, chunk_size)
    yield "{" + _preamble() + ",\n" + next(parts)
    yield from _chunked([parts, ["}\n"]])


def export_users(
    users: Iterable[Any], *, chunk_size: int = CHUNK_SIZE
) -> Generator[str, None, None]:
    """Yield one JSON document with the exports of ``users`` (the admin action's):
    ``{"format", "version", "exported_at", "exports": [{"user", "guest", "relations"}, ...]}``."""
    serializers = Serializers(conf.EXPORT_SERIALIZERS)
    yield "{" + _preamble() + ',\n"exports": ['
    yield from _chunked(_users_parts(users, serializers, chunk_size))


def _users_parts(users: Iterable[Any], serializers: Serializers, chunk_size: int) -> Iterator[str]:
    separator = "\n"
    for user in users:
        yield separator + "{"
        yield from _user_parts(user, serializers, chunk_size)
        yield "}"
        separator = ",\n"
    yield "\n]}\n"


def _preamble() -> str:
    fields = {"format": FORMAT, "version": VERSION, "exported_at": timezone.now()}
    return _encode(fields)[1:-1]


def _user_parts(user: Any, serializers: Serializers, chunk_size: int) -> Iterator[str]:
    """``"user": …, "guest": …, "relations": {…}`` (no braces around): first the
    header, then each relation's rows one by one.

    Rows are looked up by the primary key read first: a link or a deletion of the user
    during the export clears ``user.pk`` on that instance, and the export goes on.
    """
    user_id = user.pk
    guest = db.guests().filter(pk=user_id).values("created_at", "last_seen", "metadata").first()
    header = f'"user": {_encode(serializers.user(user))},\n"guest": {_encode(guest)},\n'
    yield header + '"relations": {'
    separator = "\n"
    for relation in exported_relations():
        yield separator + _encode(relation.label) + ": ["
        yield from _rows(relation, user_id, serializers, chunk_size)
        separator = ",\n"
    yield "\n}"


def _rows(
    relation: Relation, user_id: Any, serializers: Serializers, chunk_size: int
) -> Iterator[str]:
    separator = "\n"
    for row in serializers.rows(relation.rows(user_id).order_by("pk"), chunk_size):
        yield separator + _encode(row)
        separator = ",\n"
    yield "]" if separator == "\n" else "\n]"


def _chunked(sources: Iterable[Iterable[str]], size: int = FLUSH_AT) -> Iterator[str]:
    """The pieces of ``sources``, joined into chunks of about ``size`` characters."""
    buffer: list[str] = []
    length = 0
    for source in sources:
        for piece in source:
            buffer.append(piece)
            length += len(piece)
            if length >= size:
                yield "".join(buffer)
                buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


class ExportStream:
    """An export's chunks, the first built already (so a failure there is raised before
    any response starts), as a ``StreamingHttpResponse`` takes them.

    A failure after the first chunk is logged and raised: the server stops the response
    there, so the client has invalid (cut-short) JSON, never a valid partial export.
    ``close()`` (the response's, also when the client goes away) ends the generator.
    """

    def __init__(self, chunks: Generator[str, None, None], subject: str) -> None:
        self.chunks = chunks
        self.subject = subject
        self.first = next(chunks)

    def __iter__(self) -> Iterator[str]:
        yield self.first
        try:
            yield from self.chunks
        except Exception:
            logger.exception(
                "anonauth: the data export of %s failed after it started; the client got "
                "a truncated document",
                self.subject,
            )
            raise

    def close(self) -> None:
        self.chunks.close()


class AsyncExportStream:
    """:class:`ExportStream` for an ASGI response: Django reads a sync iterator whole
    before it sends it, so this hands it the chunks one ``next()`` at a time, each in
    the thread that owns the database connection."""

    def __init__(self, stream: ExportStream) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[str]:
        chunks = iter(self.stream)
        while chunk := await sync_to_async(_next_or_empty)(chunks):
            yield chunk

    def close(self) -> None:
        self.stream.close()


def _next_or_empty(chunks: Iterator[str]) -> str:
    return next(chunks, "")  # no chunk is empty


def export_for_request(request: HttpRequest) -> ExportStream:
    """The signed-in user's export, for the export endpoint: counted against
    ``ANONAUTH_EXPORT_RATE_LIMIT`` per client network and per user
    (:class:`RateLimited`), header built (:class:`ExportStream`)."""
    user: Any = request.user
    check_export_rate(request, user)
    logger.info("anonauth: user %s exports their data", user.pk)
    return ExportStream(export_user(user), subject=f"user {user.pk}")


def check_export_rate(request: HttpRequest, user: Any) -> None:
    rate = conf.EXPORT_RATE_LIMIT
    try:
        check_rate(request, group=EXPORT_RATE_GROUP, rate=rate)
        check_rate(request, group=EXPORT_RATE_GROUP, rate=rate, key=f"user:{user.pk}")
    except RateLimited as error:
        raise RateLimited(RATE_LIMITED_MESSAGE, retry_after=error.retry_after) from error


def streaming_response(
    request: HttpRequest, stream: ExportStream, filename: str
) -> StreamingHttpResponse:
    """``stream`` as a JSON attachment (an async iterator under ASGI), never cached."""
    content: Any = AsyncExportStream(stream) if isinstance(request, ASGIRequest) else stream
    response = StreamingHttpResponse(content, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]+")


def filename(user: Any = None) -> str:
    """``data-export-<user pk>-<YYYY-MM-DD>.json`` (no pk: several users'), safe in a
    ``Content-Disposition``."""
    pk = "" if user is None else UNSAFE_FILENAME.sub("-", str(user.pk)) + "-"
    return f"data-export-{pk}{timezone.localdate():%Y-%m-%d}.json"
