"""Registered relying apps (OAuth clients)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, Hash, Json, Timestamp

ADMIN_SCOPE = "idp:admin"


# How a client authenticates at the token, introspection, revocation and PAR endpoints.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")


class ClientRules:
    """authlib's ClientMixin: what a client may do. Shared by the stored row and the
    in-process view of it (idp.clients.cache), which is what the protocol code sees."""

    client_id: str
    secret_hash: str | None
    redirect_uris: Any
    grant_types: Any
    scope: str
    token_endpoint_auth_method: str

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105 - a method name

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # RFC 6749 §3.1.2.3: the redirect_uri may be omitted only with exactly one.
        return str(self.redirect_uris[0]) if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        # The admin API scope is only ever granted through client_credentials.
        allowed = set(self.scope.split()) - {ADMIN_SCOPE}
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match (RFC 9700 §4.1.3); the port of a loopback URI may vary for
        # native apps only (public clients, RFC 8252 §7.3), never for confidential ones.
        from idp.clients.redirects import matches

        return any(
            matches(registered, redirect_uri, port_may_vary=self.is_public)
            for registered in self.redirect_uris
        )

    def identity_unproven(self, redirect_uri: str) -> bool:
        """RFC 8252 §8.6: a public client whose redirect URI is not https (loopback or a
        private-use scheme) may be any local program, so an earlier consent proves
        nothing: such requests always ask the user."""
        return self.is_public and not redirect_uri.startswith("https://")

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        digest = hashlib.sha256(client_secret.encode()).hexdigest()
        return hmac.compare_digest(digest, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """A secret may be sent either way (basic or post); a client with keys signs an
        assertion (RFC 7523); a public client only names itself."""
        registered = self.token_endpoint_auth_method
        if registered in SECRET_METHODS:
            return method in SECRET_METHODS
        return method == registered

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class Client(ClientRules, Base):
    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Secrets are 256 random bits, so a fast hash is enough (unlike passwords).
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[Json] = mapped_column(default=list)
    grant_types: Mapped[Json] = mapped_column(default=list)
    scope: Mapped[str] = mapped_column(String(1000))
    claims: Mapped[Json] = mapped_column(default=dict)
    first_party: Mapped[bool] = mapped_column(default=False)
    is_admin_client: Mapped[bool] = mapped_column(default=False)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(10))
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    post_logout_redirect_uris: Mapped[Json] = mapped_column(default=list)
    # RFC 9449 §5.2.1: every token request must carry a DPoP proof.
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(default=False)
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(30), default="client_secret_basic"
    )
    # The client's public keys (RFC 7591 jwks / jwks_uri), for private_key_jwt and signed
    # request objects; at most one of the two.
    jwks: Mapped[Json | None] = mapped_column()
    jwks_uri: Mapped[str | None] = mapped_column(String(2000))
    # RFC 9126 §6: authorization requests only through PAR.
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(default=False)
    # Logins for this client need a second factor (acr "2", idp.mfa.acr); registration
    # metadata default_acr_values ["2"] (OIDC Dynamic Client Registration §2).
    require_mfa: Mapped[bool] = mapped_column(default=False)
    # Users without a verified email address get no code for this client (issue 13).
    require_verified_email: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[Timestamp]
    # RFC 7592: SHA-256 of the registration access token of a dynamically registered
    # client; None for clients an operator created (they cannot manage themselves).
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))


class InitialAccessToken(Base):
    """An RFC 7591 §1.2 initial access token (``idp clients initial-token``), stored as
    its SHA-256 only. One registration each unless ``reusable``; none after
    ``expires_at``."""

    __tablename__ = "initial_access_tokens"

    token_hash: Mapped[Hash] = mapped_column(primary_key=True)
    created_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp] = mapped_column(index=True)
    reusable: Mapped[bool] = mapped_column(default=False)
    registrations: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[Timestamp | None]
