"""A relying app that signs its users in with idp, as a real client would.

It uses authlib's OAuth client (not idp's code): discovery, the authorization code
flow with PKCE S256, ID token validation against idp's JWKS, refresh-token rotation and
RP-initiated logout. It registers a back-channel logout URI, so a session an operator
kills at idp ends here too (OIDC Back-Channel Logout 1.0); a refresh token refused by
idp ends it as well.

Tokens stay on the server side (a backend-for-frontend): the browser only gets this
app's own HttpOnly cookie, a random key into an in-memory store. The PKCE verifier and
nonce of a login in progress are kept on the server too. Run it alone with:

    python -m examples.relying_app --issuer http://127.0.0.1:5000 \
        --client-id demo-app --client-secret SECRET
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from authlib.oidc.core import CodeIDToken
from flask import Flask, jsonify, make_response, redirect, render_template_string, request, url_for
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from werkzeug.wrappers import Response

#: Epoch seconds now; tests pass the clock they also give idp.
Clock = Callable[[], float]

COOKIE = "session"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
LEEWAY = 120  # seconds of clock skew allowed on iat/exp, as authlib allows on ID tokens
REFRESH_MARGIN = 30  # refresh this many seconds before the access token expires
MAX_ENDED = 1000  # why-you-were-signed-out notes kept for browsers yet to come back

PAGE = """<!doctype html><meta charset="utf-8"><title>Demo relying app</title>
<h1>Demo relying app</h1>
{% if login %}
  <p>Signed in as <strong>{{ login.claims.get('preferred_username') or login.sub }}</strong>.</p>
  <h2>ID token claims</h2><pre>{{ login.claims | tojson(indent=2) }}</pre>
  <h2>Tokens, kept on this server</h2>
  <p>Access token: <code>{{ login.access_token[:40] }}…</code>
    (expires {{ at(login.expires_at) }})</p>
  <p>Refresh token: {{ 'yes (kept on the server)' if login.refresh_token else 'no' }}</p>
  <p id="refreshed">Access token last refreshed: {% if login.refreshed_at -%}
    {{ at(login.refreshed_at) }} ({{ login.refreshes }} in this session)
  {%- else %}not yet: it is refreshed when it is about to expire{% endif %}</p>
  {% if login.problem %}<p role="alert">{{ login.problem }}</p>{% endif %}
  <p>Your browser holds only this app's session key, in an HttpOnly cookie.</p>
  <p><a href="{{ url_for('sign_out') }}">Sign out</a></p>
{% else %}
  {% if notice %}<p role="status">Signed out: {{ notice }}</p>{% endif %}
  <p><a href="{{ url_for('sign_in') }}">Sign in with idp</a></p>
{% endif %}"""


class LogoutTokenError(ValueError):
    """A logout token that fails OIDC Back-Channel Logout 1.0 §2.6."""


@dataclass
class Login:
    """One signed-in browser: who it is and its tokens, which never leave this server."""

    sub: str
    sid: str | None
    claims: dict[str, Any]
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_at: float
    refreshed_at: float | None = None
    refreshes: int = 0
    problem: str | None = None  # the last refresh that failed without ending the session
    # Held while refreshing: with rotation, two refreshes of one token look like theft.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def needs_refresh(self, now: float) -> bool:
        return self.expires_at - REFRESH_MARGIN <= now


class LoginStore:
    """The server-side sessions, keyed by the random value of the browser's cookie."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logins: dict[str, Login] = {}
        self._ended: dict[str, str] = {}

    def add(self, login: Login) -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._logins[key] = login
        return key

    def get(self, key: str) -> Login | None:
        with self._lock:
            return self._logins.get(key)

    def pop(self, key: str) -> Login | None:
        """Drops the session (and any note of how an earlier one ended) and returns it."""
        with self._lock:
            self._ended.pop(key, None)
            return self._logins.pop(key, None)

    def end(self, key: str, why: str) -> None:
        """Drops the session and remembers why, for the browser's next visit."""
        with self._lock:
            if self._logins.pop(key, None) is not None:
                self._note(key, why)

    def end_matching(self, *, sid: str | None, sub: str | None, why: str) -> int:
        """Drops every session of idp session ``sid`` (of user ``sub`` as well, when
        both are given), or every session of ``sub`` when only it is; returns how many."""
        if sid is None and sub is None:
            return 0
        with self._lock:
            keys = [
                key
                for key, login in self._logins.items()
                if (sid is None or login.sid == sid) and (sub is None or login.sub == sub)
            ]
            for key in keys:
                del self._logins[key]
                self._note(key, why)
            return len(keys)

    def why_ended(self, key: str) -> str | None:
        with self._lock:
            return self._ended.pop(key, None)

    def _note(self, key: str, why: str) -> None:
        self._ended[key] = why
        while len(self._ended) > MAX_ENDED:
            del self._ended[next(iter(self._ended))]


