from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.db.models import F, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.generic import ListView, TemplateView

from anonauth.decorators import guest_allowed
from anonauth.exceptions import AnonAuthError, PasswordInvalid
from anonauth.guests import is_guest
from anonauth.mixins import GuestRequiredMixin, RegisteredUserRequiredMixin
from anonauth.models import Guest
from anonauth.transfer import issue
from anonauth.upgrade import upgrade_guest

from .models import Cart, CartItem, Order, Product
from .policy import CAMPAIGN_KEY, note_campaign


def product_list(request: HttpRequest) -> HttpResponse:
    note_campaign(request)  # ?utm_campaign=: the guest made later keeps it (policy.py)
    campaign = None
    if is_guest(request.user):
        campaign = request.user.anonauth_guest.metadata.get(CAMPAIGN_KEY)  # type: ignore[union-attr]
    context = {"products": Product.objects.all(), "campaign": campaign}
    return render(request, "shop/product_list.html", context)


@guest_allowed
@require_POST
def add_to_cart(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id)
    if not request.user.is_authenticated:
        # An admission gate refused a guest (no cookies, rate limit, ...).
        refusal = request.anonauth.refusal  # type: ignore[attr-defined]
        if refusal is not None and refusal.code == "live_guest_cap":
            messages.error(request, str(refusal))  # too many guests from this network
        else:
            messages.error(request, "Please enable cookies to shop without an account.")
        return redirect("shop:products")
    cart, _ = Cart.objects.get_or_create(owner=request.user)
    item, created = CartItem.objects.get_or_create(cart=cart, product=product)
    if not created:
        CartItem.objects.filter(pk=item.pk).update(quantity=F("quantity") + 1)
    messages.success(request, f"Added {product.name} to your cart.")
    return redirect("shop:cart")


def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = None
    if request.user.is_authenticated:
        items = CartItem.objects.select_related("product").order_by("product__name")
        carts = Cart.objects.filter(owner=request.user)
        cart = carts.prefetch_related(Prefetch("items", queryset=items)).first()
    return render(request, "shop/cart.html", {"cart": cart})


def checkout(request: HttpRequest) -> HttpResponse:
    """Place the order: registered users only.

    A guest is told why it cannot, and sent to log in with ``next`` = the cart (not this
    POST-only URL, which a browser would then GET): from there it logs in, or creates an
    account from the banner, and comes back to its cart to check out.
    """
    if request.method != "POST":  # a bookmarked or followed link: nothing to place
        return redirect("shop:cart")
    if not request.user.is_authenticated or is_guest(request.user):
        messages.info(request, "Create an account or log in to check out: your cart stays.")
        query = urlencode({"next": reverse("shop:cart")})
        return redirect(f"{resolve_url('login')}?{query}")
    cart = get_object_or_404(Cart, owner=request.user)
    with transaction.atomic():
        order = Order.objects.create(customer=request.user, total=cart.total())
        cart.items.all().delete()
    messages.success(request, f"Order #{order.pk} placed. Thank you!")
    return redirect("shop:products")


class UpgradeForm(forms.Form):
    email = forms.CharField(max_length=254, widget=forms.EmailInput)
    password = forms.CharField(strip=False, widget=forms.PasswordInput)


def upgrade_account(request: HttpRequest) -> HttpResponse:
    """Turn the guest into an account: same user, same cart."""
    if not is_guest(request.user):
        return redirect("shop:cart" if request.user.is_authenticated else "shop:products")
    form = UpgradeForm(request.POST or None)
    if form.is_valid() and _upgrade(request, form):
        messages.success(request, "Your account is ready: your cart is still here.")
        return redirect("shop:cart")
    return render(request, "shop/upgrade.html", {"form": form})


def _upgrade(request: HttpRequest, form: UpgradeForm) -> bool:
    email, password = form.cleaned_data["email"], form.cleaned_data["password"]
    try:
        # The demo logs in by username (Django's LoginView), so the email is the username.
        upgrade_guest(request.user, email=email, password=password, request=request, username=email)
    except PasswordInvalid as error:
        form.add_error("password", error.messages)
        return False
    except AnonAuthError as error:
        form.add_error("email", error.message)
        return False
    return True


class LogoutView(auth_views.LogoutView):
    """Django's logout, saying so on the page it redirects to."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response


def continue_elsewhere(request: HttpRequest) -> HttpResponse:
    """The "Continue on another device" page: a guest gets a code (and its QR code) on POST; any
    visitor may enter a code from another device (the form posts to anonauth's page)."""
    code = None
    if request.method == "POST" and is_guest(request.user):
        try:
            code = issue(request).code
        except AnonAuthError as error:
            messages.error(request, str(error))
    return render(request, "shop/transfer.html", {"code": code})


class GuestAccountView(GuestRequiredMixin, TemplateView):
    """ "Your guest account": guests only (``GuestRequiredMixin``). A visitor who opens it
    becomes a guest first; a registered user is sent to ``LOGIN_REDIRECT_URL``."""

    template_name = "shop/guest_account.html"

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        items = CartItem.objects.filter(cart__owner=self.request.user)
        return super().get_context_data(
            guest=Guest.objects.get(user=self.request.user),
            cart_items=sum(items.values_list("quantity", flat=True)),
            **kwargs,
        )


class OrderListView(RegisteredUserRequiredMixin, ListView):  # type: ignore[type-arg]
    """A member's orders (``RegisteredUserRequiredMixin``): a guest or an anonymous visitor
    is sent to log in (``ANONAUTH_REGISTER_URL``, default ``LOGIN_URL``) and comes back."""

    template_name = "shop/orders.html"
    context_object_name = "orders"

    def get_queryset(self) -> QuerySet[Order]:
        return Order.objects.filter(customer=self.request.user).order_by("-created_at")
