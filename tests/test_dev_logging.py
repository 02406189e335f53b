"""The development servers (`idp serve --dev`, `make run`) log request paths without
their query strings: id_token_hint, codes and state must not reach a log (issue 10
item 13)."""

from __future__ import annotations

import logging
import threading

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from idp.serve import quiet_handler
from tests.support.live import free_port


def test_query_strings_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = Response("ok")
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=quiet_handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{port}/logout?id_token_hint=eyJSECRET.PAYLOAD.SIG&state=s1"
            assert requests.get(url, timeout=10).status_code == 200
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "/logout" in logged
    assert "eyJSECRET" not in logged and "state=s1" not in logged
