"""The HTTP API (DRF). Each view calls one core function; errors map to statuses here."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework import exceptions, status
from rest_framework.authentication import CSRFCheck, SessionAuthentication
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from anonauth import export, guests, link, observe, tokens, transfer, upgrade
from anonauth.exceptions import (
    AnonAuthError,
    CreationRefused,
    GuestUnavailable,
    PasswordInvalid,
    RateLimited,
)
from anonauth.permissions import IsGuest
from anonauth.schema import documented
from anonauth.serializers import (
    LinkResultSerializer,
    LinkSerializer,
    SessionSerializer,
    SignInRequestSerializer,
    SignInSerializer,
    TransferCodeSerializer,
    TransferRedeemSerializer,
    UpgradeResultSerializer,
    UpgradeSerializer,
    UserSerializer,
)

logger = logging.getLogger("anonauth")

STATUS_BY_CODE: dict[str, int] = {
    "already_authenticated": status.HTTP_409_CONFLICT,
    "rate_limited": status.HTTP_429_TOO_MANY_REQUESTS,
    "captcha_failed": status.HTTP_400_BAD_REQUEST,
    "disabled": status.HTTP_403_FORBIDDEN,
    "not_guest": status.HTTP_403_FORBIDDEN,
    "deletion_blocked": status.HTTP_409_CONFLICT,
    "invalid_credentials": status.HTTP_400_BAD_REQUEST,
    "link_conflict": status.HTTP_409_CONFLICT,
    "link_failed": status.HTTP_409_CONFLICT,
    "request_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
    "invalid_email": status.HTTP_400_BAD_REQUEST,
    "password_invalid": status.HTTP_400_BAD_REQUEST,
    "email_in_use": status.HTTP_409_CONFLICT,
    "username_in_use": status.HTTP_409_CONFLICT,
    "invalid_transfer_code": status.HTTP_400_BAD_REQUEST,
    "live_guest_cap": status.HTTP_429_TOO_MANY_REQUESTS,
    "before_create_failed": status.HTTP_503_SERVICE_UNAVAILABLE,
    "creation_refused": status.HTTP_403_FORBIDDEN,
    "metadata_invalid": status.HTTP_400_BAD_REQUEST,
    "metadata_too_deep": status.HTTP_400_BAD_REQUEST,
    "metadata_too_large": status.HTTP_400_BAD_REQUEST,
}


def error_response(code: str, detail: Any, status_code: int) -> Response:
    """The API's one error shape: ``{"code": ..., "detail": ...}``."""
    return Response({"code": code, "detail": detail}, status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render anonauth's errors and DRF's own in the ``{"code", "detail"}`` shape; log
    and count each (``anonauth.gates``)."""
    response = _error_response(exc, context)
    if response is not None:
        code = response.data.get("code") if isinstance(response.data, dict) else None
        observe.refused(
            context.get("request"), str(code or "error"), where="api", status=response.status_code
        )
    return response


def _error_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, AnonAuthError):
        detail = exc.messages if isinstance(exc, PasswordInvalid) else exc.message
        if isinstance(exc, CreationRefused):  # the hook's own code and status
            status_code = exc.status
        else:
            status_code = STATUS_BY_CODE.get(exc.code, 400)
        error = error_response(exc.code, detail, status_code)
        if isinstance(exc, RateLimited):
            error["Retry-After"] = str(exc.retry_after)
        return error
    if isinstance(exc, RequestDataTooBig):
        return error_response("request_too_large", _("The request body is too large."), 413)
    if isinstance(exc, DatabaseError):
        logger.exception("anonauth: database error in the API", exc_info=exc)
        return error_response("unavailable", GuestUnavailable.default_message, 503)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid"
        response.data = {"code": code, "detail": response.data.get("detail", response.data)}
    return response


class GuestSessionAuthentication(SessionAuthentication):
    """Session authentication that answers 401 (not 403) when credentials are missing.

    :class:`AnonAuthAPIView` checks CSRF for every unsafe request this authenticates by
    the session cookie, whatever other headers it carries (an ``Authorization`` header
    exempts only a request a token scheme authenticated), and for cookie clients nobody
    authenticated; so it is not checked a second time here. A session named by
    ``X-Session-Token`` is exempt (:func:`anonauth.sessions.use_session_token`).
    """

    # drf-spectacular: the same session cookie scheme as DRF's SessionAuthentication.
    _spectacular_annotation = {"suppress_collision_warning": True}

    def authenticate_header(self, request: Request) -> str:
        return "Session"

    def enforce_csrf(self, request: Request) -> None:
        return None


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with absurdly nested JSON a 400 ``parse_error`` (not a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise exceptions.ParseError(_("JSON parse error: nested too deeply.")) from error


class AnonAuthAPIView(APIView):
    """Base of anonauth's views: one error shape, CSRF for every cookie client.

    Clients authenticate by the session (cookie or ``X-Session-Token``) or by the
    token schemes among the project's ``DEFAULT_AUTHENTICATION_CLASSES``
    (:func:`anonauth.tokens.token_authenticators`).

    An unsafe request, signed in or not, passes Django's CSRF check if it carries
    cookies (:func:`check_csrf`; a session named by ``X-Session-Token`` is exempt), or
    else the cross-site check of :func:`check_origin`, unless a token scheme
    authenticated it. The check runs before authentication when the request carries no
    ``Authorization`` header (so that a body DRF cannot parse gets the CSRF 403, not a
    415), after it when it carries one: only a token scheme that accepted the header
    exempts the request, not the header itself (a token that fails answers 401, as
    before). A request the session cookie authenticated is checked whatever headers it
    carries, as DRF's ``SessionAuthentication`` would check it.
    """

    authentication_classes = [GuestSessionAuthentication]
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]

    def get_authenticators(self) -> list[Any]:
        return [*super().get_authenticators(), *tokens.token_authenticators()]

    def get_exception_handler(self) -> Any:
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        check_charset(request)
        if _unsafe(request) and not tokens.by_header(request):
            check_csrf_or_origin(request)
        super().initial(request, *args, **kwargs)

    def perform_authentication(self, request: Request) -> None:
        """Authenticate, then check a request with an ``Authorization`` header that no
        token scheme authenticated (the session cookie did, or nobody), before the
        permissions and throttles."""
        super().perform_authentication(request)
        if _unsafe(request) and tokens.by_header(request) and not tokens.by_token(request):
            check_csrf_or_origin(request)


def check_charset(request: Request) -> None:
    """Refuse (400 ``parse_error``) a body whose ``charset`` is no text encoding.

    Django takes any codec ``codecs.lookup()`` knows, ``bz2_codec`` and ``zlib_codec``
    included: DRF releases before 3.18 then decompress a small body past
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (JSON) or fail with a ``LookupError`` (forms). Run
    before anything reads the body, the CSRF check's form parsing included.
    """
    encoding = request._request.encoding
    if encoding is None:
        return
    try:
        "".encode(encoding)
    except LookupError as error:
        message = _('Unsupported charset "%(charset)s" in the Content-Type header.')
        raise exceptions.ParseError(message % {"charset": encoding}) from error


def _unsafe(request: Request) -> bool:
    return request.method not in guests.SAFE_METHODS


def check_csrf_or_origin(request: Request) -> None:
    """The check of a request not authenticated by a token: CSRF for a client with
    cookies, the cross-site check for one without."""
    if request.COOKIES:
        check_csrf(request)
    else:
        check_origin(request)


def check_csrf(request: Request) -> None:
    """Enforce Django's CSRF check (an ``X-Session-Token`` client is exempt: see
    :func:`anonauth.sessions.use_session_token`).

    Run on the Django request, so that a body DRF cannot parse (a cross-site form post)
    still gets the CSRF 403 rather than a 415.
    """
    check = CSRFCheck(lambda request: HttpResponse())
    check.process_request(request._request)
    reason = check.process_view(request._request, _no_view, (), {})
    if reason:
        # The reason is Django's (English, as on Django's own CSRF page), kept for the
        # developer.
        detail = format_lazy(_("CSRF verification failed: {reason}"), reason=reason)
        raise exceptions.PermissionDenied(detail, code="csrf_failed")


def _no_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    return HttpResponse()


def check_origin(request: Request) -> None:
    """Refuse a browser's cross-site request that carries no cookies (no CSRF cookie
    to check): the browser says so in ``Sec-Fetch-Site``, or sends a foreign ``Origin``."""
    headers = request._request.headers
    cross_site = headers.get("Sec-Fetch-Site") == "cross-site"
    origin = headers.get("Origin")
    if cross_site or (origin and not _trusted_origin(request, origin)):
        detail = _("CSRF verification failed: a cross-site request.")
        raise exceptions.PermissionDenied(detail, code="csrf_failed")


def _trusted_origin(request: Request, origin: str) -> bool:
    own = f"{request._request.scheme}://{request._request.get_host()}"
    return origin == own or origin in settings.CSRF_TRUSTED_ORIGINS


def signed_in_as(user: Any, request: Request, *, rotate: bool = False) -> dict[str, Any]:
    """The body of a response that changed who is signed in: the user, and what the
    client must authenticate with from now on (:func:`anonauth.tokens.credentials`)."""
    return {"user": UserSerializer(user).data, **tokens.credentials(user, request, rotate=rotate)}


@documented(
    summary="Sign in as a guest",
    description="Idempotent: a guest already signed in gets itself back (200), its "
    "stored metadata unchanged. `metadata` (optional, a JSON object) is stored with a new "
    "guest: data for the project, never trusted for authorisation. "
    "`session_token` is the session key for app clients that send no cookies, "
    "`null` for cookie clients.",
    request=SignInRequestSerializer,
    responses={
        201: (SignInSerializer, "A new guest, now signed in."),
        200: (SignInSerializer, "The guest already signed in."),
    },
    errors={
        400: [
            "captcha_failed",
            "metadata_invalid",
            "metadata_too_deep",
            "metadata_too_large",
            "invalid",
            "parse_error",
        ],
        403: ["disabled", "csrf_failed", "creation_refused"],
        409: ["already_authenticated"],
        413: ["request_too_large"],
        415: ["unsupported_media_type"],
        429: ["rate_limited", "live_guest_cap"],
        503: ["unavailable", "before_create_failed"],
    },
)
class SignInView(AnonAuthAPIView):
    """POST (optionally ``{"metadata": {...}}``): sign in as a guest (201 new guest, 200
    the guest already signed in)."""

    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        data = SignInRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        metadata = data.validated_data.get("metadata")
        user, created = guests.sign_in(request._request, metadata=metadata)
        body = signed_in_as(user, request)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@documented(
    summary="The signed-in user",
    responses={200: SessionSerializer},
    errors={401: ["not_authenticated"], 503: ["unavailable"]},
)
class SessionView(AnonAuthAPIView):
    """GET: the signed-in user (guest or registered)."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"user": UserSerializer(request.user).data})


