"""URLs of the HTTP API: ``path("auth/anonymous/", include("anonauth.urls"))``."""

from __future__ import annotations

from django.urls import path

from anonauth import views

app_name = "anonauth"

urlpatterns = [
    path("sign-in/", views.SignInView.as_view(), name="sign-in"),
    path("session/", views.SessionView.as_view(), name="session"),
    path("link/", views.LinkView.as_view(), name="link"),
    path("upgrade/", views.UpgradeView.as_view(), name="upgrade"),
    path("delete/", views.DeleteView.as_view(), name="delete"),
    path("transfer/", views.TransferView.as_view(), name="transfer"),
    path("transfer/redeem/", views.TransferRedeemView.as_view(), name="transfer-redeem"),
    path("transfer/enter/", views.TransferEnterView.as_view(), name="transfer-enter"),
    path("export/", views.ExportView.as_view(), name="export"),
]
