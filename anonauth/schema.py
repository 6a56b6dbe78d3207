"""The API's OpenAPI description, through drf-spectacular (the optional ``openapi`` extra).

Without drf-spectacular installed, :func:`documented` does nothing and nothing here
imports it, so anonauth works the same. With it, each view documents its
success responses and, per status, every error ``code`` it can answer in the
``{"code", "detail"}`` shape; :class:`GuestSessionScheme` documents how clients
authenticate (the session cookie, or the ``X-Session-Token`` header). OpenAPI links
(:data:`SESSION_TOKEN_LINKS`) lead from the answers carrying a ``session_token`` to the
operations that take it as that header (what schemathesis' stateful phase follows).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model

try:
    import drf_spectacular  # noqa: F401
except ImportError:  # pragma: no cover - the tests run with the extra installed
    HAS_SPECTACULAR = False
else:
    HAS_SPECTACULAR = True

ViewT = TypeVar("ViewT")

SESSION_TOKEN_SCHEME = "sessionToken"
# The name drf-spectacular gives DRF's SessionAuthentication: one cookie scheme in a
# schema that documents project views beside anonauth's.
COOKIE_SCHEME = "cookieAuth"

# The codes whose ``detail`` is not a string: ``invalid`` carries DRF's field errors
# (``{"field": ["message", ...]}``), ``password_invalid`` each validator's message.
FIELD_ERRORS_CODES = frozenset({"invalid"})
METADATA_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {},
    "nullable": True,
    "readOnly": True,
    "description": "The metadata the guest was signed in with; `null` for a registered user.",
}
MESSAGE_LIST_CODES = frozenset({"password_invalid"})


def documented(
    *,
    summary: str,
    responses: Mapping[int, Any],
    errors: Mapping[int, Sequence[str]],
    request: Any = None,
    description: str = "",
) -> Callable[[ViewT], ViewT]:
    """Describe an API view for drf-spectacular; do nothing when it is not installed.

    ``responses`` maps success statuses to a serializer (``None``: no body) or to
    ``(serializer, description)``; ``errors`` maps each error status to the ``code``
    values the view can answer with it. A 429 documents the ``Retry-After`` header.

    The view itself is left unchanged: the description is applied to a subclass when
    the schema is generated (an ``OpenApiViewExtension``), so the ``DEFAULT_SCHEMA_CLASS``
    in force then is the one used, whatever it was when the view was imported.
    """

    def register(view: ViewT) -> ViewT:
        if HAS_SPECTACULAR:
            schema_kwargs = {
                "summary": summary,
                "description": description or inspect.getdoc(view),
                "request": request,
                "responses": responses,
                "errors": errors,
            }
            _register_view_extension(view, schema_kwargs)
        return view

    return register


def _register_view_extension(view: Any, schema_kwargs: dict[str, Any]) -> None:
    from drf_spectacular.extensions import OpenApiViewExtension

    def view_replacement(extension: OpenApiViewExtension) -> Any:
        linked = {"schema": linked_schema_class(type(view.schema), view.__name__)()}
        return extend_schema_for(**schema_kwargs)(type(view.__name__, (view,), linked))

    type(
        f"{view.__name__}Schema",
        (OpenApiViewExtension,),
        {"target_class": view, "view_replacement": view_replacement},
    )


def extend_schema_for(
    *,
    summary: str,
    description: str | None,
    request: Any,
    responses: Mapping[int, Any],
    errors: Mapping[int, Sequence[str]],
) -> Callable[[Any], Any]:
    """drf-spectacular's ``extend_schema`` for what :func:`documented` was given."""
    from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

    documented_responses: dict[int, Any] = {}
    for status_code, response in responses.items():
        serializer, text = response if isinstance(response, tuple) else (response, "")
        documented_responses[status_code] = OpenApiResponse(serializer, description=text)
    for status_code, codes in errors.items():
        documented_responses[status_code] = OpenApiResponse(
            error_schema(codes), description=" / ".join(f"`{code}`" for code in codes)
        )
    retry_after = OpenApiParameter(
        "Retry-After",
        type=int,
        location=OpenApiParameter.HEADER,
        response=[429],
        required=True,
        description="Seconds until the rate limit lets this address try again.",
    )
    decorator: Callable[[Any], Any] = extend_schema(
        summary=summary,
        description=description,
        request=request,
        responses=documented_responses,
        parameters=[retry_after] if 429 in errors else None,
    )
    return decorator


# OpenAPI links: the operations an app client goes on to call with the ``session_token``
# of a response (in the ``X-Session-Token`` header), by view: source view -> (statuses,
# {link name: target view}). A target not in the schema (not routed) gets no link.
SESSION_TOKEN_LINKS: dict[str, tuple[tuple[int, ...], dict[str, str]]] = {
    "SignInView": (
        (201, 200),
        {
            "signIn": "SignInView",
            "session": "SessionView",
            "upgrade": "UpgradeView",
            "link": "LinkView",
            "delete": "DeleteView",
        },
    ),
    "UpgradeView": ((200,), {"session": "SessionView"}),
    "LinkView": ((200,), {"session": "SessionView"}),
}
SESSION_TOKEN_LINK_PARAMETERS = {"header.X-Session-Token": "$response.body#/session_token"}


