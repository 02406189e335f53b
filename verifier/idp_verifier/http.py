"""The few JSON requests the verifier makes to its issuer, with the standard library
(no HTTP client to install). Errors are urllib's: HTTPError carries the status."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def basic_auth(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1 client authentication (the id and secret form-encoded first)."""
    pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _send(req: urllib.request.Request, timeout: float) -> Any:
    # Only the issuer's own URLs (configured, or from its metadata) are fetched.
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
    except urllib.error.HTTPError as err:
        err.close()  # its status and headers stay readable; the socket goes
        raise
    return json.loads(raw) if raw else None


def get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Any:
    return _send(urllib.request.Request(url, headers=headers or {}), timeout)  # noqa: S310


def post_json(url: str, body: Any, headers: dict[str, str], timeout: float = 10) -> Any:
    req = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/json"},
    )
    return _send(req, timeout)


def post_form(url: str, form: dict[str, str], headers: dict[str, str], timeout: float = 10) -> Any:
    req = urllib.request.Request(  # noqa: S310
        url,
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    return _send(req, timeout)
