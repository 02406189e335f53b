"""Dynamic client registration (RFC 7591) and its management (RFC 7592).

A client sends its metadata (RFC 7591 §2) to ``/register``; idp checks it with the same
rules as every other registration (:func:`idp.clients.services.create_client`), gives it
a random ``client_id``, a secret when it authenticates with one, and a registration
access token for its configuration endpoint ``/register/<client_id>``, where it reads
(GET), replaces (PUT) or deletes (DELETE) its registration.

Policy, where the RFCs leave it to the server:

- ``[oauth] registration``: ``token`` needs an initial access token (RFC 7591 §1.2) from
  ``idp clients initial-token``, good for one registration unless issued ``--reusable``;
  ``open`` needs none; ``closed`` has no registration endpoint (management still works).
- A dynamically registered client is never first-party (the user is always asked) and
  never an admin client; it may not register ``idp:admin``, and without an initial
  access token only the scopes discovery lists (the user scopes).
- Tokens are stored as SHA-256 only. The registration access token stays the same on
  read and update (RFC 7592 §3 allows both; a lost answer then never locks a client out)
  and ends when the client is deleted.
- A deleted client is disabled for good rather than removed (its id is never reused and
  its audit trail keeps pointing at it): its secret and registration access token are
  cleared and every token it holds is revoked (RFC 7592 §2.3).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from idp.audit.services import record
from idp.clients.models import ADMIN_SCOPE, SECRET_METHODS, Client, InitialAccessToken
from idp.clients.rfc7591 import (
    InvalidMetadata,
    InvalidRequest,
    InvalidToken,
    client_arguments,
    refusal,
)
from idp.clients.services import (
    CLIENT_ID_RE,
    ClientError,
    create_client,
    hash_secret,
    metadata,
    replace_client,
)
from idp.clock import Clock, epoch
from idp.config import Config
from idp.db import Database
from idp.keys.services import KeyService
from idp.operator import OperatorActions

# What discovery lists as scopes_supported: all a client may register without an
# initial access token.
OPEN_SCOPES = ("openid", "profile", "email", "offline_access")
# RFC 7592 §2.2: the server's own fields never come back in an update.
SERVER_MEMBERS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)
_NO_TOKEN = "-" * 64  # compared against when there is no stored hash: same work


class Registrations:
    """The registration and configuration endpoints' operations; each commits its
    change and its audit record in one transaction."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: Config,
        actions: OperatorActions,
        keys: KeyService,
    ) -> None:
        self.db = db
        self.clock = clock
        self.mode = config.oauth.registration
        self.endpoint = config.server.issuer.rstrip("/") + "/register"
        self.allow_loopback = config.outbound.allow_loopback
        self.actions = actions
        self.keys = keys

    # --- initial access tokens (RFC 7591 §1.2) ---------------------------------------
    def issue_initial_token(self, ttl_seconds: int, reusable: bool, actor: str) -> str:
        """A new initial access token, good for ``ttl_seconds`` and for one
        registration unless ``reusable``. Only its hash is kept."""
        token = secrets.token_urlsafe(32)
        digest = hash_secret(token)
        now = self.clock.now()
        expires_at = now + dt.timedelta(seconds=ttl_seconds)
        with self.db.transaction() as s:
            s.add(
                InitialAccessToken(
                    token_hash=digest,
                    created_at=now,
                    expires_at=expires_at,
                    reusable=reusable,
                    registrations=0,
                )
            )
            record(
                s,
                at=now,
                actor=actor,
                action="initial_token.issue",
                target=_token_name(digest),
                expires_at=expires_at.isoformat(),
                reusable=reusable,
            )
        return token

    def _usable(self, digest: str, now: dt.datetime) -> Any:
        t = InitialAccessToken
        return (
            t.token_hash == digest,
            t.expires_at > now,
            or_(t.reusable.is_(True), t.registrations == 0),
        )

    def admit(self, initial_token: str | None) -> None:
        """Raises InvalidToken unless the request may register (in ``token`` mode: it
        carries a live, unused initial access token). Registering checks it again, in
        the transaction that uses it up."""
        if self.mode != "token":
            return
        if not initial_token:
            raise InvalidToken(
                "An initial access token is required (RFC 7591 section 3): ask the operator"
                " for one (idp clients initial-token)."
            )
        with self.db.read() as s:
            found = s.scalar(
                select(InitialAccessToken.token_hash).where(
                    *self._usable(hash_secret(initial_token), self.clock.now())
                )
            )
        if found is None:
            raise InvalidToken("The initial access token is not valid, expired or used up.")

    def _use_initial_token(self, s: Session, initial_token: str | None) -> str:
        """Uses up one registration of the initial access token (atomically: of two
        registrations racing for a single-use token, one wins); the audit actor."""
        if self.mode != "token":
            return "open-registration"
        digest = hash_secret(initial_token or "")
        now = self.clock.now()
        t = InitialAccessToken
        used = s.execute(
            update(t)
            .where(*self._usable(digest, now))
            .values(registrations=t.registrations + 1, last_used_at=now)
        )
        if getattr(used, "rowcount", 0) != 1:
            raise InvalidToken("The initial access token is not valid, expired or used up.")
        return f"initial-token:{_token_name(digest)}"

    # --- registration (RFC 7591 §3) ----------------------------------------------------
    def _arguments(self, body: Mapping[str, Any]) -> dict[str, Any]:
        args = client_arguments(body)
        scopes = args["scope"].split()
        if ADMIN_SCOPE in scopes:
            raise InvalidMetadata(f"scope {ADMIN_SCOPE} cannot be registered")
        if self.mode != "token" and (other := [x for x in scopes if x not in OPEN_SCOPES]):
            raise InvalidMetadata(
                f"scope {other[0]!r} needs an initial access token (registrable: "
                f"{' '.join(OPEN_SCOPES)})"
            )
        return args

    def register(
        self, body: Mapping[str, Any], initial_token: str | None, ip: str | None
    ) -> dict[str, Any]:
        """RFC 7591 §3.2.1: the client information response of a new client, with its
        secret (shown this once) and its RFC 7592 §3 registration access token."""
        args = self._arguments(body)
        client_id = secrets.token_hex(16)
        access_token = secrets.token_urlsafe(32)
        with self.db.transaction() as s:
            actor = self._use_initial_token(s, initial_token)
            try:
                client, secret = create_client(
                    s,
                    self.clock,
                    client_id,
                    allow_loopback=self.allow_loopback,
                    first_party=False,
                    admin_client=False,
                    **args,
                )
            except ClientError as exc:
                raise refusal(exc) from None
            client.registration_token_hash = hash_secret(access_token)
            record(
                s,
                at=self.clock.now(),
                actor=actor,
                action="client.register",
                target=client_id,
                ip=ip,
                metadata=metadata(client),
            )
            out = self._information(client)
        self._keys_for(client)
        if secret:
            out["client_secret"] = secret
        out["registration_access_token"] = access_token
        return out

    # --- the client configuration endpoint (RFC 7592 §2) --------------------------------
    def _client(
        self, s: Session, client_id: str, access_token: str | None, *, lock: bool = False
    ) -> Client:
        """The client whose registration access token this is; InvalidToken for any
        other token, client or id (RFC 7592 §2: unknown clients get the same 401)."""
        client = None
        if CLIENT_ID_RE.fullmatch(client_id):
            client = s.get(Client, client_id, with_for_update=lock)
        stored = None if client is None or client.disabled else client.registration_token_hash
        presented = hash_secret(access_token or "")
        if not hmac.compare_digest(presented, stored or _NO_TOKEN) or not access_token:
            raise InvalidToken("The registration access token is not valid for this client.")
        assert client is not None
        return client

    def authenticate(self, client_id: str, access_token: str | None) -> None:
        """Raises InvalidToken unless ``access_token`` manages ``client_id``."""
        with self.db.read() as s:
            self._client(s, client_id, access_token)

    def read(self, client_id: str, access_token: str | None) -> dict[str, Any]:
        """RFC 7592 §2.1: the client's current registration."""
        with self.db.read() as s:
            out = self._information(self._client(s, client_id, access_token))
        out["registration_access_token"] = access_token
        return out

    def replace(
        self,
        client_id: str,
        access_token: str | None,
        body: Mapping[str, Any],
        ip: str | None,
    ) -> dict[str, Any]:
        """RFC 7592 §2.2: the body's metadata replace the registration as a whole (what
        it leaves out takes the registration default). It carries the client's own
        ``client_id``, none of the server's fields, and its ``client_secret`` only if
        that is the current one."""
        with self.db.transaction() as s:
            client = self._client(s, client_id, access_token, lock=True)
            if present := [name for name in SERVER_MEMBERS if name in body]:
                raise InvalidRequest(
                    f"{present[0]} is set by the server: leave it out of an update "
                    "(RFC 7592 section 2.2)"
                )
            if body.get("client_id") != client.client_id:
                raise InvalidRequest("client_id must be the client's own (RFC 7592 section 2.2)")
            secret = body.get("client_secret")
            if secret is not None and not (
                isinstance(secret, str) and client.check_client_secret(secret)
            ):
                raise InvalidRequest(
                    "client_secret is not the client's current secret (a client cannot "
                    "choose its own)"
                )
            args = self._arguments(body)
            before = metadata(client)
            try:
                replace_client(client, allow_loopback=self.allow_loopback, **args)
            except ClientError as exc:
                raise refusal(exc) from None
            after = metadata(client)
            record(
                s,
                at=self.clock.now(),
                actor=f"registration:{client_id}",
                action="client.update",
                target=client_id,
                ip=ip,
                changed={
                    k: {"from": before[k], "to": after[k]} for k in after if after[k] != before[k]
                },
            )
            out = self._information(client)
        self._keys_for(client)
        out["registration_access_token"] = access_token
        return out

    def delete(self, client_id: str, access_token: str | None, ip: str | None) -> None:
        """RFC 7592 §2.3: the client id, secret and registration access token stop
        working, and every token the client holds is revoked, in one transaction."""
        with self.db.transaction() as s:
            client = self._client(s, client_id, access_token, lock=True)
            client.disabled = True
            client.secret_hash = None
            client.registration_token_hash = None
            families = self.actions.revoke_client_in(
                s, client_id, "the client deleted its registration"
            )
            record(
                s,
                at=self.clock.now(),
                actor=f"registration:{client_id}",
                action="client.delete",
                target=client_id,
                ip=ip,
                families=families,
            )

    # --- answers ------------------------------------------------------------------------
    def _information(self, client: Client) -> dict[str, Any]:
        """RFC 7591 §3.2.1 and RFC 7592 §3, but the secret and registration access
        token (the callers add those they may show)."""
        out = {k: v for k, v in metadata(client).items() if v is not None}
        out["client_id_issued_at"] = epoch(client.created_at)
        if client.token_endpoint_auth_method in SECRET_METHODS:
            out["client_secret_expires_at"] = 0  # secrets do not expire
        out["registration_client_uri"] = f"{self.endpoint}/{client.client_id}"
        return out

    def _keys_for(self, client: Client) -> None:
        # A signing key for the ID token algorithm the client asked for, published now.
        if client.id_token_signed_response_alg:
            self.keys.ensure([client.id_token_signed_response_alg])


def _token_name(digest: str) -> str:
    """How the audit trail names an initial access token: the start of its hash (it
    tells nothing about the token)."""
    return digest[:12]
