"""A lost KEK (docs/operations.md, "Secrets"): two `idp keys rotate` under a new KEK
leave an active key it can decrypt, and the old keys stay published (their public halves
need no KEK). A KEK that is not lost is rotated without a stop: test_kek_rotation.py."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete

from idp.keys import crypto
from idp.keys.models import SigningKey
from idp.keys.services import KeyService


@pytest.fixture
def fresh_keys(svc):
    with svc.db.transaction() as s:
        s.execute(delete(SigningKey))
    svc.keys.forget()
    yield svc.keys
    svc.keys.forget()


def under(svc, kek: str) -> KeyService:
    """The keys as a process started with ``kek`` sees them."""
    return KeyService(
        svc.db,
        svc.clock,
        crypto.Keyring(crypto.load_kek(kek, "unused")),
        svc.keys.retire_seconds,
        svc.keys._generations,
    )


def test_two_rotations_under_a_new_kek_give_a_signer_and_keep_old_keys_published(svc, fresh_keys):
    fresh_keys.ensure({"ES256"})
    old_kid = fresh_keys.signer("ES256").kid
    new = under(svc, crypto.generate_kek())
    # A process with the new KEK cannot use the keys sealed under the old one.
    with pytest.raises(crypto.KekMissing, match="KEK"):
        new.signer("ES256")
    new.rotate({"ES256"})
    new.rotate({"ES256"})
    signer = new.signer("ES256")
    assert signer.kid != old_kid
    published = {k["kid"] for k in json.loads(new.jwks()[0])["keys"]}
    assert {old_kid, signer.kid} <= published
