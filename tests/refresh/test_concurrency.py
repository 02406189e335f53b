"""32 simultaneous refreshes of one token against `idp serve` with 4 worker processes:
exactly one wins, on SQLite and on PostgreSQL (SPEC §6 "Refresh-token chains")."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.conftest import make_config
from tests.support.browserless import code_flow
from tests.support.server import idp_serve

pytestmark = pytest.mark.slow


def test_32_concurrent_refreshes_of_one_token_have_exactly_one_winner(auth, backend, tmp_path):
    auth.user()
    rp = auth.oauth_client("app", scope="openid offline_access", redirect_uri="http://127.0.0.1/cb")
    log = tmp_path / "serve.log"
    with idp_serve(make_config(backend, tmp_path), workers=4, log=log) as served:
        url = served.url
        tokens = code_flow(url, "app", rp.secret, "http://127.0.0.1/cb")
        barrier = threading.Barrier(32)
        answers: list[requests.Response] = []
        lock = threading.Lock()

        def refresh() -> None:
            barrier.wait()
            resp = requests.post(
                f"{url}/token",
                auth=("app", rp.secret),
                timeout=60,
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            )
            with lock:
                answers.append(resp)

        threads = [threading.Thread(target=refresh) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [400] * 31, (codes, log.read_text())
        assert {r.json()["error"] for r in answers if r.status_code == 400} == {"invalid_grant"}
        # The others were reuse: the whole family (winner's child included) is revoked.
        [winner] = [r.json() for r in answers if r.status_code == 200]
        again = requests.post(
            f"{url}/token",
            auth=("app", rp.secret),
            timeout=10,
            data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
        )
        assert again.status_code == 400
