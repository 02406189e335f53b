"""Second factors: TOTP (RFC 6238) and recovery codes; the login's second step; what
a session's authentication was worth (``amr``, RFC 8176, and ``acr``)."""
