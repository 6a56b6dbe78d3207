"""anonauth's signals. All are sent with keyword arguments; receivers take ``**kwargs``.

Signals sent "after commit" are sent with ``send_robust``: a receiver that raises is
logged and does not undo the committed change nor break the request.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

from anonauth import db

logger = logging.getLogger("anonauth")

# A guest user was created. Sent after the creating transaction commits.
# sender: the user model; arguments: user, request (None outside a request).
guest_created = Signal()

# A guest was upgraded in place to a full account. Sent after commit.
# sender: the user model; arguments: user, request, method ("password", "social", ...),
# metadata (the guest's metadata, a dict, as it was before the upgrade).
guest_upgraded = Signal()

# A guest is about to be merged into an existing account. Sent inside the link
# transaction: an exception rolls the whole link back.
# sender: the user model; arguments: guest, user, request, metadata (the guest's).
guest_linking = Signal()

# A guest was merged into an existing account. Sent after commit.
# sender: the user model; arguments: guest_id, user, request, result (a LinkResult),
# metadata (the guest's, as it was before the link).
guest_linked = Signal()

# A guest deleted itself (the API's delete/) or was deleted when it logged out.
# Sent after commit. sender: the user model; arguments: user_id, request.
guest_deleted = Signal()

# A batch of stale guests was purged. Sent after each batch commits.
# sender: the user model; arguments: user_ids (a list of primary keys).
guests_purged = Signal()


def send_after_commit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` robustly once the current transaction on anonauth's database
    commits (at once outside a transaction); log failures. Nothing at all when no
    receiver listens."""
    if not signal.has_listeners(sender):
        return

    def send() -> None:
        for receiver, result in signal.send_robust(sender, **kwargs):
            if isinstance(result, Exception):
                logger.error("anonauth: signal receiver %r raised", receiver, exc_info=result)

    db.on_commit(send)
