from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/anonymous/", include("anonauth.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("csrf/", views.csrf, name="csrf"),
    path("plain/", views.plain, name="plain"),
    path("guest-fn/", views.guest_fn, name="guest-fn"),
    path("guest-lean/", views.guest_lean, name="guest-lean"),
    path("guest-cbv/", views.GuestCBV.as_view(), name="guest-cbv"),
    path("guest-drf/", views.GuestDRF.as_view(), name="guest-drf"),
    path("guest-api-view/", views.guest_api_view, name="guest-api-view"),
    path("ensure/", views.ensure, name="ensure"),
    path("ensure-drf/", views.EnsureDRF.as_view()),
    path("ensure-api-view/", views.ensure_api_view),
    path("ensure-and-write/", views.ensure_and_write, name="ensure-and-write"),
    path("registered-fn/", views.registered_fn, name="registered-fn"),
    path("registered-cbv/", views.RegisteredCBV.as_view(), name="registered-cbv"),
    path("registered-drf/", views.RegisteredDRF.as_view(), name="registered-drf"),
    path("async-guest/", views.async_guest, name="async-guest"),
    path("session-touch/", views.session_touch, name="session-touch"),
    path("sync-login/", views.sync_login, name="sync-login"),
    path("async-login/", views.async_login, name="async-login"),
    path("guest-only-fn/", views.guest_only_fn, name="guest-only-fn"),
    path("guest-only-async/", views.guest_only_async, name="guest-only-async"),
    path("guest-only-cbv/", views.GuestOnlyCBV.as_view(), name="guest-only-cbv"),
    path("guest-only-async-cbv/", views.GuestOnlyAsyncCBV.as_view(), name="guest-only-async-cbv"),
    path("guest-only-drf/", views.GuestOnlyDRF.as_view(), name="guest-only-drf"),
    path("guest-allowed-mixin/", views.GuestAllowedCBV.as_view(), name="guest-allowed-mixin"),
    path("registered-mixin/", views.RegisteredMixinCBV.as_view(), name="registered-mixin"),
    path("", include("example_project.shop.urls")),
]
