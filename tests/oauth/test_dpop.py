"""DPoP (RFC 9449): sender-constrained access and refresh tokens, proofs checked as §4.3
says, the hostile cases of §11 refused, nonces (§8, §9), code binding (§10)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jwt
from sqlalchemy import func, select

from idp.oauth.dpop import normalise_uri
from idp.oauth.models import AuthorizationCode
from idp.refresh.models import RefreshFamily
from tests.conftest import ISSUER
from tests.support.auth import AuthActions, RegisteredClient, query_of
from tests.support.dpop import DPoPKey

TOKEN = ISSUER + "/token"
USERINFO = ISSUER + "/userinfo"


def now(svc: Any) -> float:
    return float(svc.clock.now().timestamp())


def cc_token(auth: AuthActions, rp: RegisteredClient, proof: str | None, **headers: str) -> Any:
    if proof is not None:
        headers["DPoP"] = proof
    return auth.client.post(
        "/token", data={"grant_type": "client_credentials"}, headers={**rp.basic(), **headers}
    )


@pytest.fixture
def service(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client(
        "svc", grant_types=["client_credentials"], scope="api", redirect_uri="https://svc.test/cb"
    )


def claims_of(svc: Any, token: str) -> dict[str, Any]:
    claims = svc.access_tokens.decode(token)
    assert claims is not None, "a valid access token"
    return dict(claims)


# --- issuing bound tokens ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_a_proof_binds_the_access_token_to_its_key(
    auth: AuthActions, svc: Any, service: RegisteredClient, alg: str
) -> None:
    key = DPoPKey(alg)
    resp = cc_token(auth, service, key.proof("POST", TOKEN, now(svc)))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["token_type"] == "DPoP"
    assert claims_of(svc, body["access_token"])["cnf"] == {"jkt": key.jkt}
    seen = auth.client.post(
        "/introspect", data={"token": body["access_token"]}, headers=service.basic()
    ).get_json()
    assert seen["active"] and seen["cnf"] == {"jkt": key.jkt} and seen["token_type"] == "DPoP"


def test_without_a_proof_the_token_is_a_bearer_token(
    auth: AuthActions, svc: Any, service: RegisteredClient
) -> None:
    body = cc_token(auth, service, None).get_json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in claims_of(svc, body["access_token"])


def test_a_client_registered_dpop_bound_must_send_a_proof(auth: AuthActions, svc: Any) -> None:
    rp = auth.oauth_client(
        "bound",
        grant_types=["client_credentials"],
        scope="api",
        redirect_uri="https://svc.test/cb",
        dpop_bound_access_tokens=True,
    )
    refused = cc_token(auth, rp, None)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_dpop_proof"
    assert cc_token(auth, rp, DPoPKey().proof("POST", TOKEN, now(svc))).status_code == 200


def test_discovery_names_the_proof_algorithms(client: Any) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "ES256" in meta["dpop_signing_alg_values_supported"]
    assert not {"none", "HS256"} & set(meta["dpop_signing_alg_values_supported"])


# --- hostile proofs (§4.3, §11) ----------------------------------------------------------


def _hs256_proof(iat: float) -> str:
    from joserfc.jwk import OctKey

    key = OctKey.generate_key(256)
    return jwt.encode(
        {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.as_dict(private=False)},
        {"jti": "x", "htm": "POST", "htu": TOKEN, "iat": int(iat)},
        key,
        algorithms=["HS256"],
    )


def _unsigned(iat: float) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = {"typ": "dpop+jwt", "alg": "none", "jwk": DPoPKey().public_jwk()}
    return f"{part(header)}.{part({'jti': 'x', 'htm': 'POST', 'htu': TOKEN, 'iat': int(iat)})}."


HOSTILE: dict[str, Any] = {
    "typ JWT": lambda k, t: k.proof("POST", TOKEN, t, header={"typ": "JWT"}),
    "no typ": lambda k, t: k.proof("POST", TOKEN, t, header={"typ": None}),
    "alg none": lambda k, t: _unsigned(t),
    "alg HS256": lambda k, t: _hs256_proof(t),
    "private key in jwk": lambda k, t: k.proof(
        "POST", TOKEN, t, header={"jwk": k.key.as_dict(private=True)}
    ),
    "no jwk": lambda k, t: k.proof("POST", TOKEN, t, header={"jwk": None}),
    "another key's jwk": lambda k, t: k.proof(
        "POST", TOKEN, t, header={"jwk": DPoPKey().public_jwk()}
    ),
    "RSA jwk with ES256": lambda k, t: k.proof(
        "POST", TOKEN, t, header={"jwk": DPoPKey("RS256").public_jwk()}
    ),
    "htm GET": lambda k, t: k.proof("GET", TOKEN, t),
    "htu of another endpoint": lambda k, t: k.proof("POST", ISSUER + "/userinfo", t),
    "htu of another server": lambda k, t: k.proof("POST", "https://evil.example/token", t),
    "no htu": lambda k, t: k.proof("POST", TOKEN, t, drop=("htu",)),
    "no jti": lambda k, t: k.proof("POST", TOKEN, t, drop=("jti",)),
    "no iat": lambda k, t: k.proof("POST", TOKEN, t, drop=("iat",)),
    "iat an hour ago": lambda k, t: k.proof("POST", TOKEN, t - 3600),
    "iat in ten minutes": lambda k, t: k.proof("POST", TOKEN, t + 600),
    "iat a string": lambda k, t: k.proof("POST", TOKEN, t, claims={"iat": "now"}),
    "jti too long": lambda k, t: k.proof("POST", TOKEN, t, claims={"jti": "j" * 300}),
    "not a JWS": lambda k, t: "not-a-jws",
    "two proofs": lambda k, t: k.proof("POST", TOKEN, t) + ", " + k.proof("POST", TOKEN, t),
    "oversized": lambda k, t: "A" * 9000,
    "tampered claims": lambda k, t: _tamper(k.proof("POST", TOKEN, t)),
}


def _tamper(proof: str) -> str:
    head, body, sig = proof.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["htu"] = "https://evil.example/token"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_proof_is_invalid_dpop_proof_and_nothing_is_issued(
    auth: AuthActions, svc: Any, service: RegisteredClient, case: str
) -> None:
    proof = HOSTILE[case](DPoPKey(), now(svc))
    resp = cc_token(auth, service, proof)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "invalid_dpop_proof"
    assert resp.headers["Cache-Control"] == "no-store"


def test_a_proof_is_single_use(auth: AuthActions, svc: Any, service: RegisteredClient) -> None:
    proof = DPoPKey().proof("POST", TOKEN, now(svc))
    assert cc_token(auth, service, proof).status_code == 200
    replay = cc_token(auth, service, proof)
    assert replay.status_code == 400 and "used before" in replay.get_json()["error_description"]


def test_htu_is_compared_normalised() -> None:
    assert normalise_uri("HTTP://127.0.0.1:80/token?x=1#f") == "http://127.0.0.1/token"
    assert normalise_uri("https://IdP.example:443") == "https://idp.example/"
    assert normalise_uri("https://idp.example:8443/token") == "https://idp.example:8443/token"
    assert normalise_uri("https://[::1]:443/token") == "https://[::1]/token"
    assert normalise_uri("ftp://idp.example/token") is None
    assert normalise_uri("/token") is None
    assert normalise_uri("https://idp.example:99999/token") is None


# --- at the resource (/userinfo, §7) ----------------------------------------------------


@pytest.fixture
def bound(auth: AuthActions, svc: Any) -> tuple[RegisteredClient, DPoPKey, dict[str, Any]]:
    """A public client's tokens, bound to its key through the code flow."""
    auth.user()
    auth.login()
    rp = auth.oauth_client("spa", public=True, scope="openid profile offline_access")
    key = DPoPKey()
    code, verifier, _ = auth.code_for(rp, scope="openid profile offline_access")
    resp = auth.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
            "client_id": rp.client_id,
        },
        headers={"DPoP": key.proof("POST", TOKEN, now(svc))},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["token_type"] == "DPoP"
    return rp, key, resp.get_json()


