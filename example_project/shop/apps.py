from __future__ import annotations

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "example_project.shop"
    label = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anonauth.signals import guest_linked, guest_linking, guest_upgraded

        from .receivers import announce_cart, carry_campaign, merge_carts

        guest_linking.connect(merge_carts, dispatch_uid="shop.merge_carts")
        guest_linked.connect(announce_cart, dispatch_uid="shop.announce_cart")
        guest_upgraded.connect(carry_campaign, dispatch_uid="shop.carry_campaign_upgraded")
        guest_linked.connect(carry_campaign, dispatch_uid="shop.carry_campaign_linked")
