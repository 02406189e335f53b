"""A TCP proxy on 127.0.0.1 in front of PostgreSQL or Redis, for outage trials.

The shared database and Redis servers of the machine are never stopped by tests; a test
points idp at a proxy instead and cuts it:

- ``pass``: connections are forwarded (the normal state);
- ``refuse``: open connections are dropped, new ones are closed at once (a server that
  stopped or restarted);
- ``hang``: open connections are dropped, new ones are accepted and never answered (a
  server or network that swallows packets).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

MODES = ("pass", "refuse", "hang")


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self._thread.start()

    def set(self, mode: str) -> None:
        """Switches mode; leaving ``pass`` drops every open connection."""
        assert mode in MODES
        with self._lock:
            self.mode = mode
        if mode != "pass":
            self._drop_all()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _track(self, accepted_in: str, *conns: socket.socket) -> bool:
        """Tracks ``conns`` as open; False (and closes them) when the mode changed since
        they were accepted: a connection accepted just before ``set("refuse")`` must not
        outlive the outage (it let a worker see the database come back mid-outage)."""
        with self._lock:
            if self.mode == accepted_in:
                self._open.update(conns)
                return True
        for conn in conns:
            conn.close()
        return False

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            mode = self.mode
            if mode == "refuse":
                client.close()
            elif mode == "hang":
                self._track(mode, client)  # held open, never answered
            else:
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                if not self._track(mode, client, upstream):
                    continue
                # One thread per direction, blocking: select() cannot watch descriptors
                # above 1024, which a long test run reaches.
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(
                        target=self._copy, args=(src, dst, mode), daemon=True, name="proxy-copy"
                    ).start()

    def _copy(self, src: socket.socket, dst: socket.socket, mode: str) -> None:
        try:
            # Nothing is relayed once the mode changed: set("refuse") closes the open
            # connections one by one, and a worker must not get an answer (a ping) on
            # one not yet closed, or it sees the database back mid-outage.
            while (data := src.recv(65536)) and self.mode == mode:
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)


@contextmanager
def proxy_to(port: int) -> Iterator[Proxy]:
    proxy = Proxy(port)
    try:
        yield proxy
    finally:
        proxy.close()


def needs_a_server(backend: dict[str, Any]) -> None:
    if backend["name"] != "postgresql":
        pytest.skip("SQLite is a file: there is no server to lose")


def database_port(backend: dict[str, Any]) -> int:
    return make_url(backend["database"]["url"]).port or 5432


def database_through(backend: dict[str, Any], proxy: Proxy) -> dict[str, Any]:
    """The ``[database]`` section of a config that reaches PostgreSQL through ``proxy``
    and gives up connecting after a second."""
    url = make_url(backend["database"]["url"]).set(port=proxy.port)
    return {"url": url.render_as_string(hide_password=False), "connect_timeout": 1}


@contextmanager
def proxied_app(backend: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Flask, Proxy, Proxy]]:
    """An app that reaches PostgreSQL and Redis through proxies the test can cut (skips
    on SQLite, a file with no server to lose)."""
    from idp import create_app
    from tests.conftest import make_config

    needs_a_server(backend)
    redis_url = make_url(backend["redis"]["url"])
    with proxy_to(database_port(backend)) as db, proxy_to(redis_url.port or 6379) as redis:
        config = make_config(
            backend,
            tmp_path,
            database=database_through(backend, db),
            redis={"url": str(redis_url.set(port=redis.port))},
        )
        app = create_app(config)
        try:
            yield app, db, redis
        finally:
            app.extensions["idp"].close()
