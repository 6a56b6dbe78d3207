"""The example shop's URLs, and ``POST /burst/add/``: the view of the other sides (one cart
row for the visitor) marked ``guest_allowed``, so anonauth is compared on the same work."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

from anonauth.decorators import guest_allowed
from example_project.shop.models import Cart
from example_project.urls import urlpatterns as shop_urlpatterns


@guest_allowed
@require_POST
def add(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:  # an admission gate refused the visitor
        return HttpResponse("refused", status=403)
    Cart.objects.create(owner=request.user)
    return HttpResponse(f"guest {request.user.pk}")


urlpatterns = [path("burst/add/", add), *shop_urlpatterns]
