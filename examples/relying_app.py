"""A relying app that signs its users in with idp, as a real client would.

It uses authlib's OAuth client (not idp's code): discovery, the authorization code
flow with PKCE S256, ID token validation against idp's JWKS. Tokens stay on the
server side (a backend-for-frontend); the browser only gets this app's own
HttpOnly session cookie. Run it alone with:

    python -m examples.relying_app --issuer http://127.0.0.1:5000 \
        --client-id demo-app --client-secret SECRET
"""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template_string, session, url_for

PAGE = """<!doctype html><meta charset="utf-8"><title>Demo relying app</title>
<h1>Demo relying app</h1>
{% if user %}
  <p>Signed in as <strong>{{ user.get('preferred_username') or user.sub }}</strong>.</p>
  <h2>ID token claims</h2><pre>{{ user | tojson(indent=2) }}</pre>
  <h2>Access token</h2><pre>{{ token.get('access_token')[:40] }}… (kept on the server)</pre>
  <p>Refresh token: {{ 'yes (kept on the server)' if token.get('refresh_token') else 'no' }}</p>
  <p><a href="{{ url_for('logout') }}">Sign out</a></p>
{% else %}
  <p><a href="{{ url_for('login') }}">Sign in with idp</a></p>
{% endif %}"""


def create_rp(issuer: str, client_id: str, client_secret: str, port: int) -> Flask:
    app = Flask("relying_app")
    app.secret_key = secrets.token_urlsafe(32)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile email offline_access",
            "code_challenge_method": "S256",
        },
    )
    redirect_uri = f"http://127.0.0.1:{port}/callback"

    @app.route("/")
    def home() -> str:
        return render_template_string(
            PAGE, user=session.get("user"), token=session.get("token", {})
        )

    @app.route("/login")
    def login() -> Any:
        return oauth.idp.authorize_redirect(redirect_uri)

    @app.route("/callback")
    def callback() -> Any:
        token = oauth.idp.authorize_access_token()
        session["user"] = dict(token["userinfo"])
        session["id_token"] = token.get("id_token")
        session["token"] = {k: token.get(k) for k in ("access_token", "refresh_token")}
        return redirect(url_for("home"))

    @app.route("/logout")
    def logout() -> Any:
        id_token = session.get("id_token")
        session.clear()
        meta = oauth.idp.load_server_metadata()
        return redirect(
            f"{meta['end_session_endpoint']}?id_token_hint={id_token}"
            f"&post_logout_redirect_uri=http://127.0.0.1:{port}/"
        )

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
