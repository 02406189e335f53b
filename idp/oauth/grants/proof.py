"""What a token request's DPoP proof (RFC 9449 §5) means for the grants."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error

from idp.oauth.dpop import Proof


class InvalidDPoPProof(OAuth2Error):
    error = "invalid_dpop_proof"


def proof_for(request: Any) -> Proof | None:
    """The request's checked proof (idp.oauth.handlers.with_proof put it there); a client
    registered with ``dpop_bound_access_tokens`` must send one (§5.2.1)."""
    proof: Proof | None = getattr(request.protocol, "dpop", None)
    if proof is None and getattr(request.client, "dpop_bound_access_tokens", False):
        raise InvalidDPoPProof("This client must send a DPoP proof with every token request.")
    return proof


def token_type(proof: Proof | None) -> str:
    """RFC 9449 §5: ``DPoP`` for a bound access token."""
    return "DPoP" if proof is not None else "Bearer"
