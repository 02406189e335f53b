"""Offline checks of RFC 9068 access tokens against the issuer's JWKS."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey

from idp_verifier import InvalidToken, Verifier
from verifier_support import NOW, SECRET, FakeClock, Issuer


def make(issuer: Issuer, clock: FakeClock, **options) -> Verifier:
    return Verifier(
        issuer.url,
        audience="shop",
        client_id="shop-api",
        client_secret=SECRET,
        clock=clock,
        **options,
    )


def test_a_valid_access_token_gives_its_claims(issuer, clock):
    claims = make(issuer, clock).verify(issuer.access_token())
    assert claims["sub"] == "user-1" and claims["sid"] == "sid-1"


@pytest.mark.parametrize(
    ("claims", "typ", "why"),
    [
        ({"aud": "other"}, "at+jwt", "wrong audience"),
        ({"iss": "https://evil.test"}, "at+jwt", "wrong issuer"),
        ({"exp": int(NOW)}, "at+jwt", "expired"),
        ({"nbf": int(NOW) + 60}, "at+jwt", "not yet valid"),
        ({}, "JWT", "typ"),  # an ID token is no access token
    ],
)
def test_a_token_that_is_not_for_us_is_refused(issuer, clock, claims, typ, why):
    with pytest.raises(InvalidToken, match=why):
        make(issuer, clock).verify(issuer.access_token(typ=typ, **claims))


def test_an_audience_list_that_names_us_is_accepted(issuer, clock):
    assert make(issuer, clock).verify(issuer.access_token(aud=["billing", "shop"]))


@pytest.mark.parametrize(
    "token",
    ["", "x" * 8001, "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],  # the last: alg none
)
def test_malformed_tokens_are_refused(issuer, clock, token):
    with pytest.raises(InvalidToken):
        make(issuer, clock).verify(token)


def test_a_token_signed_by_another_key_is_refused(issuer, clock):
    forged = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    with pytest.raises(InvalidToken, match="bad signature"):
        make(issuer, clock).verify(issuer.access_token(key=forged))


def test_a_key_published_after_our_copy_is_fetched(issuer, clock):
    verifier = make(issuer, clock)
    verifier.verify(issuer.access_token())
    new = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    issuer.published.append(new)
    assert verifier.verify(issuer.access_token(key=new))
    assert issuer.jwks_fetches == 2


def test_forged_kids_make_at_most_one_jwks_fetch_a_minute(issuer, clock):
    verifier = make(issuer, clock, kid_refetch_seconds=60)
    verifier.verify(issuer.access_token())
    for i in range(20):
        forged = ECKey.generate_key("P-256", parameters={"kid": f"forged-{i}"})
        with pytest.raises(InvalidToken):
            verifier.verify(issuer.access_token(key=forged))
    assert issuer.jwks_fetches == 2
    clock.advance(61)
    with pytest.raises(InvalidToken):
        verifier.verify(issuer.access_token(key=ECKey.generate_key("P-256", {"kid": "k9"})))
    assert issuer.jwks_fetches == 3


def test_the_jwks_is_fetched_again_when_our_copy_is_old(issuer, clock):
    verifier = make(issuer, clock, jwks_refresh_seconds=300)
    verifier.verify(issuer.access_token())
    clock.advance(200)
    verifier.verify(issuer.access_token(exp=int(clock.now) + 60))
    assert issuer.jwks_fetches == 1
    clock.advance(101)
    verifier.verify(issuer.access_token(exp=int(clock.now) + 60))
    assert issuer.jwks_fetches == 2


@pytest.mark.parametrize(
    ("authorization", "error"),
    [("", "invalid_request"), ("Basic abc", "invalid_request"), ("DPoP x", "invalid_dpop_proof")],
)
def test_requests_without_a_usable_authorization_are_refused(issuer, clock, authorization, error):
    with pytest.raises(InvalidToken) as refused:
        make(issuer, clock).verify_request(authorization, None, "GET", "https://api.test/me")
    assert refused.value.error == error


def test_tokens_are_refused_while_the_jwks_is_out_of_reach(issuer, clock):
    verifier = make(issuer, clock)
    issuer.down = True
    with pytest.raises(InvalidToken, match="keys are unavailable"):
        verifier.verify(issuer.access_token())
    issuer.down = False
    assert verifier.verify(issuer.access_token())
