"""idp-verifier: offline verification of idp access tokens for resource servers.

    from idp_verifier import InvalidToken, Verifier

    verifier = Verifier("https://login.example.com", audience="shop",
                        client_id="shop-api", client_secret="...")
    verifier.start()                       # follows idp's revocation feed in a thread
    claims = verifier.verify_request(      # raises InvalidToken
        request.headers["Authorization"], request.headers.get("DPoP"),
        request.method, request.url)

``Verifier(..., signals=True)`` follows idp's Shared Signals (an SSF 1.0 poll stream)
instead of its own feed. Needs joserfc and the standard library only: no Flask, no
SQLAlchemy, no idp.
"""

from idp_verifier.verifier import Clock, InvalidToken, SystemClock, Verifier

__all__ = ["Clock", "InvalidToken", "SystemClock", "Verifier"]
