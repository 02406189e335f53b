"""The Redis client of a ``[redis] url``: one server (``redis://``, ``rediss://``,
``unix://``), or the primary that Redis Sentinel names (``redis+sentinel://``).

A Sentinel URL lists the Sentinels and names the monitored service, then optionally the
database number::

    redis+sentinel://[[user]:password@]host:26379[,host:26379...]/service[/db][?sentinel_password=...]

The user and password authenticate to the Redis servers; ``sentinel_password`` to the
Sentinels, when they ask for one. The client asks a Sentinel for the primary when it
connects and again after a connection fails, so after a failover the next command goes
to the new primary (redis-py's ``Sentinel.master_for``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
SCHEMES = frozenset({"redis", "rediss", "unix", SENTINEL_SCHEME})
TIMEOUTS = {"socket_timeout": 2, "socket_connect_timeout": 2}


class SentinelUrlError(ValueError):
    pass


def parse_sentinel(url: str) -> dict[str, Any]:
    """The parts of a ``redis+sentinel://`` URL: sentinels [(host, port)], service, db,
    username, password, sentinel_password. Raises SentinelUrlError saying what is wrong."""
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    username, _, password = auth.partition(":")
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SentinelUrlError(f"sentinel {item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise SentinelUrlError("the path must be /service or /service/db")
    query = parse_qs(parts.query)
    unknown = set(query) - {"sentinel_password"}
    if unknown:
        raise SentinelUrlError(f"unknown parameter {sorted(unknown)[0]!r}")
    return {
        "sentinels": sentinels,
        "service": unquote(path[0]),
        "db": int(path[1]) if len(path) == 2 else 0,
        "username": unquote(username) or None,
        "password": unquote(password) or None,
        "sentinel_password": query.get("sentinel_password", [None])[0],
    }


def connect(url: str) -> redis.Redis:
    """A client for ``url`` with idp's timeouts (a Redis that does not answer degrades
    idp within two seconds, idp.state.fallback)."""
    if urlsplit(url).scheme != SENTINEL_SCHEME:
        return redis.Redis.from_url(url, **TIMEOUTS)
    found = parse_sentinel(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        found["sentinels"],
        sentinel_kwargs={**TIMEOUTS, "password": found["sentinel_password"]},
        **TIMEOUTS,
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        found["service"],
        db=found["db"],
        username=found["username"],
        password=found["password"],
    )
    return client
