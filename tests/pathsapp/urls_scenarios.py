"""The URLs of tests/test_scenarios.py: allauth's (tests.urls_allauth, which include the
base test URLs) plus the ``paths/`` views of tests.pathsapp.urls, and Django's own
``LoginView`` (allauth's takes ``accounts/login/``)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from tests.pathsapp.urls import urlpatterns as paths_urlpatterns
from tests.urls_allauth import urlpatterns as allauth_urlpatterns

urlpatterns = [
    path("django/login/", auth_views.LoginView.as_view(), name="django-login"),
    *[pattern for pattern in paths_urlpatterns if str(pattern.pattern).startswith("paths/")],
    *allauth_urlpatterns,
]
