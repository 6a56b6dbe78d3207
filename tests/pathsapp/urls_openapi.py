"""anonauth's API beside a project view that accepts the session cookie and the
``X-Session-Token`` header (its schema must document both, the cookie once)."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from anonauth.authentication import SessionTokenAuthentication


class ProjectView(APIView):
    authentication_classes = [SessionTokenAuthentication, SessionAuthentication]

    def get(self, request: object) -> Response:
        return Response({})


urlpatterns = [
    path("auth/anonymous/", include("anonauth.urls")),
    path("project/", ProjectView.as_view()),
]
