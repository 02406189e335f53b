"""KEK rotation without downtime (docs/operations.md, "Rotating the KEK"), with real
processes: `idp serve` given the new KEK and the previous one keeps signing with keys
sealed under the old one; `idp keys rewrap` re-encrypts everything under the new KEK in
one transaction; then `idp serve` with only the new KEK signs and verifies, and a process
without the KEK that sealed the keys stops with a message naming it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.admin.queries import events
from idp.keys import crypto
from idp.keys.models import SigningKey
from idp.mfa.models import MfaFactor
from idp.mfa.services import _aad
from tests.conftest import ISSUER, TEST_KEK, make_config
from tests.support.jwt import header, verify
from tests.support.server import ROOT, env_for, idp_serve

pytestmark = pytest.mark.slow

OLD = TEST_KEK  # what the app fixture seals with
NEW = crypto.generate_kek()
OLD_ID, NEW_ID = crypto.kek_id(crypto.load_kek(OLD, "")), crypto.kek_id(crypto.load_kek(NEW, ""))


def config(backend, tmp_path, kek: str, previous: str = "") -> dict[str, Any]:
    return make_config(backend, tmp_path, keys={"kek": kek, "kek_previous": previous})


def idp(backend, tmp_path, *args: str, kek: str, previous: str = "") -> Any:
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", *args],
        env=env_for(config(backend, tmp_path, kek, previous), ISSUER),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def token_from(url: str, rp: Any) -> tuple[str, dict[str, Any]]:
    resp = requests.post(
        f"{url}/token",
        data={"grant_type": "client_credentials", "scope": "api"},
        auth=(rp.client_id, rp.secret),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]
    claims = verify(token, requests.get(f"{url}/jwks.json", timeout=30).json(), "svc", url)
    return token, claims


def sealed_by(svc) -> dict[str, str | None]:
    with svc.db.read() as s:
        keys = {k.kid: k.kek_id for k in s.scalars(select(SigningKey))}
        factors = {f.id: f.kek_id for f in s.scalars(select(MfaFactor))}
    return {**keys, **factors}


def test_kek_rotation_without_a_stop(svc, fresh_keys, auth, backend, tmp_path):
    rp = auth.oauth_client(
        "svc", grant_types=["client_credentials"], scope="api", redirect_uri="https://x.test/cb"
    )
    user = auth.user()
    svc.factors.start_totp(user.id)  # a TOTP secret, sealed under the KEK too
    fresh_keys.ensure(svc.algs_in_use())
    active = fresh_keys.signer("ES256").kid
    before = sealed_by(svc)
    assert set(before.values()) == {OLD_ID}

    # 1-2. New KEK plus the previous one: the keys sealed under the old one keep signing.
    with idp_serve(config(backend, tmp_path, NEW, OLD), workers=2) as transition:
        token, _ = token_from(transition.url, rp)
        assert header(token)["kid"] == active

        # A KEK that sealed nothing here: nothing is re-encrypted, and it says why.
        wrong = idp(backend, tmp_path, "keys", "rewrap", kek=crypto.generate_kek())
        assert wrong.returncode == 1
        assert "nothing re-encrypted" in wrong.stderr and OLD_ID in wrong.stderr
        assert "kek_previous" in wrong.stderr and OLD not in wrong.stderr
        assert sealed_by(svc) == before

        # 3. Rewrap, while the transition processes serve.
        done = idp(backend, tmp_path, "keys", "rewrap", kek=NEW, previous=OLD)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["kek_id"] == NEW_ID
        assert result["signing_keys"]["rewrapped"] == len(fresh_keys.list())
        assert result["totp_secrets"]["rewrapped"] == 1
        assert set(sealed_by(svc).values()) == {NEW_ID}
        token_from(transition.url, rp)  # still signing

        # Again: nothing left to do.
        again = json.loads(idp(backend, tmp_path, "keys", "rewrap", kek=NEW).stdout)
        assert again["signing_keys"]["rewrapped"] == 0
        assert again["signing_keys"]["current"] == len(fresh_keys.list())

    # 4-5. Only the new KEK: signs with the same key, and verifies.
    with idp_serve(config(backend, tmp_path, NEW), workers=2) as after:
        token, claims = token_from(after.url, rp)
        assert claims["client_id"] == "svc"
        introspected = requests.post(
            f"{after.url}/introspect",
            data={"token": token},
            auth=(rp.client_id, rp.secret),
            timeout=30,
        ).json()
        assert introspected["active"] is True
    with svc.db.read() as s:
        factor = s.scalars(select(MfaFactor)).one()
    opened = crypto.Keyring(crypto.load_kek(NEW, "")).open(
        factor.secret, _aad(factor.id), factor.kek_id, "totp"
    )
    assert opened.isalnum()

    # A process with only the old KEK now refuses to start, naming the KEK it lacks.
    old_only = idp(backend, tmp_path, "serve", "--port", "1", kek=OLD)
    assert old_only.returncode == 2
    assert "cannot sign" in old_only.stderr and NEW_ID in old_only.stderr
    assert OLD not in old_only.stderr and NEW not in old_only.stderr


@pytest.mark.parametrize("entry", ["idp.wsgi", "idp.admin.wsgi"])
def test_a_wsgi_entry_point_without_the_kek_stops_as_it_loads(
    svc, fresh_keys, backend, tmp_path, entry
):
    """gunicorn or granian import these directly (the dashboard's Deployment runs
    idp.admin.wsgi:app): a process given the wrong KEK exits naming the KEK it lacks, as
    `idp serve` does, instead of failing at its first token or sealing a rotated key
    under a KEK the token servers lack."""
    fresh_keys.ensure({"ES256"})

    def load(kek: str) -> Any:
        return subprocess.run(
            [sys.executable, "-c", f"import {entry}"],
            env=env_for(config(backend, tmp_path, kek), ISSUER),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    wrong = load(NEW)
    assert wrong.returncode == 2, wrong.stderr
    assert "cannot sign" in wrong.stderr and OLD_ID in wrong.stderr
    assert OLD not in wrong.stderr and NEW not in wrong.stderr
    right = load(OLD)
    assert right.returncode == 0, right.stderr


def test_keys_list_shows_the_times_and_the_kek(svc, fresh_keys, backend, tmp_path):
    fresh_keys.ensure({"ES256"})
    listed = idp(backend, tmp_path, "keys", "list", kek=OLD)
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {k["state"] for k in lines} == {"active", "next"}
    for k in lines:
        # The fields it always had, then the new ones.
        assert list(k)[:7] == [
            "kid",
            "alg",
            "state",
            "created_at",
            "activated_at",
            "retired_at",
            "remove_after",
        ]
        assert k["kek_id"] == OLD_ID
        assert k["activates_at"] is None and k["retires_at"] is None  # no schedule here
    scheduled = subprocess.run(
        [sys.executable, "-m", "idp.cli", "keys", "list"],
        env={
            **env_for(config(backend, tmp_path, OLD), ISSUER),
            "IDP_KEYS__ROTATE_EVERY": "30d",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert scheduled.returncode == 0, scheduled.stderr
    by_state = {k["state"]: k for k in map(json.loads, scheduled.stdout.splitlines())}
    assert by_state["next"]["activates_at"] == by_state["active"]["retires_at"]
    assert by_state["next"]["activates_at"] is not None


def test_two_janitor_processes_make_one_scheduled_rotation(svc, fresh_keys, backend, tmp_path):
    """Two `idp janitor` runs (a CronJob and a late one, say) find the rotation due at
    once: one rotates, the other finds it done."""
    fresh_keys.ensure({"ES256", "RS256"})
    with svc.db.transaction() as s:  # due an hour ago, on the real clock the processes use
        for key in s.scalars(select(SigningKey)):
            key.created_at = key.created_at - dt.timedelta(hours=3)
            if key.activated_at:
                key.activated_at = key.activated_at - dt.timedelta(hours=3)
    env = {
        **env_for(config(backend, tmp_path, OLD), ISSUER),
        "IDP_KEYS__ROTATE_EVERY": "2h",
        "IDP_RETENTION__JANITOR_EVERY_SECONDS": "0",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "idp.cli", "janitor"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rotated = sorted(json.loads(out)["keys_rotated"] for out, _ in outputs)
    assert rotated == [0, 2]
    for alg in ("ES256", "RS256"):
        with svc.db.read() as s:
            states = sorted(s.scalars(select(SigningKey.state).where(SigningKey.alg == alg)))
        assert states == ["active", "next", "retired"]
    assert len(events(svc, kind="keys.rotate")) == 1
