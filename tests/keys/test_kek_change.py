"""A lost KEK (docs/operations.md, "Secrets"): two `idp keys rotate` under a new KEK
leave an active key it can decrypt, and the old keys stay published (their public halves
need no KEK). A KEK that is not lost is rotated without a stop: test_kek_rotation.py."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, update

from idp.keys import crypto
from idp.keys.models import RETIRED, SigningKey
from idp.keys.services import KeyService
from idp.operator import Actor
from tests.conftest import ISSUER


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


def test_keys_sealed_before_kek_ids_open_and_get_their_id_at_the_rewrap(svc, fresh_keys):
    """Rows from before migration 0018 have no kek_id: each KEK is tried, and `idp keys
    rewrap` records the current one."""
    fresh_keys.ensure({"ES256"})
    with svc.db.transaction() as s:
        s.execute(update(SigningKey).values(kek_id=None))
    fresh_keys.forget()
    kid = fresh_keys.signer("ES256").kid
    result = svc.actions.rewrap_keys(Actor("test"))
    assert result["signing_keys"] == {"rewrapped": 2, "current": 0, "retired_unopened": 0}
    with svc.db.read() as s:
        assert set(s.scalars(select(SigningKey.kek_id))) == {svc.keys.keyring.id}
    fresh_keys.forget()
    assert fresh_keys.signer("ES256").kid == kid
    again = svc.actions.rewrap_keys(Actor("test"))
    assert again["signing_keys"] == {"rewrapped": 0, "current": 2, "retired_unopened": 0}


def test_a_retired_key_no_kek_opens_is_left_and_counted(svc, fresh_keys):
    fresh_keys.ensure({"ES256"})
    lost = under(svc, crypto.generate_kek())
    with svc.db.transaction() as s:
        for row in s.scalars(select(SigningKey)):  # as after a lost KEK
            row.private_encrypted, row.kek_id = lost.keyring.seal(b"{}", row.kid)
    with pytest.raises(crypto.KekMissing):
        svc.actions.rewrap_keys(Actor("test"))  # the active key matters: nothing changes
    fresh_keys.rotate({"ES256"})  # the old active retires; the old next still cannot open
    with svc.db.transaction() as s:
        s.execute(delete(SigningKey).where(SigningKey.state != RETIRED))
    fresh_keys.ensure({"ES256"})
    result = svc.actions.rewrap_keys(Actor("test"))
    assert result["signing_keys"] == {"rewrapped": 0, "current": 2, "retired_unopened": 1}


def test_dpop_nonces_of_processes_on_the_previous_kek_are_accepted_during_the_rotation(svc):
    from idp.oauth.dpop import DPoP

    old, new = (
        crypto.load_kek(crypto.generate_kek(), ""),
        crypto.load_kek(crypto.generate_kek(), ""),
    )
    on_old = DPoP(ISSUER, svc.state, svc.clock, old)
    nonce = on_old.nonce()
    assert DPoP(ISSUER, svc.state, svc.clock, new, previous=(old,)).nonce_valid(nonce)
    assert not DPoP(ISSUER, svc.state, svc.clock, new).nonce_valid(nonce)
    assert on_old.nonce_valid(nonce)