@documented(
    summary="Delete the signed-in guest and its data",
    responses={204: (None, "The guest and its data are gone; the session ended.")},
    errors={
        401: ["not_authenticated"],
        403: ["not_guest", "csrf_failed"],
        409: ["deletion_blocked"],
        503: ["unavailable"],
    },
)
class DeleteView(AnonAuthAPIView):
    """POST: a guest deletes itself and its data, and its session ends."""

    permission_classes = [IsAuthenticated, IsGuest]

    def post(self, request: Request) -> Response:
        guests.delete_guest(request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@documented(
    summary="Upgrade the signed-in guest to a full account in place",
    request=UpgradeSerializer,
    responses={200: (UpgradeResultSerializer, "The same user `id`, `is_guest` false.")},
    errors={
        400: ["invalid_email", "password_invalid", "invalid", "parse_error"],
        401: ["not_authenticated"],
        403: ["not_guest", "csrf_failed"],
        409: ["email_in_use", "username_in_use"],
        413: ["request_too_large"],
        415: ["unsupported_media_type"],
        429: ["rate_limited"],
        503: ["unavailable"],
    },
)
@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class UpgradeView(AnonAuthAPIView):
    """POST ``{email, password}``: the signed-in guest becomes a full account in place.

    200 with the same user ``id`` and ``is_guest`` false; the session key rotates, so
    app clients get the new ``session_token`` (``None`` for cookie clients).
    """

    permission_classes = [IsAuthenticated, IsGuest]

    def post(self, request: Request) -> Response:
        serializer = UpgradeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = upgrade.upgrade_guest(
            request.user, request=request._request, **serializer.validated_data
        )
        return Response(signed_in_as(user, request, rotate=True))


@documented(
    summary="Link the signed-in guest into an existing account and sign that in",
    request=LinkSerializer,
    responses={200: LinkResultSerializer},
    errors={
        400: ["invalid_credentials", "invalid", "parse_error"],
        401: ["not_authenticated"],
        403: ["not_guest", "csrf_failed"],
        409: ["link_conflict", "link_failed"],
        413: ["request_too_large"],
        415: ["unsupported_media_type"],
        429: ["rate_limited"],
        503: ["unavailable"],
    },
)
@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class LinkView(AnonAuthAPIView):
    """POST ``{login, password}``: merge the signed-in guest into that account, log it in.

    The login gives the session a new key, so app clients get the ``session_token`` to go
    on with (``None`` for cookie clients)."""

    permission_classes = [IsAuthenticated, IsGuest]

    def post(self, request: Request) -> Response:
        data = LinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account, result = link.link_with_credentials(
            request._request, data.validated_data["login"], data.validated_data["password"]
        )
        body = {**signed_in_as(account, request), "moved": result.moved, "dropped": result.dropped}
        return Response(body)


@documented(
    summary="A transfer code to continue as this guest on another device",
    description="Single use, valid for `ANONAUTH_TRANSFER_CODE_AGE` seconds; a new code "
    "replaces the guest's earlier one. `redeem_url` opens the page that redeems it.",
    responses={201: (TransferCodeSerializer, "A new code for the signed-in guest.")},
    errors={
        401: ["not_authenticated"],
        403: ["not_guest", "csrf_failed"],
        429: ["rate_limited"],
        503: ["unavailable"],
    },
)
class TransferView(AnonAuthAPIView):
    """POST: a transfer code for the signed-in guest (``{code, expires_at, redeem_url}``)."""

    permission_classes = [IsAuthenticated, IsGuest]

    def post(self, request: Request) -> Response:
        issued = transfer.issue(request._request)
        body = {
            "code": issued.grouped,
            "expires_at": issued.expires_at,
            "redeem_url": transfer_redeem_url(request._request, issued.code),
        }
        return Response(TransferCodeSerializer(body).data, status=status.HTTP_201_CREATED)


def transfer_redeem_url(request: HttpRequest, code: str) -> str:
    """The absolute URL of the page that redeems ``code`` (the QR code's target)."""
    path = reverse("anonauth:transfer-enter")
    return request.build_absolute_uri(f"{path}?{urlencode({'code': code})}")


@documented(
    summary="Redeem a transfer code: sign this device in as that guest",
    request=TransferRedeemSerializer,
    responses={200: (SignInSerializer, "The guest, now signed in on this device too.")},
    errors={
        400: ["invalid_transfer_code", "invalid", "parse_error"],
        403: ["csrf_failed"],
        409: ["already_authenticated"],
        413: ["request_too_large"],
        415: ["unsupported_media_type"],
        429: ["rate_limited"],
        503: ["unavailable"],
    },
)
class TransferRedeemView(AnonAuthAPIView):
    """POST ``{code}``: sign this client in as the code's guest, in a new session; app
    clients get the ``session_token`` as from ``sign-in/``."""

    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        data = TransferRedeemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = transfer.redeem(request._request, data.validated_data["code"])
        return Response(signed_in_as(user, request))


class TransferEnterView(View):
    """The browser page that redeems a transfer code (``?code=`` fills it in, as the QR
    code's link does); on success it redirects to ``LOGIN_REDIRECT_URL``."""

    template_name = "anonauth/transfer_enter.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, request.GET.get("code", "")[:32], None)

    def post(self, request: HttpRequest) -> HttpResponse:
        code = request.POST.get("code", "")[:32]
        try:
            transfer.redeem(request, code)
        except AnonAuthError as error:
            status = STATUS_BY_CODE.get(error.code, 400)
            observe.refused(request, error.code, where="page", status=status)
            return self.page(request, code, error, status=status)
        return redirect(resolve_url(settings.LOGIN_REDIRECT_URL))

    def page(
        self, request: HttpRequest, code: str, error: AnonAuthError | None, status: int = 200
    ) -> HttpResponse:
        context = {"code": code, "error": error}
        return render(request, self.template_name, context, status=status)


@documented(
    summary="Download every row of the signed-in user's data, as one JSON document",
    description="For guests and registered users alike (GDPR articles 15 and 20): the user "
    "(without its password hash), its guest facts (`null` for a registered user), and, per "
    "relation to the user model, every row pointing at it (minus `ANONAUTH_LINK_EXCLUDE` "
    "and framework tables). Streamed as an attachment; an error after the first bytes "
    "cuts the document short (invalid JSON): a client must parse it whole before trusting "
    "it.",
    responses={200: (export.DOCUMENT_SCHEMA, "The export (`Content-Disposition: attachment`).")},
    errors={
        401: ["not_authenticated"],
        429: ["rate_limited"],
        503: ["unavailable"],
    },
)
class ExportView(AnonAuthAPIView):
    """GET: the signed-in user's data export, streamed (``anonauth.export``)."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> StreamingHttpResponse:
        stream = export.export_for_request(request._request)
        return export.streaming_response(request._request, stream, export.filename(request.user))
