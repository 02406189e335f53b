"""Fixtures of idp-verifier's tests: a stand-in issuer on loopback and a clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from verifier_support import FakeClock, Issuer, handler


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