class StateCache:
    """authlib's cache interface, in memory: the state, PKCE verifier and nonce of a
    login in progress stay here; the browser's Flask session only marks the state."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            value, expires_at = self._items.get(key, (None, 0.0))
            return value if expires_at > self.clock() else None

    def set(self, key: str, value: str, expires_in: int) -> None:
        now = self.clock()
        with self._lock:
            for stale in [k for k, (_, exp) in self._items.items() if exp <= now]:
                del self._items[stale]
            self._items[key] = (value, now + expires_in)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


def validate_logout_token(
    value: str,
    *,
    decode: Callable[[str], jwt.Token],
    issuer: str,
    client_id: str,
    now: Clock,
) -> dict[str, Any]:
    """The claims of a logout token checked as OIDC Back-Channel Logout 1.0 §2.6 says.

    ``decode`` checks the signature and ``alg`` as for ID tokens (steps 2-3). The
    optional ``jti`` replay check (step 8) is left out: ``sid`` names one login, so a
    replayed token can only end a session that has already ended.
    """
    if not value:
        raise LogoutTokenError("no logout_token")
    try:
        token = decode(value)
    except JoseError as exc:
        raise LogoutTokenError(f"signature: {exc}") from None
    typ = str(token.header.get("typ", "logout+jwt")).lower()
    if typ.removeprefix("application/") != "logout+jwt":  # §2.4; RFC 8725 §3.11
        raise LogoutTokenError(f"typ {typ!r} is not logout+jwt")
    claims = dict(token.claims)
    registry = jwt.JWTClaimsRegistry(  # step 4
        now=lambda: int(now()),
        leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        exp={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise LogoutTokenError(str(exc)) from None
    named = [name for name in ("sub", "sid") if name in claims]  # step 5
    if not named or any(not isinstance(claims[name], str) for name in named):
        raise LogoutTokenError("a logout token names a sub, a sid or both, as strings")
    events = claims.get("events")  # step 6
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise LogoutTokenError(f"events has no {LOGOUT_EVENT}")
    if "nonce" in claims:  # step 7: an ID token must not pass for a logout token
        raise LogoutTokenError("a logout token has no nonce")
    return claims


def create_rp(
    issuer: str,
    client_id: str,
    client_secret: str,
    port: int,
    *,
    clock: Clock = time.time,
    signals_secret: str | None = None,
) -> Flask:
    """``signals_secret``: take Shared Signals pushes (RFC 8935) at /ssf/events from a
    stream whose authorization_header is ``Bearer <signals_secret>``."""
    issuer = issuer.rstrip("/")
    app = Flask("relying_app")
    app.secret_key = secrets.token_urlsafe(32)
    app.config.update(
        # Flask's own cookie carries only authlib's state marker during a sign-in.
        SESSION_COOKIE_NAME="rp_state",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    oauth = OAuth(app, cache=StateCache(clock))
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile email offline_access",
            "code_challenge_method": "S256",
            "default_timeout": 10,
        },
    )
    store = LoginStore()
    app.extensions["logins"] = store
    base = f"http://127.0.0.1:{port}"
    redirect_uri = f"{base}/callback"

    def at(epoch: float) -> str:
        return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))

    def decode(value: str) -> jwt.Token:
        """A JWT whose signature checks against idp's JWKS, as authlib checks ID tokens:
        the JWKS is fetched again once for an unknown kid (a key rotated in since)."""
        meta = oauth.idp.load_server_metadata()
        algs = [a for a in meta.get("id_token_signing_alg_values_supported", []) if a != "none"]
        try:
            keys = KeySet.import_key_set(oauth.idp.fetch_jwk_set())
            return jwt.decode(value, keys, algorithms=algs or ["RS256"])
        except InvalidKeyIdError:
            keys = KeySet.import_key_set(oauth.idp.fetch_jwk_set(force=True))
            return jwt.decode(value, keys, algorithms=algs or ["RS256"])

    def id_token_options() -> dict[str, Any]:
        # authlib checks only iss unless told; OIDC Core §3.1.3.7 wants aud checked too.
        return {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
        }

    def refreshed_id_token(token: dict[str, Any], login: Login) -> dict[str, Any]:
        """OIDC Core §12.2: a refreshed ID token is validated like the first one and names
        the same user."""
        decoded = decode(token["id_token"])
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {**id_token_options(), "sub": {"essential": True, "value": login.sub}},
            {"client_id": client_id, "access_token": token["access_token"]},
        )
        claims.validate(now=int(clock()), leeway=LEEWAY)
        return dict(claims)

    def refresh(key: str, login: Login) -> None:
        """Refreshes the access token (RFC 6749 §6) and keeps the rotated refresh token;
        a refresh token idp refuses ends the session here."""
        with login.lock:
            if not login.needs_refresh(clock()):
                return  # another request refreshed it while this one waited
            if login.refresh_token is None:
                store.end(key, "the access token expired and there is no refresh token.")
                return
            try:
                token = oauth.idp.fetch_access_token(
                    grant_type="refresh_token", refresh_token=login.refresh_token
                )
                claims = refreshed_id_token(token, login) if "id_token" in token else None
            except OAuthError as exc:
                if exc.error == "invalid_grant":
                    why = (exc.description or exc.error).rstrip(".")
                    store.end(key, f"idp refused the refresh token ({why}).")
                else:
                    login.problem = f"Could not refresh the access token: {exc}"
                return
            except JoseError as exc:
                store.end(key, f"the refreshed ID token is not valid ({exc}).")
                return
            except (requests.RequestException, ValueError) as exc:
                login.problem = f"Could not refresh the access token: {exc}"
                return
            now = clock()
            login.access_token = token["access_token"]
            login.expires_at = now + float(token.get("expires_in", 0))
            login.refresh_token = token.get("refresh_token", login.refresh_token)
            if claims is not None:
                login.id_token, login.claims = token["id_token"], claims
            login.refreshed_at, login.refreshes, login.problem = now, login.refreshes + 1, None

    def page(login: Login | None, notice: str | None = None, status: int = 200) -> Response:
        html = render_template_string(PAGE, login=login, notice=notice, at=at)
        resp = make_response(html, status)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def home() -> Response:
        if request.args.get("state"):  # back from RP-initiated logout
            with contextlib.suppress(OAuthError):  # a stale state: nothing to clean up
                oauth.idp.validate_logout_response()
            return redirect(url_for("home"))
        key = request.cookies.get(COOKIE)
        login = store.get(key) if key else None
        if key and login is not None and login.needs_refresh(clock()):
            refresh(key, login)
            login = store.get(key)
        if not key or login is not None:
            return page(login)
        resp = page(None, store.why_ended(key))
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/login")
    def sign_in() -> Response:
        resp: Response = oauth.idp.authorize_redirect(redirect_uri)
        return resp

    @app.get("/callback")
    def callback() -> Response:
        try:
            token = oauth.idp.authorize_access_token(claims_options=id_token_options())
        except OAuthError as exc:
            return page(None, f"the sign-in failed ({exc}).", status=400)
        claims = dict(token["userinfo"])
        if old := request.cookies.get(COOKIE):
            store.pop(old)
        key = store.add(
            Login(
                sub=claims["sub"],
                sid=claims.get("sid"),
                claims=claims,
                id_token=token["id_token"],
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                expires_at=clock() + float(token.get("expires_in", 0)),
            )
        )
        resp = redirect(url_for("home"))
        resp.set_cookie(COOKIE, key, httponly=True, samesite="Lax", secure=request.is_secure)
        return resp

    @app.get("/logout")
    def sign_out() -> Response:
        key = request.cookies.get(COOKIE)
        login = store.pop(key) if key else None
        if login is None:
            resp = redirect(url_for("home"))
        else:  # RP-initiated logout: the hint lets idp end its session without asking
            resp = oauth.idp.logout_redirect(
                post_logout_redirect_uri=f"{base}/", id_token_hint=login.id_token
            )
        resp.delete_cookie(COOKIE)
        return resp

    @app.post("/backchannel-logout")
    def backchannel_logout() -> Response:
        """OIDC Back-Channel Logout 1.0 §2.5-2.8: idp says a session ended."""
        try:
            claims = validate_logout_token(
                request.form.get("logout_token", ""),
                decode=decode,
                issuer=issuer,
                client_id=client_id,
                now=clock,
            )
        except LogoutTokenError as exc:
            resp = jsonify(error="invalid_request", error_description=str(exc))
            resp.status_code = 400
        else:
            store.end_matching(
                sid=claims.get("sid"),
                sub=claims.get("sub"),
                why="idp ended your session (back-channel logout).",
            )
            resp = make_response("", 200)
        resp.headers["Cache-Control"] = "no-store"  # §2.8
        return resp

    def refused(status: int, err: str, description: str) -> Response:
        resp = jsonify(err=err, description=description)  # RFC 8935 §2.4
        resp.status_code = status
        return resp

    @app.post("/ssf/events")
    def shared_signals() -> Response:
        """RFC 8935: idp pushes a Security Event Token; a CAEP session-revoked signs the
        session out at once."""
        expected = f"Bearer {signals_secret}"
        given = request.headers.get("Authorization", "")
        if signals_secret is None or not hmac.compare_digest(given, expected):
            return refused(401, "authentication_failed", "Unknown sender.")
        if request.mimetype != "application/secevent+jwt":
            return refused(400, "invalid_request", "Send application/secevent+jwt.")
        try:
            token = decode(request.get_data(as_text=True))
        except (JoseError, ValueError) as exc:
            return refused(400, "invalid_key", f"signature: {exc}")
        claims = dict(token.claims)
        if token.header.get("typ") != "secevent+jwt":
            return refused(400, "invalid_request", "typ is not secevent+jwt")
        if claims.get("iss") != issuer:
            return refused(400, "invalid_issuer", "Not from our identity provider.")
        if claims.get("aud") != client_id:
            return refused(400, "invalid_audience", "Not for this app.")
        session = (claims.get("sub_id") or {}).get("session") or {}
        if SESSION_REVOKED in (claims.get("events") or {}) and isinstance(session.get("id"), str):
            store.end_matching(
                sid=session["id"], sub=None, why="idp revoked your session (Shared Signals)."
            )
        return make_response("", 202)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issuer", default="http://127.0.0.1:5000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args()
    create_rp(args.issuer, args.client_id, args.client_secret, args.port).run(
        host="127.0.0.1", port=args.port
    )


if __name__ == "__main__":
    main()
