"""Views the tests drive: each kind of view, marked and unmarked."""

from __future__ import annotations

from django.contrib.auth import aauthenticate, alogin, authenticate, login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from django.views.decorators.csrf import ensure_csrf_cookie
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anonauth import state
from anonauth.decorators import guest_allowed, guest_required, registered_user_required
from anonauth.guests import ensure_guest, is_guest
from anonauth.mixins import GuestAllowedMixin, GuestRequiredMixin, RegisteredUserRequiredMixin


def describe(request: HttpRequest) -> JsonResponse:
    user = request.user
    refusal = state.of(request).refusal
    return JsonResponse(
        {
            "id": user.pk,
            "is_guest": is_guest(user),
            "refusal": refusal.code if refusal else None,
        }
    )


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain")


@ensure_csrf_cookie
def csrf(request: HttpRequest) -> HttpResponse:
    return HttpResponse("csrf cookie set")


def session_touch(request: HttpRequest) -> HttpResponse:
    request.session.get("anything")
    return HttpResponse("touched")


@guest_allowed
def guest_fn(request: HttpRequest) -> JsonResponse:
    return describe(request)


@guest_allowed
def guest_lean(request: HttpRequest) -> HttpResponse:
    """A marked view that only reads the user's id (for query counts)."""
    return HttpResponse(str(request.user.pk))


@guest_allowed
class GuestCBV(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return describe(request)

    def post(self, request: HttpRequest) -> JsonResponse:
        return describe(request)


@guest_allowed
class GuestDRF(APIView):
    def get(self, request: Request) -> JsonResponse:
        return describe(request._request)

    def post(self, request: Request) -> JsonResponse:
        return describe(request._request)


@guest_allowed
@api_view(["GET", "POST"])
def guest_api_view(request: Request) -> JsonResponse:
    return describe(request._request)


def ensure(request: HttpRequest) -> JsonResponse:
    ensure_guest(request)
    return describe(request)


class EnsureDRF(APIView):
    """An unmarked DRF view that asks for a guest with DRF's ``Request``."""

    def get(self, request: Request) -> Response:
        user = ensure_guest(request)
        assert request.user == user  # DRF's user, not only the Django request's
        return Response({"id": user.pk, "is_guest": is_guest(user), "refusal": None})

    post = get


@api_view(["GET", "POST"])
def ensure_api_view(request: Request) -> Response:
    user = ensure_guest(request)
    return Response({"id": request.user.pk, "is_guest": is_guest(user), "refusal": None})


@registered_user_required
def registered_fn(request: HttpRequest) -> HttpResponse:
    return HttpResponse("members only")


@registered_user_required
class RegisteredCBV(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("members only")


@registered_user_required
class RegisteredDRF(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


@guest_allowed
async def async_guest(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    guest = await _is_guest(user)
    return JsonResponse({"id": user.pk, "is_guest": guest})


async def _is_guest(user: object) -> bool:
    from asgiref.sync import sync_to_async

    return await sync_to_async(is_guest)(user)


def sync_login(request: HttpRequest) -> JsonResponse:
    """Sign in with a password through ``login()``, as any project login view does."""
    account = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if account is None:
        return JsonResponse({"id": None}, status=400)
    login(request, account)
    return JsonResponse({"id": account.pk})


async def async_login(request: HttpRequest) -> JsonResponse:
    """The same through ``alogin()`` in an async view."""
    account = await aauthenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if account is None:
        return JsonResponse({"id": None}, status=400)
    await alogin(request, account)
    return JsonResponse({"id": account.pk})


def ensure_and_write(request: HttpRequest) -> HttpResponse:
    """Creates a guest, then writes to the session (so the response must save it)."""
    ensure_guest(request)
    request.session["written_by_the_view"] = True
    return HttpResponse("written")


@guest_required
def guest_only_fn(request: HttpRequest) -> HttpResponse:
    return HttpResponse("guests only")


@guest_required
async def guest_only_async(request: HttpRequest) -> HttpResponse:
    return HttpResponse("guests only")


class GuestOnlyCBV(GuestRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("guests only")


class GuestOnlyAsyncCBV(GuestRequiredMixin, View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("guests only")


class GuestOnlyDRF(GuestRequiredMixin, APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class GuestAllowedCBV(GuestAllowedMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("guest" if is_guest(request.user) else "anonymous")


class RegisteredMixinCBV(RegisteredUserRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("members only")
