"""The development servers (`idp serve --dev`, `make run`) log each request once, as
idp.access does under `idp serve`: the path without its query string (id_token_hint,
codes and state must not reach a log, issue 10 item 13), and no second line from
werkzeug (issue 14 item 2)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from idp.serve import quiet_handler
from tests.support.live import free_port


def test_each_request_is_logged_once_without_its_query_string(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    server: Any = make_server(
        "127.0.0.1", port, app, threaded=True, request_handler=quiet_handler()
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO):
            url = f"http://127.0.0.1:{port}/logout?id_token_hint=eyJSECRET.PAYLOAD.SIG&state=s1"
            assert requests.get(url, timeout=10).status_code < 500
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
    lines = [r for r in caplog.records if "/logout" in r.getMessage()]
    assert [r.name for r in lines] == ["idp.access"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "eyJSECRET" not in logged and "state=s1" not in logged
