"""The shop's models without its anonauth receivers, for the projects without anonauth."""

from __future__ import annotations

from django.apps import AppConfig


class ShopModelsConfig(AppConfig):
    name = "example_project.shop"
    label = "shop"
    default_auto_field = "django.db.models.BigAutoField"
