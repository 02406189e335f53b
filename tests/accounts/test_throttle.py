"""Login throttling that cannot be walked around (issue 10 item 1): case variants of a
username are one account, parallel guesses get no more password checks than the limit,
limits hold per (account, network), per account and per network (IPv6 by /64), delays
grow with each closing and only the account's own success resets them, and sign-ups
(which say whether a username is taken) are limited per network."""

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
from idp.state.store import SqlStateStore
from tests.support.auth import PASSWORD, AuthActions, csrf_from

LIMITS = {"login": {"max_failures_per_account_network": 3, "max_failures_per_ip": 100}}


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
    assert throttle.per_account_network == 5
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
    assert len(checks) == 5, "the limit, then the gate stays closed for 30 s"


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


def sql_throttle(svc: Any, clock: Any, **limits: int) -> Throttle:
    """A throttle on the SQL store, whose expiries follow the test clock (Redis keeps
    real time)."""
    values: dict[str, Any] = {"per_account": 100, "per_ip": 1000, "window": 900, **limits}
    return Throttle(SqlStateStore(svc.db, clock), clock=clock, **values)


def guess(svc: Any, throttle: Throttle, username: str, ip: str, password: str = "wrong!") -> Any:
    """'ok', 'wrong' or the seconds a refused attempt is told to wait."""
    try:
        found = authenticate(svc.db, throttle, username, password, ip)
    except TooManyAttempts as locked:
        return locked.retry_after
    return "ok" if found else "wrong"


def test_delays_double_with_each_closing_and_one_attempt_gets_through(
    svc: Any, auth: AuthActions, clock: Any
) -> None:
    auth.user("erin")
    throttle = sql_throttle(svc, clock, per_account_network=3, first_delay=30)
    ip = "198.51.100.20"
    assert [guess(svc, throttle, "erin", ip) for _ in range(3)] == ["wrong"] * 3
    assert guess(svc, throttle, "erin", ip, PASSWORD) == 30, "closed for 30 s"
    clock.advance(31)
    assert guess(svc, throttle, "erin", ip) == "wrong", "one attempt after the delay"
    assert guess(svc, throttle, "erin", ip) == 60, "and now closed for twice as long"
    clock.advance(31)
    assert guess(svc, throttle, "erin", ip, PASSWORD) == 60
    clock.advance(30)
    assert guess(svc, throttle, "erin", ip) == "wrong"
    assert guess(svc, throttle, "erin", ip) == 120
    clock.advance(121)
    assert guess(svc, throttle, "erin", ip, PASSWORD) == "ok"
    # Her success reset everything: the free attempts are back.
    assert [guess(svc, throttle, "erin", ip) for _ in range(2)] == ["wrong"] * 2


def test_delays_never_exceed_the_window_and_end_with_it(
    svc: Any, auth: AuthActions, clock: Any
) -> None:
    throttle = sql_throttle(svc, clock, per_account_network=1, first_delay=300, window=1000)
    ip = "198.51.100.21"
    assert guess(svc, throttle, "frank", ip) == "wrong"
    assert guess(svc, throttle, "frank", ip) == 300
    clock.advance(301)
    assert guess(svc, throttle, "frank", ip) == "wrong"
    assert guess(svc, throttle, "frank", ip) == 600
    clock.advance(601)
    assert guess(svc, throttle, "frank", ip) == "wrong"
    assert guess(svc, throttle, "frank", ip) == 1000, "not 1200: capped at the window"
    clock.advance(1001)
    assert guess(svc, throttle, "frank", ip) == "wrong", "a new window forgets the closings"
    assert guess(svc, throttle, "frank", ip) == 300


def test_one_network_guessing_slows_only_itself_until_the_account_limit(
    svc: Any, auth: AuthActions, clock: Any
) -> None:
    auth.user("gina")
    throttle = sql_throttle(svc, clock, per_account=6, per_account_network=3)
    attacker, home = "203.0.113.5", "198.51.100.30"
    assert [guess(svc, throttle, "gina", attacker) for _ in range(4)] == ["wrong"] * 3 + [30]
    assert guess(svc, throttle, "gina", home, PASSWORD) == "ok", "her network is not slowed"
    # A guesser spread over networks meets the account's own limit.
    spread = [guess(svc, throttle, "gina", f"203.0.113.{50 + i}") for i in range(8)]
    assert spread[:6] == ["wrong"] * 6 and spread[6:] == [30, 30]
    assert guess(svc, throttle, "gina", home, PASSWORD) == 30, "the account waits too"


def test_only_the_accounts_own_success_resets_its_counter(
    svc: Any, auth: AuthActions, clock: Any
) -> None:
    """Another account's successes, from the same network, reset nothing."""
    auth.user("hana")
    auth.user("mallory")
    throttle = sql_throttle(svc, clock, per_account_network=3)
    ip = "198.51.100.40"
    for _ in range(3):
        assert guess(svc, throttle, "hana", ip) == "wrong"
        assert guess(svc, throttle, "mallory", ip, PASSWORD) == "ok"
        assert guess(svc, throttle, "Mallory", ip, PASSWORD) == "ok"
    assert guess(svc, throttle, "hana", ip, PASSWORD) == 30
