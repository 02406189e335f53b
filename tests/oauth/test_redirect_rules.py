"""Redirect URI rules (RFC 9700 §4.1.3, RFC 8252 §7.3) and the audit's spec points
(issue 10): no markup characters or user information in registered URIs, and no
password-only user information slipping through loopback matching."""

from __future__ import annotations

import pytest

from idp.clients.redirects import matches, problem


@pytest.mark.parametrize(
    "uri",
    [
        'https://rp.example.test/cb"><script>alert(1)</script>',
        "https://rp.example.test/cb<x>",
        "https://rp.example.test/{cb}",
        "https://rp.example.test/c`b",
        "https://rp.example.test/c\\b",
        "https://user@rp.example.test/cb",
        "https://:pw@rp.example.test/cb",
        "http://user:pw@127.0.0.1/cb",
    ],
)
def test_markup_and_user_information_are_refused(uri: str) -> None:
    assert problem(uri) is not None


def test_an_at_sign_in_the_query_is_fine() -> None:
    assert problem("https://rp.example.test/cb?mail=a@b.example") is None


def test_loopback_matching_refuses_any_user_information() -> None:
    registered = "http://127.0.0.1/cb"
    assert matches(registered, "http://127.0.0.1:4000/cb", port_may_vary=True)
    for presented in (
        "http://:pw@127.0.0.1:4000/cb",
        "http://u@127.0.0.1:4000/cb",
        "http://u:pw@127.0.0.1:4000/cb",
    ):
        assert not matches(registered, presented, port_may_vary=True), presented
