"""Signing access tokens (RFC 9068) and ID tokens (OIDC Core §2)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from authlib.oidc.core.util import create_half_hash
from joserfc import jwt

from idp.clock import Clock, epoch
from idp.config import TokensConfig
from idp.keys.services import KeyService, eddsa_allowed
from idp.oauth.claims import ClaimsClient, ClaimsUser, private_claims, user_claims


class ClaimsClientAlg(ClaimsClient, Protocol):
    """The client a token is for: its id, private claims and ID token algorithm."""

    @property
    def client_id(self) -> str: ...
    @property
    def id_token_signed_response_alg(self) -> str | None: ...


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_at: dt.datetime
    expires_in: int


@dataclass(frozen=True)
class PlannedAccessToken:
    """An access token's identity and lifetime, fixed before it is recorded and signed
    (a rotation records the jti in its transaction and signs after the commit)."""

    jti: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    expires_in: int


class TokenIssuer:
    def __init__(self, issuer: str, keys: KeyService, clock: Clock, cfg: TokensConfig) -> None:
        self.issuer = issuer
        self.keys = keys
        self.clock = clock
        self.cfg = cfg

    def sign(self, header: dict[str, Any], claims: dict[str, Any], alg: str) -> str:
        """A JWS of ``claims`` with the active key of ``alg``, its ``kid`` in the header."""
        signer = self.keys.signer(alg)
        # Pass the algorithm explicitly: joserfc's default list leaves EdDSA out.
        with eddsa_allowed(alg == "EdDSA"):
            return jwt.encode(
                {**header, "alg": alg, "kid": signer.kid}, claims, signer.key, algorithms=[alg]
            )

    def plan_access_token(self, grant_type: str) -> PlannedAccessToken:
        ttl = (
            self.cfg.client_credentials_ttl
            if grant_type == "client_credentials"
            else self.cfg.access_token_ttl
        )
        now = self.clock.now()
        return PlannedAccessToken(
            jti=secrets.token_urlsafe(16),
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
            expires_in=ttl,
        )

    def load_keys(self, client: ClaimsClientAlg) -> None:
        """Loads the keys a token response for ``client`` signs with, so that nothing
        after a commit needs the database."""
        self.keys.signer(self.cfg.access_token_alg)
        self.keys.signer(self.id_token_alg(client))

    def access_token(
        self,
        client: ClaimsClientAlg,
        user: ClaimsUser | None,
        scope: str,
        *,
        grant_type: str,
        sid: str | None = None,
        auth_time: dt.datetime | None = None,
        planned: PlannedAccessToken | None = None,
        jkt: str | None = None,
    ) -> IssuedAccessToken:
        """``jkt``: the DPoP key the token is bound to (RFC 9449 §6.1, ``cnf.jkt``)."""
        plan = planned or self.plan_access_token(grant_type)
        # Private claims first, so registered ones can never be overridden by them.
        claims: dict[str, Any] = private_claims(client, user)
        claims.update(
            {
                "iss": self.issuer,
                "sub": user.id if user else client.client_id,
                "aud": client.client_id,
                "exp": epoch(plan.expires_at),
                "iat": epoch(plan.issued_at),
                "nbf": epoch(plan.issued_at),
                "jti": plan.jti,
                "client_id": client.client_id,
                "scope": scope,
            }
        )
        if user is not None:
            claims.update({k: v for k, v in user_claims(user, scope).items() if k != "sub"})
        if sid:
            claims["sid"] = sid
        if auth_time is not None:
            claims["auth_time"] = epoch(auth_time)
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        token = self.sign({"typ": "at+jwt"}, claims, self.cfg.access_token_alg)
        return IssuedAccessToken(
            token=token, jti=plan.jti, expires_at=plan.expires_at, expires_in=plan.expires_in
        )

    def id_token_alg(self, client: ClaimsClientAlg) -> str:
        return client.id_token_signed_response_alg or self.cfg.id_token_alg

    def id_token(
        self,
        client: ClaimsClientAlg,
        user: ClaimsUser,
        scope: str,
        *,
        access_token: str | None,
        nonce: str | None,
        auth_time: dt.datetime,
        sid: str | None,
        amr: list[str] | None = None,
        acr: str | None = None,
    ) -> str:
        """``amr`` (RFC 8176) and ``acr`` (OIDC Core §2, values in idp.mfa.acr): how the
        user authenticated, when known (from the login, or the refresh family it opened)."""
        now = self.clock.now()
        alg = self.id_token_alg(client)
        claims: dict[str, Any] = private_claims(client, user)
        claims.update(user_claims(user, scope))
        claims.update(
            {
                "iss": self.issuer,
                "sub": user.id,
                "aud": client.client_id,
                "azp": client.client_id,
                "exp": epoch(now + dt.timedelta(seconds=self.cfg.id_token_ttl)),
                "iat": epoch(now),
                "auth_time": epoch(auth_time),
            }
        )
        if nonce:
            claims["nonce"] = nonce
        if sid:
            claims["sid"] = sid
        if amr:
            claims["amr"] = list(amr)
        if acr:
            claims["acr"] = acr
        if access_token:
            half = create_half_hash(access_token, alg)
            if half is not None:
                claims["at_hash"] = half.decode()
        return self.sign({"typ": "JWT"}, claims, alg)
