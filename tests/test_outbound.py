"""Outbound requests (SPEC §6, issue 10 item 7): no back-channel logout URI may point at
loopback (unless allowed), private, link-local or metadata addresses, at registration or
at send time, and what is stored about a failure is generic (no port scanning)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from sqlalchemy import select

from idp.clients.services import ClientError, create_client
from idp.outbound import REFUSED, Outbound
from idp.sessions.models import BackchannelDelivery, BrowserSession
from tests.support.auth import AuthActions
from tests.support.live import free_port

STRICT = Outbound(allow_loopback=False)
DEV = Outbound(allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "https://169.254.169.254/",
        "https://10.0.0.7/bcl",
        "https://172.16.1.1/bcl",
        "https://192.168.1.1/bcl",
        "https://100.64.0.1/bcl",  # carrier-grade NAT
        "https://[fd00::1]/bcl",  # unique local
        "https://[fe80::1]/bcl",  # link-local
        "https://[::ffff:10.0.0.1]/bcl",  # IPv4-mapped private
        "https://0.0.0.0/bcl",
        "https://224.0.0.1/bcl",
    ],
)
def test_non_public_addresses_are_refused_even_in_development(url: str) -> None:
    assert STRICT.problem(url, resolve=False) == REFUSED
    assert DEV.problem(url, resolve=False) == REFUSED


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/bcl",
        "http://[::1]/bcl",
        "http://localhost/bcl",
        "https://[::ffff:127.0.0.1]/x",
    ],
)
def test_loopback_only_when_allowed(url: str) -> None:
    assert STRICT.problem(url, resolve=False) == REFUSED
    assert DEV.problem(url, resolve=False) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://rp.example.com/bcl", "https"),
        ("ftp://rp.example.com/bcl", "https"),
        ("https://user:pw@rp.example.com/bcl", "user information"),
    ],
)
def test_other_bad_urls(url: str, why: str) -> None:
    assert why in (STRICT.problem(url, resolve=False) or "")


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"rp.example.test": ["203.0.113.9", "10.1.2.3"], "ok.example.test": ["93.184.216.34"]}

    def resolve(host: str, *_: Any, **__: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 443)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert STRICT.problem("https://rp.example.test/bcl", resolve=False) is None  # later
    assert STRICT.problem("https://rp.example.test/bcl", resolve=True) == REFUSED
    assert STRICT.problem("https://ok.example.test/bcl", resolve=True) is None
    sent = STRICT.post_form("https://rp.example.test/bcl", {"logout_token": "x"})
    assert sent.status is None and sent.error == REFUSED


def test_registration_refuses_what_sending_would(svc: Any) -> None:
    with svc.db.transaction() as s:
        for uri in ("http://169.254.169.254/latest", "http://127.0.0.1:9/bcl"):
            with pytest.raises(ClientError, match="not a public one"):
                create_client(
                    s,
                    svc.clock,
                    "rp-x",
                    redirect_uris=["https://rp.example.test/cb"],
                    backchannel_logout_uri=uri,
                    allow_loopback=False,
                )
        create_client(
            s,
            svc.clock,
            "rp-dev",
            redirect_uris=["https://rp.example.test/cb"],
            backchannel_logout_uri="http://127.0.0.1:9/bcl",
            allow_loopback=True,
        )


@pytest.mark.usefixtures("no_background_worker")
def test_a_failed_delivery_stores_a_generic_error(auth: AuthActions, svc: Any) -> None:
    """The dashboard shows what went wrong without telling a closed port from a filtered
    one or echoing the peer's error text."""
    port = free_port()  # nothing listens there
    auth.user()
    rp = auth.oauth_client(backchannel_logout_uri=f"http://127.0.0.1:{port}/bcl")
    auth.login()
    auth.tokens(rp)
    with svc.db.read() as s:
        sid = s.scalars(select(BrowserSession.id)).one()
    svc.killer.kill_session(sid, actor="test", action="session.kill", reason="r")
    svc.notifier.deliver_due()
    with svc.db.read() as s:
        [d] = s.scalars(select(BackchannelDelivery)).all()
    assert d.last_error == "could not connect" and d.last_status_code is None


def test_plain_http_to_a_public_address_is_refused() -> None:
    assert "https" in (STRICT.problem("http://93.184.216.34/bcl", resolve=False) or "")
    assert STRICT.problem("https://93.184.216.34/bcl", resolve=False) is None
