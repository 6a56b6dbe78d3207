"""``send_after_commit``: after the commit, robustly; nothing at all without receivers."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.dispatch import Signal

from anonauth import signals
from anonauth.test import connected

pytestmark = pytest.mark.django_db(transaction=True)


def test_sent_after_the_commit() -> None:
    signal, calls = Signal(), []
    with connected(signal, lambda sender, **kwargs: calls.append(kwargs)):
        with transaction.atomic():
            signals.send_after_commit(signal, object, value=1)
            assert calls == []
        assert calls == [{"signal": signal, "value": 1}]


def test_no_receiver_no_commit_hook() -> None:
    signal = Signal()
    with transaction.atomic():
        signals.send_after_commit(signal, object, value=1)
        assert connection.run_on_commit == []


def test_a_failing_receiver_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def fail(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver broke")

    signal = Signal()
    with connected(signal, fail):
        signals.send_after_commit(signal, object)
    assert "raised" in caplog.text
