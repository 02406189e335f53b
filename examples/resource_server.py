"""A resource server (an API) that accepts idp access tokens, as a real service would.

It verifies JWTs offline with idp's cached JWKS (idp_verifier, the distribution in
verifier/, which needs neither Flask nor SQLAlchemy) and follows idp's revocation feed,
so a session an operator kills stops working here within about a second
(``--signals``: through idp's Shared Signals instead, as any SSF receiver would). A
DPoP-bound token (RFC 9449) works only with a proof of its key. Run it beside
`make run`:

    idp clients create orders-api --grant client_credentials --scope orders
    python -m examples.resource_server --audience demo-app \
        --client-id orders-api --client-secret SECRET
    curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:5002/api/me
    curl -H "Authorization: DPoP $ACCESS_TOKEN" -H "DPoP: $PROOF" http://127.0.0.1:5002/api/me
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask, jsonify, request

from idp_verifier import InvalidToken, Verifier


def create_api(verifier: Verifier) -> Flask:
    app = Flask("resource_server")

    @app.route("/api/me")
    def me() -> Any:
        if "Authorization" not in request.headers:
            return (
                jsonify(error="invalid_request"),
                401,
                [
                    ("WWW-Authenticate", "Bearer"),
                    ("WWW-Authenticate", 'DPoP algs="ES256 PS256 EdDSA"'),
                ],
            )
        try:
            claims = verifier.verify_request(
                request.headers["Authorization"],
                request.headers.get("DPoP"),
                request.method,
                request.base_url,
            )
        except InvalidToken as exc:
            return (
                jsonify(error=exc.error, error_description=str(exc)),
                401,
                {"WWW-Authenticate": exc.challenge},
            )
        return jsonify(sub=claims["sub"], scope=claims.get("scope"), sid=claims.get("sid"))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issuer", default="http://127.0.0.1:5000")
    parser.add_argument("--audience", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument(
        "--signals",
        action="store_true",
        help="follow idp's Shared Signals (a poll stream; the client needs scope ssf) "
        "instead of its revocation feed",
    )
    args = parser.parse_args()
    verifier = Verifier(
        args.issuer,
        audience=args.audience,
        client_id=args.client_id,
        client_secret=args.client_secret,
        signals=args.signals,
    )
    verifier.start()
    create_api(verifier).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
