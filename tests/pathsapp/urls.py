"""The URLs of tests/test_auth_paths.py: the base test URLs plus the views above."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from tests.pathsapp import views
from tests.urls import urlpatterns as base_urlpatterns

router = DefaultRouter()
router.register("notes", views.NoteViewSet, basename="note")
router.register("guest-notes", views.GuestNoteViewSet, basename="guest-note")

urlpatterns = [
    path("paths/session-first/", views.SessionFirstView.as_view()),
    path("paths/token-first/", views.TokenFirstView.as_view()),
    path("paths/jwt-only/", views.JWTOnlyView.as_view()),
    path("paths/guest-jwt/", views.GuestJWTView.as_view()),
    path("paths/session-token/", views.SessionTokenView.as_view()),
    path("paths/last-seen/", views.last_seen),
    path("paths/api-function/", views.guest_api_function),
    path("paths/async-members/", views.async_members_only),
    path("paths/async-guest/", views.async_guest_view),
    path("paths/async-ensure/", views.async_ensure),
    path("paths/login/<int:pk>/", views.login_as),
    path("paths/alogin/<int:pk>/", views.alogin_as),
    path("paths/", include(router.urls)),
    *base_urlpatterns,
]
