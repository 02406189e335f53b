"""A real idp HTTP server on 127.0.0.1 (a thread), for clients that speak HTTP."""

from __future__ import annotations

import random
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from idp import create_app


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range (32768 and up).

    A port from bind(("127.0.0.1", 0)) comes from that range, where any outgoing
    connection or another process's port-0 socket may take it before the test's server
    binds it; `idp serve` then fails to bind while another server answers its URL. A
    fresh-clone run once saw a chaos trial talk to the wrong server, plausibly this.
    The number does not change what a test does, so it is not seeded."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    rng = random.SystemRandom()
    for _ in range(100 if ephemeral > 12000 else 0):
        port = rng.randrange(10000, ephemeral)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (two picks of free_port may be the same)."""
    found: list[int] = []
    while len(found) < count:
        if (port := free_port()) not in found:
            found.append(port)
    return found


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
        app.extensions["idp"].close()


@contextmanager
def serve(app: Any, port: int) -> Iterator[None]:
    """Serves a WSGI app on 127.0.0.1:``port`` in a thread until the block ends."""
    with running(make_server("127.0.0.1", port, app, threaded=True)):
        yield


@contextmanager
def running(server: socketserver.BaseServer) -> Iterator[None]:
    """Runs ``server`` (an http.server or WSGI server) in a thread until the block ends,
    then stops it and closes its socket."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
