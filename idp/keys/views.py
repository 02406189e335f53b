"""The JWKS (RFC 7517 §5): cacheable, with a strong ETag answering 304."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from idp.ext import services

bp = Blueprint("jwks", __name__)


@bp.route("/jwks.json")
def jwks() -> Response:
    svc = services()
    body, etag = svc.keys.jwks()
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={svc.config.keys.jwks_max_age}",
        "Access-Control-Allow-Origin": "*",
    }
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status=304, headers=headers)
    return Response(body, mimetype="application/jwk-set+json", headers=headers)
