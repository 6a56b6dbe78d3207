from __future__ import annotations

from django.contrib import admin

from .models import Cart, CartItem, Order, Product

admin.site.register(Product)
admin.site.register(Order)


class CartItemInline(admin.TabularInline):
    model = CartItem


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    inlines = [CartItemInline]
