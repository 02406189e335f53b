"""Signing keys: states, rotation, encryption at rest, JWKS caching (SPEC §6 "Keys")."""

from __future__ import annotations

import json
import stat

import pytest
from sqlalchemy import select

from idp.keys import crypto
from idp.keys.models import ACTIVE, NEXT, RETIRED, SigningKey
from tests.conftest import ISSUER
from tests.support.jwt import header, verify


def states(svc, alg):
    with svc.db.transaction() as s:
        return sorted(k.state for k in s.scalars(select(SigningKey).where(SigningKey.alg == alg)))


def test_ensure_gives_each_algorithm_one_active_and_one_next_key(svc, fresh_keys):
    fresh_keys.ensure({"ES256", "RS256"})
    assert states(svc, "ES256") == [ACTIVE, NEXT]
    assert states(svc, "RS256") == [ACTIVE, NEXT]
    fresh_keys.ensure({"ES256"})
    assert states(svc, "ES256") == [ACTIVE, NEXT]


def test_rotation_promotes_the_published_next_key_and_keeps_the_old_one(
    svc, fresh_keys, client, clock
):
    fresh_keys.ensure({"ES256"})
    before = {k["kid"] for k in json.loads(fresh_keys.jwks()[0])["keys"]}
    next_kid = next(k.kid for k in fresh_keys.list() if k.state == NEXT)
    old_kid = fresh_keys.signer("ES256").kid
    assert fresh_keys.rotate({"ES256"}) == [next_kid]
    assert fresh_keys.signer("ES256").kid == next_kid
    after = {k["kid"] for k in json.loads(fresh_keys.jwks()[0])["keys"]}
    assert before <= after, "a retired key stays published"
    assert states(svc, "ES256") == [ACTIVE, NEXT, RETIRED]
    # Once every token the retired key signed has expired, it is removed.
    clock.advance(svc.config.longest_token_ttl + 61)
    fresh_keys.purge()
    assert old_kid not in {k["kid"] for k in json.loads(fresh_keys.jwks()[0])["keys"]}


def test_private_keys_are_encrypted_under_the_kek(svc, fresh_keys):
    fresh_keys.ensure({"ES256"})
    with svc.db.transaction() as s:
        row = s.scalars(select(SigningKey)).first()
        assert b'"d"' not in row.private_encrypted
        plain = json.loads(crypto.decrypt(svc.keys.kek, row.private_encrypted, row.kid))
    assert "d" in plain
    with pytest.raises(Exception):  # noqa: B017 - any failure: wrong key must not decrypt
        crypto.decrypt(b"\0" * 32, row.private_encrypted, row.kid)


def test_development_kek_is_generated_once_with_mode_0600(tmp_path):
    first = crypto.load_kek("", str(tmp_path))
    assert stat.S_IMODE((tmp_path / "kek").stat().st_mode) == 0o600
    assert crypto.load_kek("", str(tmp_path)) == first


def test_jwks_is_cacheable_with_strong_etag_and_answers_304(client):
    resp = client.get("/jwks.json")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"].startswith("public, max-age=")
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    for key in resp.get_json()["keys"]:
        assert {"kid", "alg", "use", "kty"} <= key.keys()
        assert "d" not in key and "p" not in key
    again = client.get("/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_id_token_algorithm_follows_client_registration(auth, client, alg):
    auth.user()
    rp = auth.oauth_client(id_token_alg=alg)
    auth.login()
    tokens = auth.tokens(rp)
    assert header(tokens["id_token"])["alg"] == alg
    verify(tokens["id_token"], client.get("/jwks.json").get_json(), rp.client_id, ISSUER)


@pytest.mark.parametrize("config_overrides", [{"tokens": {"access_token_alg": "EdDSA"}}])
def test_eddsa_access_tokens_are_signed_and_verifiable(auth, client, config_overrides):
    auth.user()
    rp = auth.oauth_client()
    auth.login()
    tokens = auth.tokens(rp)
    assert header(tokens["access_token"])["alg"] == "EdDSA"
    verify(tokens["access_token"], client.get("/jwks.json").get_json(), rp.client_id, ISSUER)
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert info.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/jwks.json", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"],
)
def test_prepared_documents_are_the_same_before_and_through_flask(client, path):
    """idp.documents.FastPath answers a plain GET; with a query string Flask does. Both
    give the same bytes, headers and 304s."""
    fast, slow = client.get(path), client.get(path + "?from=flask")
    assert fast.status_code == slow.status_code == 200
    assert fast.data == slow.data and json.loads(fast.data)
    for name in (
        "Content-Type",
        "ETag",
        "Cache-Control",
        "Access-Control-Allow-Origin",
        "X-Content-Type-Options",
    ):
        assert fast.headers[name] == slow.headers[name], name
    etag = fast.headers["ETag"]
    for target in (path, path + "?from=flask"):
        again = client.get(target, headers={"If-None-Match": f'"other", {etag}'})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == etag
    head = client.head(path)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(fast.data))
