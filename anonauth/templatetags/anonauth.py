"""Template filters and tags: ``{% load anonauth %}{{ user|is_guest }}``,
``{% transfer_code code %}``."""

from __future__ import annotations

from typing import Any

from django import template
from django.template import Context
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from anonauth import guests, transfer
from anonauth.views import transfer_redeem_url

register = template.Library()


@register.filter
def is_guest(user: Any) -> bool:
    """Whether ``user`` is a guest."""
    return guests.is_guest(user)


@register.simple_tag(takes_context=True)
def transfer_code(context: Context, code: str) -> SafeString:
    """``{% transfer_code code %}``: the transfer code ``code`` grouped (``ABCD-EFGH``) and,
    with segno installed (the ``qr`` extra), an SVG QR code of the page that redeems it.
    Without segno, or outside a request, the code alone."""
    text = transfer.group(transfer.normalise(code) or code)
    parts = [format_html('<span class="anonauth-transfer-code">{}</span>', text)]
    request = context.get("request")
    if request is not None and (svg := _qr_svg(transfer_redeem_url(request, code))):
        parts.append(format_html('<span class="anonauth-transfer-qr">{}</span>', svg))
    return mark_safe("".join(parts))  # each part escaped by format_html above


def _qr_svg(url: str) -> SafeString | None:
    try:
        import segno
    except ImportError:
        return None
    qr = segno.make(url, error="m")
    return mark_safe(qr.svg_inline(scale=4, title=url))  # segno escapes the title
