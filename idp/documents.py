"""The JWKS and the metadata documents, prepared as bytes and served before Flask.

Every client library fetches the metadata and every resource server the JWKS, and both
change only when keys rotate (the JWKS) or the deployment changes (the metadata). So
they are prepared once, with a strong ETag; idp.front answers a plain ``GET``/``HEAD``
of them without building a Flask request, and Flask serves the same bytes otherwise.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from idp.config import Config
from idp.keys.services import KeyService

JWKS_PATH = "/jwks.json"
METADATA_PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
METADATA_MAX_AGE = 300


@dataclass(frozen=True)
class Document:
    body: bytes
    etag: str
    content_type: str
    cache_control: str

    def matches(self, if_none_match: str) -> bool:
        return self.etag in (t.strip() for t in if_none_match.split(","))

    def headers(self, https: bool) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", self.content_type),
            ("ETag", self.etag),
            ("Cache-Control", self.cache_control),
            ("Access-Control-Allow-Origin", "*"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
        if https:
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        return headers


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class Documents:
    def __init__(self, config: Config, keys: KeyService, metadata: dict[str, Any]) -> None:
        self.keys = keys
        # Computed, not copied from [keys] jwks_max_age: on a schedule no cache may keep
        # the JWKS longer than a key is published before it signs (idp.config
        # Config.jwks_max_age). A manual `idp keys rotate` signs at once with a key
        # published since the previous rotation, which may be more recent than that.
        self.jwks_cache_control = f"public, max-age={config.jwks_max_age}"
        body = json.dumps(metadata, separators=(",", ":")).encode()
        self.metadata = Document(
            body, etag_of(body), "application/json", f"public, max-age={METADATA_MAX_AGE}"
        )

    def jwks(self) -> Document:
        published = self.keys.published()
        return Document(
            published.body, published.etag, "application/jwk-set+json", self.jwks_cache_control
        )

    def at(self, path: str) -> Document | None:
        if path == JWKS_PATH:
            return self.jwks()
        if path in METADATA_PATHS:
            return self.metadata
        return None
