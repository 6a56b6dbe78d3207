"""Views for tests/test_auth_paths.py: the ways a project authenticates (DRF ViewSets,
Token and JWT authentication, async views), each marked as a project would mark it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import alogin, login
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import api_view
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from anonauth.authentication import SessionTokenAuthentication
from anonauth.decorators import guest_allowed, registered_user_required
from anonauth.guests import is_guest
from anonauth.mixins import GuestRequiredMixin
from tests.linkapp.models import Note


def describe(user: Any) -> dict[str, Any]:
    return {"id": user.pk, "is_guest": is_guest(user) if user.is_authenticated else False}


@guest_allowed
class NoteViewSet(viewsets.ViewSet):
    """A router-built ViewSet that guests may use."""

    permission_classes = [IsAuthenticated]

    def list(self, request: Request) -> Response:
        return Response(describe(request.user))

    def create(self, request: Request) -> Response:
        Note.objects.create(author=request.user, text=str(request.data.get("text", "")))
        return Response(describe(request.user), status=201)


class GuestNoteViewSet(GuestRequiredMixin, viewsets.ViewSet):
    """A router-built ViewSet for guests only (``GuestRequiredMixin``)."""

    def list(self, request: Request) -> Response:
        return Response(describe(request.user))


@guest_allowed
class SessionFirstView(APIView):
    """Guests allowed; session, then token, then JWT authentication (the usual order)."""

    authentication_classes = [SessionAuthentication, TokenAuthentication, JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(describe(request.user))

    def post(self, request: Request) -> Response:
        Note.objects.create(author=request.user, text="posted")
        return Response(describe(request.user))


@guest_allowed
class TokenFirstView(SessionFirstView):
    authentication_classes = [TokenAuthentication, JWTAuthentication, SessionAuthentication]


class SessionTokenView(APIView):
    """A project view for app clients on the session: ``X-Session-Token``, then cookies."""

    authentication_classes = [SessionTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({**describe(request.user), "auth": request.auth})

    def post(self, request: Request) -> Response:
        return Response(describe(request.user))


@guest_allowed
class GuestJWTView(APIView):
    """Guests allowed on a view that authenticates by JWT only (no session class)."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(describe(request.user))


class JWTOnlyView(APIView):
    """Not guest-allowed: a view that only token clients reach."""

    authentication_classes = [JWTAuthentication, TokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(describe(request.user))


@guest_allowed
@api_view(["GET"])
def guest_api_function(request: Request) -> Response:
    return Response(describe(request.user))


@registered_user_required
async def async_members_only(request: HttpRequest) -> HttpResponse:
    return HttpResponse("members only")


@guest_allowed
async def async_guest_view(request: HttpRequest) -> JsonResponse:
    from anonauth.guests import ais_guest

    user = await request.auser()
    return JsonResponse({"id": user.pk, "is_guest": await ais_guest(user)})


async def async_ensure(request: HttpRequest) -> JsonResponse:
    from anonauth.guests import aensure_guest, ais_guest

    user = await aensure_guest(request)
    guest = await ais_guest(user)
    refusal = request.anonauth.refusal  # type: ignore[attr-defined]
    return JsonResponse(
        {"id": user.pk, "is_guest": guest, "refusal": refusal.code if refusal else None}
    )


def login_as(request: HttpRequest, pk: int) -> HttpResponse:
    """Log the user ``pk`` in with Django's ``login()`` (a stand-in for any login view)."""
    from django.contrib.auth import get_user_model

    login(request, get_user_model().objects.get(pk=pk), backend=_backend())
    return HttpResponse("logged in")


async def alogin_as(request: HttpRequest, pk: int) -> HttpResponse:
    from django.contrib.auth import get_user_model

    user = await get_user_model().objects.aget(pk=pk)
    await alogin(request, user, backend=_backend())
    return HttpResponse("logged in")


def _backend() -> str:
    return "django.contrib.auth.backends.ModelBackend"


@guest_allowed
def last_seen(request: HttpRequest) -> JsonResponse:
    """What the view sees: the guest's ``last_seen`` as stored when the view runs."""
    from anonauth.models import Guest

    guest = Guest.objects.filter(user_id=request.user.pk).first()
    return JsonResponse(
        {
            "last_seen": guest.last_seen.isoformat() if guest else None,
            "authenticated": request.user.is_authenticated,
        }
    )