def userinfo(auth: AuthActions, scheme: str, token: str, proof: str | None = None) -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return auth.client.get("/userinfo", headers=headers)


def test_a_bound_token_works_at_userinfo_only_with_a_proof_of_its_key(
    auth: AuthActions, svc: Any, bound: Any
) -> None:
    _, key, tokens = bound
    at = tokens["access_token"]
    ok = userinfo(auth, "DPoP", at, key.proof("GET", USERINFO, now(svc), access_token=at))
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["sub"]
    # Stolen without the key: as a bearer token, without a proof, with another key's proof.
    as_bearer = userinfo(auth, "Bearer", at)
    assert as_bearer.status_code == 401
    assert as_bearer.headers["WWW-Authenticate"].startswith("DPoP ")
    assert userinfo(auth, "DPoP", at).status_code == 401
    thief = DPoPKey().proof("GET", USERINFO, now(svc), access_token=at)
    refused = userinfo(auth, "DPoP", at, thief)
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_dpop_proof"
    assert 'error="invalid_dpop_proof"' in refused.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "change",
    [
        {"access_token": "another token"},  # ath of another token
        {"access_token": None},  # no ath
        {"method": "POST"},
        {"url": ISSUER + "/token"},
    ],
)
def test_a_resource_proof_must_name_this_request_and_this_token(
    auth: AuthActions, svc: Any, bound: Any, change: dict[str, Any]
) -> None:
    _, key, tokens = bound
    at = tokens["access_token"]
    args: dict[str, Any] = {"method": "GET", "url": USERINFO, "access_token": at, **change}
    proof = key.proof(args["method"], args["url"], now(svc), access_token=args["access_token"])
    resp = userinfo(auth, "DPoP", at, proof)
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_dpop_proof"


