"""Fixtures of the bad-input tests: clients, a user, a session, tokens, a token forger."""

from __future__ import annotations

from typing import Any

import jwt as pyjwt
import pytest
from joserfc.jwk import ECKey

from tests.conftest import ISSUER


@pytest.fixture
def rp(auth: Any) -> Any:
    """A confidential, first-party client."""
    return auth.oauth_client(
        "rp", grant_types=["authorization_code", "refresh_token", "client_credentials"]
    )


@pytest.fixture
def spa(auth: Any) -> Any:
    """A public client (PKCE is mandatory for it)."""
    return auth.oauth_client("spa", public=True)


@pytest.fixture
def alice(auth: Any) -> Any:
    return auth.user()


@pytest.fixture
def logged_in(auth: Any, alice: Any) -> Any:
    resp = auth.login()
    assert resp.status_code == 303
    return alice


@pytest.fixture
def tokens(auth: Any, rp: Any, logged_in: Any) -> dict[str, Any]:
    return auth.tokens(rp)


@pytest.fixture
def forge(svc: Any, alice: Any, rp: Any) -> Any:
    """Builds access-token lookalikes: unsigned, signed by an attacker, or signed by idp's
    own key but failing one of the checks of RFC 9068 §4."""
    now = int(svc.clock.now().timestamp())  # the app's frozen clock, not time.time()
    idp_key = svc.keys.signer("ES256")
    rsa_key = svc.keys.signer("RS256")
    attacker_key = ECKey.generate_key("P-256")

    class Forge:
        kid = idp_key.kid
        issued_at = now
        rsa_public_jwk = {**rsa_key.key.as_dict(private=False), "kid": rsa_key.kid}

        @staticmethod
        def claims(**extra: Any) -> dict[str, Any]:
            base = {
                "iss": ISSUER,
                "sub": alice.id,
                "aud": rp.client_id,
                "client_id": rp.client_id,
                "scope": "openid profile email",
                "iat": now,
                "nbf": now,
                "exp": now + 300,
                "jti": "forged",
            }
            base.update(extra)
            return {k: v for k, v in base.items() if v is not None}

        @staticmethod
        def real(header: dict[str, Any], claims: dict[str, Any]) -> str:
            """Signed with idp's active ES256 key (PyJWT: it writes any header)."""
            return pyjwt.encode(
                claims,
                idp_key.key.as_pem(private=True),
                algorithm="ES256",
                headers={"kid": idp_key.kid, **header},
            )

        @staticmethod
        def attacker(header: dict[str, Any], claims: dict[str, Any]) -> str:
            return pyjwt.encode(
                claims, attacker_key.as_pem(private=True), algorithm="ES256", headers=header
            )

        attacker_jwk = attacker_key.as_dict(private=False)

    return Forge
