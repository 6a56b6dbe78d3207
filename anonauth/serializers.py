"""Serializers of the HTTP API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty

from anonauth.guests import is_guest


class MetadataField(serializers.DictField):
    """A guest's metadata: a JSON object. A request's is checked by
    :func:`anonauth.metadata.clean` (with codes of its own), not by DRF, and only a JSON
    body can carry one (a form's ``metadata`` is text, which is refused)."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, data: Any) -> Any:
        return data


class UserSerializer(serializers.Serializer[Any]):
    """A user as the API shows it. Guests show no email (theirs is never real), and
    their metadata; a registered user's ``metadata`` is ``null``."""

    id = serializers.ReadOnlyField(source="pk")
    username = serializers.ReadOnlyField(source="get_username")
    email = serializers.SerializerMethodField()
    is_guest = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()

    def get_email(self, user: Any) -> str | None:
        if is_guest(user):
            return None
        return getattr(user, user.get_email_field_name(), None) or None

    def get_is_guest(self, user: Any) -> bool:
        return is_guest(user)

    def get_metadata(self, user: Any) -> dict[str, Any] | None:
        """The guest's stored metadata (the ``Guest`` row ``is_guest`` loaded)."""
        return user.anonauth_guest.metadata if is_guest(user) else None


class SignInRequestSerializer(serializers.Serializer[Any]):
    """The sign-in request: an optional JSON object of metadata stored with a new guest
    (``ANONAUTH_METADATA_MAX_BYTES``, ``ANONAUTH_METADATA_MAX_DEPTH``)."""

    metadata = MetadataField(required=False, allow_null=True)


class TokenPairSerializer(serializers.Serializer[Any]):
    """A simplejwt pair for the user now signed in (with the ``is_guest`` claim)."""

    access = serializers.CharField()
    refresh = serializers.CharField()


class SignInSerializer(serializers.Serializer[Any]):
    """The sign-in answer: the guest, and what the client authenticates with from now
    on: for app clients on the session the ``session_token``; for JWT clients
    ``tokens``; for DRF Token clients ``token``."""

    user = UserSerializer()
    session_token = serializers.CharField(allow_null=True)
    tokens = TokenPairSerializer(required=False)
    token = serializers.CharField(required=False)


class TextField(serializers.CharField):
    """A ``CharField`` that takes text only: DRF's turns a number into its digits, so
    ``"password": 84216973501`` was a password, while the schema says ``string``. A
    number, boolean, list or object answers 400 ``invalid`` like any other bad field."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# ``min_length=1`` on the request fields: a blank one is refused anyway (``allow_blank``
# is false), this documents it as ``minLength: 1`` whatever the project's drf-spectacular
# settings (it adds that for ``allow_blank`` only with ``COMPONENT_SPLIT_REQUEST`` or
# ``ENFORCE_NON_BLANK_FIELDS``).


class UpgradeSerializer(serializers.Serializer[Any]):
    """The upgrade request. The email's format is checked by ``upgrade_guest``
    (code ``invalid_email``), so it is a plain string here."""

    email = TextField(min_length=1, max_length=320)
    password = TextField(trim_whitespace=False, min_length=1, max_length=4096)


class SessionSerializer(serializers.Serializer[Any]):
    """The session answer: the signed-in user."""

    user = UserSerializer()


class UpgradeResultSerializer(SignInSerializer):
    """The upgrade answer: the same user, no longer a guest, and for app clients the
    session's new token (the key rotates with the upgrade)."""


class LinkSerializer(serializers.Serializer[Any]):
    """The link request: an existing account's login (username or email) and password."""

    login = TextField(min_length=1, max_length=254)
    password = TextField(min_length=1, max_length=4096, trim_whitespace=False)


class LinkResultSerializer(SignInSerializer):
    """The link answer: the account now signed in, for app clients the session token to
    go on with, and the rows moved or dropped per relation label (``"shop.Cart.owner"``)."""

    moved = serializers.DictField(child=serializers.IntegerField(min_value=0))
    dropped = serializers.DictField(child=serializers.IntegerField(min_value=0))


class TransferCodeSerializer(serializers.Serializer[Any]):
    """A transfer code as its guest sees it, once: grouped (``ABCD-EFGH``), when it
    expires, and the page that redeems it (the QR code's target)."""

    code = serializers.CharField()
    expires_at = serializers.DateTimeField()
    redeem_url = serializers.URLField()


class TransferRedeemSerializer(serializers.Serializer[Any]):
    """The redeem request: the code as typed (any case; spaces and dashes ignored)."""

    code = TextField(min_length=1, max_length=32)
