"""Following idp's own revocation feed (``/revocations``), and failing closed when it
goes quiet for longer than ``max_feed_age``."""

from __future__ import annotations

import urllib.error

import pytest

from idp_verifier import InvalidToken, Verifier
from verifier_support import NOW, SECRET


@pytest.fixture
def verifier(issuer, clock):
    return Verifier(
        issuer.url,
        audience="shop",
        client_id="shop-api",
        client_secret=SECRET,
        clock=clock,
        max_feed_age=30,
    )


def test_a_listed_sid_or_jti_is_refused_until_its_expiry(issuer, clock, verifier):
    by_sid, by_jti = issuer.access_token(), issuer.access_token(sid="sid-2", jti="j-2")
    verifier.poll()
    issuer.feed += [
        {"type": "sid", "value": "sid-1", "exp": int(NOW) + 300},
        {"type": "jti", "value": "j-2", "exp": int(NOW) + 300},
    ]
    assert verifier.poll() == 2
    for token in (by_sid, by_jti):
        with pytest.raises(InvalidToken, match="revoked"):
            verifier.verify(token)
    assert verifier.poll() == 0  # the cursor moved on
    clock.advance(301)
    verifier.poll()
    assert not verifier.is_revoked({"sid": "sid-1", "jti": "j-2"})  # forgotten after exp


def test_every_token_of_a_user_or_client_issued_before_is_refused(issuer, clock, verifier):
    old = issuer.access_token()
    issuer.feed += [
        {"type": "user", "value": "user-1", "exp": int(NOW) + 300, "issued_before": int(NOW) + 1}
    ]
    verifier.poll()
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(old)
    assert verifier.verify(issuer.access_token(iat=int(NOW) + 1, sid="sid-2"))
    issuer.feed += [
        {"type": "client", "value": "shop", "exp": int(NOW) + 300, "issued_before": int(NOW) + 5}
    ]
    verifier.poll()
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(issuer.access_token(iat=int(NOW) + 1, sid="sid-2"))


def test_the_feed_needs_the_clients_credentials(issuer, clock):
    stranger = Verifier(
        issuer.url, audience="shop", client_id="shop-api", client_secret="wrong", clock=clock
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        stranger.poll()
    assert refused.value.code == 401


def test_a_verifier_that_never_polled_verifies_offline(issuer, clock, verifier):
    clock.advance(3600)
    assert verifier.verify(issuer.access_token(exp=int(clock.now) + 60))


def test_it_fails_closed_once_the_feed_is_older_than_max_feed_age(issuer, clock, verifier):
    token = issuer.access_token(exp=int(NOW) + 3600)
    verifier.poll()
    clock.advance(30)
    assert verifier.verify(token)  # exactly max_feed_age old: still fresh
    issuer.down = True
    with pytest.raises(urllib.error.HTTPError):
        verifier.poll()
    clock.advance(1)
    with pytest.raises(InvalidToken, match="revocation feed unavailable"):
        verifier.verify(token)
    issuer.down = False
    verifier.poll()
    assert verifier.verify(token)


def test_max_feed_age_is_the_callers_choice(issuer, clock):
    patient = Verifier(
        issuer.url,
        audience="shop",
        client_id="shop-api",
        client_secret=SECRET,
        clock=clock,
        max_feed_age=600,
    )
    token = issuer.access_token(exp=int(NOW) + 3600)
    patient.poll()
    clock.advance(599)
    assert patient.verify(token)
    clock.advance(2)
    with pytest.raises(InvalidToken, match="feed unavailable"):
        patient.verify(token)
