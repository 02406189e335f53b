"""Kept for resource servers that import ``idp.verifier``: the verifier is now its own
distribution, ``idp-verifier`` (package ``idp_verifier``, directory ``verifier/``), which
a resource server installs without Flask, SQLAlchemy or the rest of idp."""

from idp_verifier import Clock, InvalidToken, SystemClock, Verifier

__all__ = ["Clock", "InvalidToken", "SystemClock", "Verifier"]
