"""The HTTP API and its OpenAPI schema, alone: what the schemathesis run tests."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("auth/anonymous/", include("anonauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
]
