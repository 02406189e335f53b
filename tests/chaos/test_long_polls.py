"""Chaos trial: a hundred long polls of ``/revocations`` held open against ``idp serve``
(one worker, two request threads) leave ``/token`` answering, and every poll still gets
the revocation that arrives (issue 9 item 4, SPEC §6 "Revocation feed").

Latencies are printed for the record, never asserted: the outcome is asserted (every
token request answered 200 while the polls are held; every poll answered with the entry).
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests

from tests.conftest import make_config
from tests.support.auth import AuthActions, RegisteredClient
from tests.support.server import idp_serve

pytestmark = pytest.mark.slow

POLLS = 100
READERS = 10  # clients holding the polls: 10 each, under the per-client cap of 16
BATCH = 10


def api_client(auth: AuthActions, client_id: str) -> RegisteredClient:
    return auth.oauth_client(
        client_id,
        grant_types=["client_credentials"],
        scope="orders",
        redirect_uri="https://api.example.test/x",
    )


def basic(client: RegisteredClient) -> tuple[str, str]:
    assert client.secret
    return client.client_id, client.secret


def waiting(url: str) -> int:
    text = requests.get(url + "/metrics", timeout=30).text
    found = re.search(r"^idp_feed_polls_waiting (\d+)$", text, re.M)
    return int(found.group(1)) if found else -1


def token_latencies(url: str, client: RegisteredClient, count: int) -> list[float]:
    """Seconds of ``count`` client_credentials requests, one after another; each must
    answer 200."""
    took = []
    for _ in range(count):
        start = time.monotonic()
        resp = requests.post(
            url + "/token",
            data={"grant_type": "client_credentials", "scope": "orders"},
            auth=basic(client),
            timeout=10,
        )
        took.append(time.monotonic() - start)
        assert resp.status_code == 200, resp.text
    return took


def describe(answers: list[Any]) -> str:
    """What early answers were: status and body start, or the exception."""
    return (
        "; ".join(
            f"{a.status_code} {a.text[:120]!r}" if isinstance(a, requests.Response) else repr(a)
            for a in list(answers)[:5]
        )
        or "none yet"
    )


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms over {len(ordered)}"
    )


def test_a_hundred_open_polls_leave_the_token_endpoint_answering(
    backend: dict[str, Any], tmp_path: Any, auth: AuthActions, app: Any
) -> None:
    caller = api_client(auth, "caller")
    readers = [api_client(auth, f"reader-{i}") for i in range(READERS)]
    with idp_serve(make_config(backend, tmp_path), workers=1, threads=2) as served:
        quiet = token_latencies(served.url, caller, 20)
        cursor = requests.get(
            served.url + "/revocations", auth=basic(readers[0]), timeout=10
        ).json()["cursor"]
        answers: list[requests.Response | BaseException] = []

        def poll(reader: RegisteredClient) -> None:
            try:
                answers.append(
                    requests.get(
                        served.url + "/revocations",
                        params={"after": cursor, "wait": 30},
                        auth=basic(reader),
                        timeout=60,
                    )
                )
            except BaseException as exc:  # noqa: BLE001 - counted below
                answers.append(exc)

        threads = [
            threading.Thread(target=poll, args=(readers[i % READERS],)) for i in range(POLLS)
        ]
        # Opened ten at a time, as resource servers come and go: what is measured is a
        # hundred polls held, not a hundred connections arriving in the same instant
        # (granian grows its thread pool as requests need threads).
        for start in range(0, POLLS, BATCH):
            for t in threads[start : start + BATCH]:
                t.start()
            deadline = time.monotonic() + 60
            while waiting(served.url) < start + BATCH:
                # Polls that are not held have answered: say how (seen once in a
                # fresh-clone run under load, with 0 held after 60 s).
                assert time.monotonic() < deadline, (
                    f"only {waiting(served.url)} polls waiting; answered: {describe(answers)}"
                )
                time.sleep(0.1)
        held = token_latencies(served.url, caller, 50)
        assert waiting(served.url) == POLLS  # still held while /token answered

        svc = app.extensions["idp"]
        svc.revocations.revoke("jti", "chaos-jti", svc.clock.now() + dt.timedelta(hours=1))
        for t in threads:
            t.join(60)
        statuses = Counter(
            a.status_code if isinstance(a, requests.Response) else type(a).__name__ for a in answers
        )
        print(
            f"\n/token alone: {ms(quiet)}; with {POLLS} polls open: {ms(held)}; "
            f"poll answers {dict(statuses)}"
        )
        assert statuses == {200: POLLS}
        for answer in answers:
            assert isinstance(answer, requests.Response)
            assert [e["value"] for e in answer.json()["revocations"]] == ["chaos-jti"]


def test_polls_beyond_the_caps_are_refused_with_retry_after(
    backend: dict[str, Any], tmp_path: Any, auth: AuthActions, app: Any
) -> None:
    first, second = api_client(auth, "first"), api_client(auth, "second")
    config = make_config(backend, tmp_path, server={"feed_waits": 3, "feed_waits_per_client": 2})
    with idp_serve(config, workers=1, threads=2) as served:
        cursor = requests.get(served.url + "/revocations", auth=basic(first), timeout=30).json()[
            "cursor"
        ]
        answers: list[requests.Response] = []

        def poll(reader: RegisteredClient) -> None:
            answers.append(
                requests.get(
                    served.url + "/revocations",
                    params={"wait": 30, "after": cursor},
                    auth=basic(reader),
                    timeout=60,
                )
            )

        holders = [threading.Thread(target=poll, args=(first,)) for _ in range(2)]
        for t in holders:
            t.start()
        deadline = time.monotonic() + 60
        while waiting(served.url) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        greedy = requests.get(
            served.url + "/revocations",
            params={"wait": 3, "after": 10**9},
            auth=basic(first),
            timeout=30,
        )
        assert greedy.status_code == 429
        assert greedy.json()["error"] == "slow_down" and "client" in greedy.text
        assert int(greedy.headers["Retry-After"]) > 0
        third = threading.Thread(target=poll, args=(second,))
        third.start()
        while waiting(served.url) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        full = requests.get(
            served.url + "/revocations",
            params={"wait": 3, "after": 10**9},
            auth=basic(second),
            timeout=30,
        )
        assert full.status_code == 429 and "server" in full.text
        # A poll that does not wait needs no slot.
        now = requests.get(served.url + "/revocations", auth=basic(second), timeout=10)
        assert now.status_code == 200
        svc = app.extensions["idp"]  # wake the held polls
        svc.revocations.revoke("jti", "caps-jti", svc.clock.now() + dt.timedelta(hours=1))
        for t in [*holders, third]:
            t.join(60)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert waiting(served.url) == 0
