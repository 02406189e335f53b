"""Waiting in tests for something another thread or process does: a bounded poll, not
a timing (what it took is not asserted, only that it came before the deadline)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(what: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """``what()`` once it is truthy; fails the test if it is not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return found
