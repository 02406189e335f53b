"""`make run`: idp on SQLite with a demo admin, a demo client and the example relying app.

Development only: the demo password is printed and well known.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from idp import create_app, migrate
from idp.config import warn_insecure
from idp.serve import quiet_handler

DEMO_USER, DEMO_PASSWORD = "admin", "demo-password"
RP_PORT = 5001
BACKCHANNEL_URI = f"http://127.0.0.1:{RP_PORT}/backchannel-logout"
SIGNALS_URI = f"http://127.0.0.1:{RP_PORT}/ssf/events"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def seed(app: Flask) -> dict[str, str]:
    from idp.accounts.services import by_username, create_user
    from idp.clients.models import Client
    from idp.clients.services import create_client, update_client

    svc = app.extensions["idp"]
    migrate.upgrade(svc.config.database.url)
    svc.keys.ensure(svc.algs_in_use())
    secret_file = Path(svc.config.server.instance_path) / "demo_client.json"
    with app.app_context(), svc.db.transaction() as s:
        if by_username(s, DEMO_USER) is None:
            create_user(
                s,
                svc.clock,
                DEMO_USER,
                DEMO_PASSWORD,
                email="admin@example.test",
                name="Demo Admin",
                admin=True,
            )
        demo = s.get(Client, "demo-app")
        if demo is None or not secret_file.exists():
            if demo is not None:
                s.delete(demo)
                s.flush()
            _, secret = create_client(
                s,
                svc.clock,
                "demo-app",
                name="Demo relying app",
                first_party=True,
                redirect_uris=[f"http://127.0.0.1:{RP_PORT}/callback"],
                post_logout_redirect_uris=[f"http://127.0.0.1:{RP_PORT}/"],
                grant_types=["authorization_code", "refresh_token"],
                scope="openid profile email offline_access",
                backchannel_logout_uri=BACKCHANNEL_URI,
                allow_loopback=svc.config.outbound.allow_loopback,
            )
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"client_id": "demo-app", "client_secret": secret}, f)
        elif demo.backchannel_logout_uri != BACKCHANNEL_URI:
            # An instance/ from an older `make run`, whose demo-app predates back-channel logout.
            update_client(
                demo,
                backchannel_logout_uri=BACKCHANNEL_URI,
                allow_loopback=svc.config.outbound.allow_loopback,
            )
    return dict(json.loads(secret_file.read_text()))


def seed_signals(app: Flask) -> str:
    """A Shared Signals push stream from idp to the demo app (session-revoked), made
    once; returns the secret the app expects in its Authorization header."""
    import secrets

    from sqlalchemy import select

    from idp.ssf import streams
    from idp.ssf.models import SsfStream

    svc = app.extensions["idp"]
    secret_file = Path(svc.config.server.instance_path) / "demo_signals.json"
    with svc.db.transaction() as s:
        stream = s.scalar(
            select(SsfStream).where(
                SsfStream.client_id == "demo-app", SsfStream.endpoint_url == SIGNALS_URI
            )
        )
        if stream is not None and secret_file.exists():
            return str(json.loads(secret_file.read_text())["secret"])
        if stream is not None:
            s.delete(stream)
            s.flush()
        secret = secrets.token_urlsafe(32)
        delivery = {
            "method": streams.PUSH,
            "endpoint_url": SIGNALS_URI,
            "authorization_header": f"Bearer {secret}",
        }
        body = {"delivery": delivery, "events_requested": [SESSION_REVOKED]}
        streams.create(s, svc.clock.now(), "demo-app", body, svc.pusher.outbound)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"secret": secret}, f)
    return secret


def main() -> None:
    from idp import config, logs

    logs.configure(config.load().log)
    # The demo relying app takes back-channel logouts on 127.0.0.1 (development only).
    os.environ.setdefault("IDP_OUTBOUND__ALLOW_LOOPBACK", "true")
    # A newcomer signs up and verifies the address from the mail printed below.
    os.environ.setdefault("IDP_SERVER__SIGNUP_ENABLED", "true")
    app = create_app()
    svc = app.extensions["idp"]
    warn_insecure(svc.config)
    creds = seed(app)
    signals_secret = seed_signals(app)

    from examples.relying_app import create_rp

    rp = create_rp(
        issuer=svc.config.server.issuer,
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        port=RP_PORT,
        signals_secret=signals_secret,
    )
    rp_server = make_server(
        "127.0.0.1", RP_PORT, rp, threaded=True, request_handler=quiet_handler()
    )
    threading.Thread(target=rp_server.serve_forever, daemon=True).start()
    host, port = svc.config.server.host, svc.config.server.port
    mail = (
        f"sent through {svc.config.mail.smtp_url}"
        if svc.config.mail.smtp_url
        else "printed here (no [mail] smtp_url): click the links in it"
    )
    issuer = svc.config.server.issuer
    passkeys = svc.passkeys.rp.problem() or f"add one at {issuer}/account/security"
    print(
        f"""
  idp is running at   {svc.config.server.issuer}
  discovery:          {svc.config.server.issuer}/.well-known/openid-configuration

  Try a login:        open http://127.0.0.1:{RP_PORT}/ and click "Sign in with idp"
  Demo admin user:    {DEMO_USER} / {DEMO_PASSWORD}
  Operator dashboard: {svc.config.server.issuer}/admin/
  Passkeys:           {passkeys}
  Demo client:        {creds["client_id"]}
                      (secret in {svc.config.server.instance_path}/demo_client.json)
  Sign up:            {svc.config.server.issuer}/signup
  Forgot a password:  {svc.config.server.issuer}/password/forgot
  Mail:               {mail}

  Press Ctrl+C to stop.
""",
        flush=True,
    )
    make_server(host, port, app, threaded=True, request_handler=quiet_handler()).serve_forever()


if __name__ == "__main__":
    main()
