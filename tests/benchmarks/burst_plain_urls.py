"""``POST /burst/add/`` with no guest app: the anonymous visitor's cart is its session row."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST


@require_POST
def add(request: HttpRequest) -> HttpResponse:
    request.session["cart"] = [1]  # SessionMiddleware INSERTs the session row
    return HttpResponse("anonymous")


urlpatterns = [path("burst/add/", add)]
