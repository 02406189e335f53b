"""A real idp HTTP server on 127.0.0.1 (a thread), for clients that speak HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from idp import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    app: Flask
    url: str

    @property
    def svc(self) -> Any:
        return self.app.extensions["idp"]


@contextmanager
def live_server(config: dict[str, Any], clock: Any = None) -> Iterator[LiveServer]:
    """Serves create_app(config) with its issuer set to the URL it listens on."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {**config, "server": {**config.get("server", {}), "issuer": url}}
    app = create_app(config, clock=clock)
    try:
        with serve(app, port):
            yield LiveServer(app, url)
    finally:
        app.extensions["idp"].db.dispose()


@contextmanager
def serve(app: Any, port: int) -> Iterator[None]:
    """Serves a WSGI app on 127.0.0.1:``port`` in a thread until the block ends."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)