def test_the_dpop_scheme_is_refused_for_a_bearer_token(
    auth: AuthActions, svc: Any, service: RegisteredClient
) -> None:
    auth.user()
    auth.login()
    rp = auth.oauth_client()
    at = auth.tokens(rp)["access_token"]
    key = DPoPKey()
    resp = userinfo(auth, "DPoP", at, key.proof("GET", USERINFO, now(svc), access_token=at))
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_token"


def test_userinfo_without_a_token_offers_both_schemes(client: Any) -> None:
    resp = client.get("/userinfo")
    assert resp.status_code == 401
    challenges = resp.headers.getlist("WWW-Authenticate")
    assert "Bearer" in challenges and any(c.startswith("DPoP algs=") for c in challenges)


# --- refresh chains (§5) ----------------------------------------------------------------


def refresh(auth: AuthActions, rp: RegisteredClient, token: str, proof: str | None) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    headers = {}
    if rp.secret is None:
        data["client_id"] = rp.client_id
    else:
        headers.update(rp.basic())
    if proof is not None:
        headers["DPoP"] = proof
    return auth.client.post("/token", data=data, headers=headers)


def test_a_public_clients_chain_is_bound_to_its_key(
    auth: AuthActions, svc: Any, bound: Any
) -> None:
    rp, key, tokens = bound
    rt = tokens["refresh_token"]
    with svc.db.read() as s:
        assert s.scalar(select(RefreshFamily.dpop_jkt)) == key.jkt
    # Without the key the stolen refresh token does nothing: not refreshed, not spent,
    # and no reuse alarm that would kill the owner's chain.
    for proof in (None, DPoPKey().proof("POST", TOKEN, now(svc))):
        resp = refresh(auth, rp, rt, proof)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    ok = refresh(auth, rp, rt, key.proof("POST", TOKEN, now(svc)))
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["token_type"] == "DPoP"
    assert claims_of(svc, ok.get_json()["access_token"])["cnf"] == {"jkt": key.jkt}
    record = svc.oauth.token_registry.find(ok.get_json()["refresh_token"], "refresh_token")
    assert svc.oauth.token_registry.introspect(record)["cnf"] == {"jkt": key.jkt}


def test_a_confidential_clients_chain_may_change_keys(auth: AuthActions, svc: Any) -> None:
    auth.user()
    auth.login()
    rp = auth.oauth_client(scope="openid offline_access")
    rt = auth.tokens(rp, scope="openid offline_access")["refresh_token"]
    first, second = DPoPKey(), DPoPKey()
    one = refresh(auth, rp, rt, first.proof("POST", TOKEN, now(svc))).get_json()
    assert claims_of(svc, one["access_token"])["cnf"] == {"jkt": first.jkt}
    two = refresh(auth, rp, one["refresh_token"], second.proof("POST", TOKEN, now(svc)))
    assert claims_of(svc, two.get_json()["access_token"])["cnf"] == {"jkt": second.jkt}


