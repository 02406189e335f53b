"""`make run`'s seeding (idp/demo.py): the demo client hears of killed sessions."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask

from idp.clients.models import Client
from idp.clients.services import create_client, hash_secret
from idp.demo import BACKCHANNEL_URI, RP_PORT, seed


def demo_client(app: Flask) -> Client:
    with app.extensions["idp"].db.read() as s:
        client = s.get(Client, "demo-app")
    assert client is not None
    return client


def test_seed_registers_the_demo_app_for_back_channel_logout(app: Flask, tmp_path: Path) -> None:
    creds = seed(app)

    client = demo_client(app)
    assert (
        client.backchannel_logout_uri
        == BACKCHANNEL_URI
        == (f"http://127.0.0.1:{RP_PORT}/backchannel-logout")
    )
    assert client.secret_hash == hash_secret(creds["client_secret"])
    assert json.loads((tmp_path / "demo_client.json").read_text()) == creds


def test_seed_adds_the_uri_to_a_demo_app_from_an_older_instance(app: Flask, tmp_path: Path) -> None:
    svc = app.extensions["idp"]
    with svc.db.transaction() as s:  # what `make run` registered before back-channel logout
        _, secret = create_client(
            s,
            svc.clock,
            "demo-app",
            first_party=True,
            redirect_uris=[f"http://127.0.0.1:{RP_PORT}/callback"],
            post_logout_redirect_uris=[f"http://127.0.0.1:{RP_PORT}/"],
            grant_types=["authorization_code", "refresh_token"],
        )
    assert secret
    old = {"client_id": "demo-app", "client_secret": secret}
    (tmp_path / "demo_client.json").write_text(json.dumps(old))

    assert seed(app) == old

    client = demo_client(app)
    assert client.backchannel_logout_uri == BACKCHANNEL_URI
    assert client.secret_hash == hash_secret(secret), "the saved secret keeps working"
    assert seed(app) == old, "seeding again changes nothing"


def test_seed_signals_makes_one_push_stream_to_the_demo_app(app: Flask, tmp_path: Path) -> None:
    """`make run`: idp pushes CAEP session-revoked to the demo app (issue 12 item 4)."""
    from sqlalchemy import select

    from idp.demo import SIGNALS_URI, seed_signals
    from idp.ssf.models import SsfStream

    seed(app)
    secret = seed_signals(app)
    assert seed_signals(app) == secret, "seeding again keeps the stream and its secret"
    with app.extensions["idp"].db.read() as s:
        [stream] = s.scalars(select(SsfStream)).all()
    assert stream.client_id == "demo-app" and stream.endpoint_url == SIGNALS_URI
    assert stream.authorization_header == f"Bearer {secret}"
    assert (tmp_path / "demo_signals.json").stat().st_mode & 0o777 == 0o600