class SchemaLinks:
    """The anonauth operations of one schema generation, and the links between them.

    Links name their target by ``operationId``, which drf-spectacular derives from the
    project's URLs (or a project's schema class overrides): so each link is written once
    both its operations are generated, whatever their order.
    """

    def __init__(self) -> None:
        self.operations: dict[str, dict[str, Any]] = {}

    def add(self, view_name: str, operation: dict[str, Any]) -> None:
        self.operations[view_name] = operation
        for source, (statuses, targets) in SESSION_TOKEN_LINKS.items():
            if source not in self.operations:
                continue
            responses = self.operations[source].get("responses", {})
            for status_code in statuses:
                response = responses.get(str(status_code))
                if response is None:
                    continue
                for name, target in targets.items():
                    if target in self.operations:
                        response.setdefault("links", {})[name] = {
                            "operationId": self.operations[target]["operationId"],
                            "parameters": dict(SESSION_TOKEN_LINK_PARAMETERS),
                            "description": "The `session_token` as the `X-Session-Token` "
                            "header (app clients).",
                        }


# One per drf-spectacular ``ComponentRegistry``, that is per schema generation.
_schema_links: weakref.WeakKeyDictionary[Any, SchemaLinks] = weakref.WeakKeyDictionary()


def linked_schema_class(base: type[Any], view_name: str) -> type[Any]:
    """``base`` (the view's schema class), recording the operation for :class:`SchemaLinks`."""

    class LinkedSchema(base):
        def get_operation(
            self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
        ) -> Any:
            operation = super().get_operation(path, path_regex, path_prefix, method, registry)
            if operation is not None:
                _schema_links.setdefault(registry, SchemaLinks()).add(view_name, operation)
            return operation

    return LinkedSchema


def error_schema(codes: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of an error answered with one of ``codes``."""
    return {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": list(codes)},
            "detail": detail_schema(codes),
        },
        "required": ["code", "detail"],
    }


def detail_schema(codes: Sequence[str]) -> dict[str, Any]:
    """A human message; a list of them, or field errors, for the codes that carry those."""
    string: dict[str, Any] = {"type": "string"}
    variants = [string]
    if MESSAGE_LIST_CODES.intersection(codes):
        variants.append({"type": "array", "items": string})
    if FIELD_ERRORS_CODES.intersection(codes):
        variants.append(
            {
                "type": "object",
                "additionalProperties": {"type": "array", "items": string},
                "description": "Validation errors: a list of messages per field.",
            }
        )
    return variants[0] if len(variants) == 1 else {"oneOf": variants}


SESSION_TOKEN_DEFINITION = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Session-Token",
    "description": "The `session_token` of sign-in, upgrade or link (app clients).",
}


def cookie_definition() -> dict[str, Any]:
    return {
        "type": "apiKey",
        "in": "cookie",
        "name": settings.SESSION_COOKIE_NAME,
        "description": "Browsers: unsafe methods must also pass Django's CSRF "
        "check (`X-CSRFToken` header), or they get 403 `csrf_failed`.",
    }


if HAS_SPECTACULAR:
    from drf_spectacular.extensions import (
        OpenApiAuthenticationExtension,
        OpenApiSerializerExtension,
    )
    from drf_spectacular.plumbing import force_instance

    if TYPE_CHECKING:
        from drf_spectacular.openapi import AutoSchema

    class GuestSessionScheme(OpenApiAuthenticationExtension):
        """``GuestSessionAuthentication``: the session cookie, or the session token header.

        Apps without cookies send the ``session_token`` returned by sign-in in the
        ``X-Session-Token`` header; either one alone authenticates.
        """

        target_class = "anonauth.views.GuestSessionAuthentication"
        name = [SESSION_TOKEN_SCHEME, COOKIE_SCHEME]

        def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
            return [{SESSION_TOKEN_SCHEME: []}, {COOKIE_SCHEME: []}]

        def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
            return [SESSION_TOKEN_DEFINITION, cookie_definition()]

    class SessionTokenScheme(OpenApiAuthenticationExtension):
        """``anonauth.authentication.SessionTokenAuthentication`` on project views."""

        target_class = "anonauth.authentication.SessionTokenAuthentication"
        name = SESSION_TOKEN_SCHEME

        def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
            return SESSION_TOKEN_DEFINITION

    class UserSchema(OpenApiSerializerExtension):
        """``UserSerializer``: ``id`` typed like the user model's primary key; a guest's
        ``metadata`` object (``null`` for a registered user)."""

        target_class = "anonauth.serializers.UserSerializer"

        def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
            fields = force_instance(self.target).fields
            primary_key = auto_schema._map_model_field(get_user_model()._meta.pk, direction)
            properties: dict[str, Any] = {
                "id": {**primary_key, "readOnly": True},
                "username": {"type": "string", "readOnly": True},
                "email": auto_schema._map_serializer_field(fields["email"], direction),
                "is_guest": auto_schema._map_serializer_field(fields["is_guest"], direction),
                "metadata": METADATA_RESPONSE_SCHEMA,
            }
            return {
                "type": "object",
                "description": self.target.__doc__,
                "properties": properties,
                "required": list(properties),
            }

    class UpgradeRequestSchema(OpenApiSerializerExtension):
        """``UpgradeSerializer``: ``email`` must be an address (else 400 ``invalid_email``)."""

        target_class = "anonauth.serializers.UpgradeSerializer"

        def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
            schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
            schema["properties"]["email"]["format"] = "email"
            return schema
