"""``POST /burst/add/``: django-guest-user creates the guest, the view writes its cart row."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST
from guest_user.decorators import allow_guest_user

from example_project.shop.models import Cart


@require_POST
@allow_guest_user
def add(request: HttpRequest) -> HttpResponse:
    Cart.objects.create(owner=request.user)
    return HttpResponse(f"guest {request.user.pk}")


urlpatterns = [path("burst/add/", add)]
