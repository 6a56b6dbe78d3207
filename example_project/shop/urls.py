from __future__ import annotations

from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/<int:product_id>/", views.add_to_cart, name="add"),
    path("checkout/", views.checkout, name="checkout"),
    path("account/upgrade/", views.upgrade_account, name="upgrade"),
    path("transfer/", views.continue_elsewhere, name="transfer"),
    path("account/guest/", views.GuestAccountView.as_view(), name="guest-account"),
    path("orders/", views.OrderListView.as_view(), name="orders"),
]