# --- nonces (§8, §9) ---------------------------------------------------------------------


@pytest.mark.parametrize("config_overrides", [{"oauth": {"dpop_nonce": True}}])
def test_a_server_nonce_is_asked_for_then_accepted(
    auth: AuthActions, svc: Any, service: RegisteredClient, clock: Any
) -> None:
    key = DPoPKey()
    first = cc_token(auth, service, key.proof("POST", TOKEN, now(svc)))
    assert first.status_code == 400 and first.get_json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    ok = cc_token(auth, service, key.proof("POST", TOKEN, now(svc), nonce=nonce))
    assert ok.status_code == 200 and ok.headers["DPoP-Nonce"]
    at = ok.get_json()["access_token"]
    bad = cc_token(auth, service, key.proof("POST", TOKEN, now(svc), nonce="x" * 32))
    assert bad.get_json()["error"] == "use_dpop_nonce"
    clock.advance(600)  # nonces last a few minutes
    stale = cc_token(auth, service, key.proof("POST", TOKEN, now(svc), nonce=nonce))
    assert stale.get_json()["error"] == "use_dpop_nonce"
    assert at


@pytest.mark.parametrize("config_overrides", [{"oauth": {"dpop_nonce": True}}])
def test_a_resource_asks_for_a_nonce_with_401(auth: AuthActions, svc: Any) -> None:
    auth.user()
    auth.login()
    rp = auth.oauth_client("spa", public=True)
    key = DPoPKey()
    code, verifier, _ = auth.code_for(rp)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
        "client_id": rp.client_id,
    }
    nonce = svc.dpop.nonce()
    proof = key.proof("POST", TOKEN, now(svc), nonce=nonce)
    at = auth.client.post("/token", data=data, headers={"DPoP": proof}).get_json()["access_token"]
    resp = userinfo(auth, "DPoP", at, key.proof("GET", USERINFO, now(svc), access_token=at))
    assert resp.status_code == 401 and resp.get_json()["error"] == "use_dpop_nonce"
    assert 'error="use_dpop_nonce"' in resp.headers["WWW-Authenticate"]
    nonce = resp.headers["DPoP-Nonce"]
    proof = key.proof("GET", USERINFO, now(svc), access_token=at, nonce=nonce)
    assert userinfo(auth, "DPoP", at, proof).status_code == 200


# --- binding the code at /authorize (§10) -------------------------------------------------


def test_dpop_jkt_binds_the_code_to_a_key(auth: AuthActions, svc: Any) -> None:
    auth.user()
    auth.login()
    rp = auth.oauth_client()
    key = DPoPKey()

    def exchange(proof: str | None) -> Any:
        code, verifier, _ = auth.code_for(rp, dpop_jkt=key.jkt)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
        }
        headers = {**rp.basic(), **({"DPoP": proof} if proof else {})}
        return auth.client.post("/token", data=data, headers=headers)

    assert exchange(None).get_json()["error"] == "invalid_grant"
    assert exchange(DPoPKey().proof("POST", TOKEN, now(svc))).get_json()["error"] == (
        "invalid_grant"
    )
    ok = exchange(key.proof("POST", TOKEN, now(svc)))
    assert ok.status_code == 200 and ok.get_json()["token_type"] == "DPoP"


@pytest.mark.parametrize("jkt", ["short", "x" * 44, "a" * 42 + "!"])
def test_a_malformed_dpop_jkt_is_invalid_request(auth: AuthActions, svc: Any, jkt: str) -> None:
    auth.user()
    auth.login()
    rp = auth.oauth_client()
    with svc.db.read() as s:
        before = s.scalar(select(func.count()).select_from(AuthorizationCode))
    resp = auth.authorize(rp, dpop_jkt=jkt)
    assert query_of(resp.headers["Location"])["error"] == "invalid_request"
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuthorizationCode)) == before
