"""Following idp's Shared Signals (SSF 1.0) by poll (RFC 8936): the verifier finds or
makes its own stream, applies CAEP session-revoked and RISC account-disabled, refuses
SETs that are not for it (reporting them in setErrs), and fails closed when the stream
is paused or disabled or the poll goes quiet."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey

from idp_verifier import InvalidToken, Verifier
from verifier_support import ACCOUNT_DISABLED, NOW, SECRET, SESSION_REVOKED, STREAM_UPDATED

SESSION = {
    "format": "complex",
    "session": {"format": "opaque", "id": "sid-1"},
    "user": {"format": "iss_sub", "iss": "x", "sub": "user-1"},
}


@pytest.fixture
def verifier(issuer, clock):
    return Verifier(
        issuer.url,
        audience="shop",
        client_id="shop-api",
        client_secret=SECRET,
        clock=clock,
        signals=True,
        max_feed_age=30,
    )


def test_it_makes_its_own_poll_stream_once(issuer, verifier):
    verifier.poll()
    verifier.poll()
    [stream] = issuer.streams
    assert stream["delivery"]["method"] == "urn:ietf:rfc:8936"
    assert set(stream["events_requested"]) == {SESSION_REVOKED, ACCOUNT_DISABLED}


def test_it_reuses_a_poll_stream_it_already_has(issuer, clock, verifier):
    verifier.poll()
    again = Verifier(
        issuer.url,
        audience="shop",
        client_id="shop-api",
        client_secret=SECRET,
        clock=clock,
        signals=True,
    )
    again.poll()
    assert len(issuer.streams) == 1


def test_a_session_revoked_event_refuses_the_sessions_tokens_and_is_acknowledged(issuer, verifier):
    token = issuer.access_token()
    verifier.poll()
    assert verifier.verify(token)
    jti = issuer.send(SESSION_REVOKED, SESSION, {"event_timestamp": int(NOW)})
    assert verifier.poll() == 1
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(token)
    verifier.poll()
    assert issuer.polls[-1]["ack"] == [jti] and not issuer.owed


def test_an_account_disabled_event_refuses_the_users_older_tokens(issuer, verifier):
    token = issuer.access_token(sid=None)
    verifier.poll()
    issuer.send(ACCOUNT_DISABLED, {"format": "iss_sub", "iss": issuer.url, "sub": "user-1"})
    verifier.poll()
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(token)


@pytest.mark.parametrize(
    "bad",
    [
        {"aud": "another-receiver"},
        {"iss": "https://evil.test"},
        {"typ": "JWT"},
        {"key": "forged"},
        {"sub_id": "sid-1"},
    ],
)
def test_a_set_that_is_not_for_us_is_reported_and_not_applied(issuer, verifier, bad):
    token = issuer.access_token()
    verifier.poll()
    options = dict(bad)
    if options.pop("key", None):
        options["key"] = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    subject = options.pop("sub_id", SESSION)
    jti = issuer.send(SESSION_REVOKED, subject, **options)
    assert verifier.poll() == 0
    assert verifier.verify(token)
    verifier.poll()
    assert jti in issuer.polls[-1]["setErrs"] and issuer.polls[-1]["ack"] == []


def test_a_paused_stream_fails_closed_until_it_is_enabled(issuer, verifier):
    """A paused stream holds its events (SSF 1.0 §8.1.2): a kill may be waiting in it,
    so nothing passes until the stream-updated event says it is enabled again."""
    token = issuer.access_token()
    verifier.poll()
    issuer.stream_updated("paused")
    verifier.poll()
    with pytest.raises(InvalidToken, match="stream is paused"):
        verifier.verify(token)
    issuer.stream_updated("enabled")
    verifier.poll()
    assert verifier.verify(token)


def test_a_stream_found_paused_fails_closed(issuer, verifier):
    issuer.status = "disabled"
    verifier.poll()
    with pytest.raises(InvalidToken, match="stream is disabled"):
        verifier.verify(issuer.access_token())


def test_a_stream_updated_event_about_another_stream_changes_nothing(issuer, verifier):
    verifier.poll()
    issuer.send(STREAM_UPDATED, {"format": "opaque", "id": "not-ours"}, {"status": "paused"})
    verifier.poll()
    assert verifier.verify(issuer.access_token())


def test_it_fails_closed_when_the_poll_goes_quiet(issuer, clock, verifier):
    token = issuer.access_token(exp=int(NOW) + 3600)
    verifier.poll()
    assert verifier.verify(token)
    issuer.down = True
    clock.advance(31)
    with pytest.raises(InvalidToken, match="revocation feed unavailable"):
        verifier.verify(token)
    issuer.down = False
    verifier.poll()
    assert verifier.verify(token)


def test_its_access_token_is_fetched_again_before_it_expires(issuer, clock, verifier):
    verifier.poll()
    verifier.poll()
    assert issuer.tokens_issued == 1
    clock.advance(271)
    verifier.poll()
    assert issuer.tokens_issued == 2


def test_sets_that_cannot_be_checked_yet_come_again_rather_than_being_dropped(
    issuer, clock, verifier
):
    """A SET signed by a key published after our JWKS copy, while the JWKS is out of
    reach: neither acknowledged nor reported, so the next poll brings it again."""
    token = issuer.access_token(exp=int(NOW) + 3600)
    verifier.poll()
    verifier.verify(token)  # our JWKS copy
    new = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    issuer.published.append(new)
    issuer.send(SESSION_REVOKED, SESSION, key=new)
    real_get = verifier._get

    def jwks_down(url, *args, **kwargs):
        if url.endswith("/jwks.json"):
            raise OSError("unreachable")
        return real_get(url, *args, **kwargs)

    verifier._get = jwks_down
    with pytest.raises(OSError):
        verifier.poll()
    verifier._get = real_get
    clock.advance(61)  # past kid_refetch_seconds
    assert verifier.poll() == 1
    assert issuer.polls[-1]["ack"] == [] and issuer.polls[-1].get("setErrs") is None
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(token)
