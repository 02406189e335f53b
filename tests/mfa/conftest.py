"""TOTP tests run on the injected clock, started at the beginning of a 30-second time
step: where in its step a test begins must not decide whether ``advance(10)`` crosses
into the next one (it did when the clock started at the wall clock's second)."""

from __future__ import annotations

import pytest

from tests.support.clock import FrozenClock


@pytest.fixture(autouse=True)
def clock_at_a_step_start(clock: FrozenClock) -> None:
    clock.advance(-(int(clock.now().timestamp()) % 30))
