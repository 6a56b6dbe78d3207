from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from anonauth.decorators import guest_allowed, registered_user_required

from .models import Cart, CartItem, Order, Product


def product_list(request: HttpRequest) -> HttpResponse:
    return render(request, "shop/product_list.html", {"products": Product.objects.all()})


@guest_allowed
@require_POST
def add_to_cart(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id)
    if not request.user.is_authenticated:
        # An admission gate refused a guest (no cookies, rate limit, ...).
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
        cart = Cart.objects.filter(owner=request.user).prefetch_related("items__product").first()
    return render(request, "shop/cart.html", {"cart": cart})


@registered_user_required
@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    cart = get_object_or_404(Cart, owner=request.user)
    with transaction.atomic():
        order = Order.objects.create(customer=request.user, total=cart.total())
        cart.items.all().delete()
    messages.success(request, f"Order #{order.pk} placed. Thank you!")
    return redirect("shop:products")
