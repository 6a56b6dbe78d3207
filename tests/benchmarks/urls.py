"""The benchmark's URLconf: one page that reads ``request.user``, with and without anonauth.

``/page/`` is the same view body in both configurations; with anonauth installed it is
marked ``guest_allowed``. The module imports anonauth only when it is installed.
"""

from __future__ import annotations

from django.apps import apps
from django.http import HttpRequest, HttpResponse
from django.urls import path


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"user {request.user.pk}")


if apps.is_installed("anonauth"):
    from anonauth.decorators import guest_allowed

    def guest_page(request: HttpRequest) -> HttpResponse:
        return page(request)

    urlpatterns = [path("page/", guest_allowed(guest_page))]
else:
    urlpatterns = [path("page/", page)]
