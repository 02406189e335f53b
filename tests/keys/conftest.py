"""Fixtures of the key tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from idp.keys.models import SigningKey


@pytest.fixture
def fresh_keys(svc: Any) -> Iterator[Any]:
    """The key service with no keys before the test, and none after it: the keys table
    outlives each test (tests/conftest.py empties every other one), and keys these tests
    leave (sealed under another KEK, or on a clock that moved) would fail later ones."""
    with svc.db.transaction() as s:
        s.execute(delete(SigningKey))
    svc.keys.forget()
    yield svc.keys
    with svc.db.transaction() as s:
        s.execute(delete(SigningKey))
    svc.keys.forget()
