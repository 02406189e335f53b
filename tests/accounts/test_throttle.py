"""Login throttling that cannot be walked around (issue 10 item 1): case variants of a
username are other accounts and never reset each other, parallel guesses get no more
password checks than the limit, IPv6 clients are counted by /64, and sign-ups (which
say whether a username is taken) are limited per network."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest

from idp.accounts import passwords
from idp.accounts.services import (
    AccountError,
    Throttle,
    TooManyAttempts,
    authenticate,
    create_user,
    network_of,
)
from tests.support.auth import PASSWORD, AuthActions, csrf_from

LIMITS = {"login": {"max_failures_per_account": 3, "max_failures_per_ip": 100}}


@pytest.mark.parametrize("config_overrides", [LIMITS])
def test_case_variants_are_one_account_and_one_counter(auth: AuthActions, svc: Any) -> None:
    """Usernames are unique once normalised (NFKC + casefold): nobody can sign up as
    'Alice' beside 'alice' to reset her counter with their own logins, and guesses at
    'ALICE' count against alice."""
    auth.user("alice")
    with svc.db.transaction() as s, pytest.raises(AccountError, match="taken"):
        create_user(s, svc.clock, "Alice", "attacker's own pw")
    for variant in ("ALICE", "Alice", "aLiCe"):
        assert auth.login(variant, password="a wrong guess!").status_code == 401
    assert auth.login("alice").status_code == 429, "alice is locked"
    assert auth.login("ALICE").status_code == 429


def test_parallel_guesses_get_no_more_checks_than_the_limit(
    svc: Any, auth: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.user("carol")
    throttle = Throttle(svc.state, per_account=10, per_ip=1000, window=900)
    checks: list[int] = []
    real_verify = passwords.verify

    def counted(stored: str | None, password: str) -> bool:
        if stored is not None:
            checks.append(1)
        return real_verify(stored, password)

    monkeypatch.setattr(passwords, "verify", counted)
    start = threading.Barrier(40)

    def guess(i: int) -> None:
        start.wait()
        with contextlib.suppress(TooManyAttempts):
            authenticate(svc.db, throttle, "carol", f"guess number {i}", "198.51.100.9")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(checks) <= 10


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:ffff::9")
    assert network_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("198.51.100.7") == "198.51.100.7"
    assert network_of("unknown") == "unknown"


def test_a_network_over_its_limit_is_refused(svc: Any, auth: AuthActions) -> None:
    auth.user("dave")
    throttle = Throttle(svc.state, per_account=100, per_ip=3, window=900)
    for i in range(3):  # a spray of usernames from addresses in one /64
        assert authenticate(svc.db, throttle, f"user{i}", "wrong!", f"2001:db8::{i + 1}") is None
    with pytest.raises(TooManyAttempts):
        authenticate(svc.db, throttle, "dave", PASSWORD, "2001:db8::99")
    assert authenticate(svc.db, throttle, "dave", PASSWORD, "2001:db8:0:1::99") is not None


@pytest.mark.parametrize(
    "config_overrides", [{"login": {"max_failures_per_ip": 2}, "server": {"signup_enabled": True}}]
)
def test_signups_are_limited_per_network(client: Any, svc: Any) -> None:
    statuses = []
    for name in ("ann", "ann", "bob"):  # the second "ann" is the enumeration probe
        page = client.get("/signup")
        resp = client.post(
            "/signup",
            data={
                "username": name,
                "password": "long enough pw",
                "csrf_token": csrf_from(page.get_data(as_text=True)),
            },
        )
        statuses.append(resp.status_code)
        client.delete_cookie("idp_session")
    assert statuses == [303, 400, 429]
