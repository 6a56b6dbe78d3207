"""Class-based-view mixins for anonauth's decorators.

Put the mixin first among the bases (like Django's ``LoginRequiredMixin``)::

    class CartView(GuestAllowedMixin, TemplateView): ...

Each applies its decorator to the class it is mixed into, so it works with Django's
generic views (sync and async) and DRF ``APIView`` subclasses alike.
"""

from __future__ import annotations

from typing import Any

from anonauth.decorators import guest_allowed, guest_required, registered_user_required


class GuestAllowedMixin:
    """:func:`~anonauth.decorators.guest_allowed` for a class-based view
    (django-guest-user's ``AllowGuestUserMixin``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        guest_allowed(cls)


class GuestRequiredMixin:
    """:func:`~anonauth.decorators.guest_required` for a class-based view."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        guest_required(cls)


class RegisteredUserRequiredMixin:
    """:func:`~anonauth.decorators.registered_user_required` for a class-based view
    (django-guest-user's ``RegularUserRequiredMixin``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registered_user_required(cls)
