"""The JWKS (RFC 7517 §5): cacheable, with a strong ETag answering 304.

Usually answered by idp.documents.FastPath before Flask; this route serves the same
bytes when it steps aside (a query string, say)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from idp.ext import services

bp = Blueprint("jwks", __name__)


@bp.route("/jwks.json")
def jwks() -> Response:
    doc = services().documents.jwks()
    if doc.matches(request.headers.get("If-None-Match", "")):
        return Response(status=304, headers=doc.headers(False)[1:])
    return Response(doc.body, headers=doc.headers(False))
