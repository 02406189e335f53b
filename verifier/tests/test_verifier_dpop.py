"""DPoP-bound tokens at a resource server (RFC 9449 §7): good only with a fresh proof
of the bound key for this very request."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey

from idp_verifier import InvalidToken, Verifier
from verifier_support import SECRET, dpop_proof

URL = "https://api.test/api/me"


@pytest.fixture
def bound(issuer, clock):
    key = ECKey.generate_key("P-256")
    token = issuer.access_token(cnf={"jkt": key.thumbprint()})
    verifier = Verifier(
        issuer.url, audience="shop", client_id="shop-api", client_secret=SECRET, clock=clock
    )
    return verifier, key, token


def test_a_bound_token_passes_with_a_proof_of_its_key(bound, clock):
    verifier, key, token = bound
    proof = dpop_proof(key, "GET", URL, token, clock.now)
    assert verifier.verify_request(f"DPoP {token}", proof, "GET", URL)["sub"] == "user-1"


def test_a_proof_is_good_once(bound, clock):
    verifier, key, token = bound
    proof = dpop_proof(key, "GET", URL, token, clock.now)
    verifier.verify_request(f"DPoP {token}", proof, "GET", URL)
    with pytest.raises(InvalidToken, match="used before"):
        verifier.verify_request(f"DPoP {token}", proof, "GET", URL)


def test_a_stolen_bound_token_is_refused_as_bearer(bound):
    verifier, _, token = bound
    with pytest.raises(InvalidToken) as refused:
        verifier.verify_request(f"Bearer {token}", None, "GET", URL)
    assert refused.value.challenge.startswith("DPoP")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"key": "thief"}, "not by the token's key"),
        ({"method": "POST"}, "htm"),
        ({"url": "https://api.test/api/other"}, "htu"),
        ({"iat": -301}, "iat"),
        ({"token": "another"}, "ath"),
    ],
)
def test_a_proof_for_something_else_is_refused(bound, clock, change, why):
    verifier, key, token = bound
    signer = ECKey.generate_key("P-256") if change.get("key") else key
    proof = dpop_proof(
        signer,
        change.get("method", "GET"),
        change.get("url", URL),
        change.get("token", token),
        clock.now + change.get("iat", 0),
    )
    with pytest.raises(InvalidToken, match=why) as refused:
        verifier.verify_request(f"DPoP {token}", proof, "GET", URL)
    assert refused.value.error == "invalid_dpop_proof"


def test_a_proof_beside_an_unbound_token_is_refused(issuer, clock):
    verifier = Verifier(
        issuer.url, audience="shop", client_id="shop-api", client_secret=SECRET, clock=clock
    )
    token = issuer.access_token()
    proof = dpop_proof(ECKey.generate_key("P-256"), "GET", URL, token, clock.now)
    with pytest.raises(InvalidToken, match="not a DPoP-bound token"):
        verifier.verify_request(f"DPoP {token}", proof, "GET", URL)
