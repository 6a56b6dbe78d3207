"""The test URLs with allauth's, its signup views replaced by anonauth's guest-aware ones."""

from __future__ import annotations

from django.urls import include, path

from anonauth.contrib.allauth import views as guest_views
from tests.urls import urlpatterns as base_urlpatterns

urlpatterns = [
    path("accounts/signup/", guest_views.SignupView.as_view(), name="account_signup"),
    path(
        "accounts/3rdparty/signup/",
        guest_views.SocialSignupView.as_view(),
        name="socialaccount_signup",
    ),
    path("accounts/login/", guest_views.LoginView.as_view(), name="account_login"),
    path(
        "accounts/login/code/",
        guest_views.request_login_code,
        name="account_request_login_code",
    ),
    path(
        "accounts/login/code/confirm/",
        guest_views.confirm_login_code,
        name="account_confirm_login_code",
    ),
    path("accounts/", include("allauth.urls")),
    path(
        "_allauth/browser/v1/auth/signup",
        guest_views.HeadlessSignupView.as_api_view(client="browser"),
    ),
    path("_allauth/app/v1/auth/signup", guest_views.HeadlessSignupView.as_api_view(client="app")),
    path(
        "_allauth/browser/v1/auth/login",
        guest_views.HeadlessLoginView.as_api_view(client="browser"),
    ),
    path("_allauth/app/v1/auth/login", guest_views.HeadlessLoginView.as_api_view(client="app")),
    path(
        "_allauth/browser/v1/auth/code/request",
        guest_views.HeadlessRequestLoginCodeView.as_api_view(client="browser"),
    ),
    path(
        "_allauth/app/v1/auth/code/request",
        guest_views.HeadlessRequestLoginCodeView.as_api_view(client="app"),
    ),
    path(
        "_allauth/browser/v1/auth/code/confirm",
        guest_views.HeadlessConfirmLoginCodeView.as_api_view(client="browser"),
    ),
    path(
        "_allauth/app/v1/auth/code/confirm",
        guest_views.HeadlessConfirmLoginCodeView.as_api_view(client="app"),
    ),
    path("_allauth/", include("allauth.headless.urls")),
    *base_urlpatterns,
]
