"""Time-based one-time passwords (RFC 6238) as authenticator apps expect them: SHA-1,
6 digits, 30-second steps, the ``otpauth://`` URI of Google Authenticator's Key URI
format, and its QR code drawn as SVG here (nothing is sent anywhere to draw it)."""

from __future__ import annotations

import datetime as dt
import hmac
import io
import re

import pyotp
import segno

STEP = 30
DIGITS = 6
# RFC 6238 §5.2: one step either side absorbs clock drift and a slow typist.
DRIFT = 1
CODE_RE = re.compile(r"[0-9]{6}")


def new_secret() -> str:
    """160 random bits, base32 (RFC 4226 §4 recommends 160)."""
    return pyotp.random_base32(32)


def uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(text: str) -> str:
    """The QR code of ``text`` as an inline ``<svg>`` element (no XML declaration)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(
        out, kind="svg", xmldecl=False, svgns=True, scale=4, border=2, svgclass="qr"
    )
    return out.getvalue().decode()


def step_of(now: dt.datetime) -> int:
    return int(now.timestamp()) // STEP


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step whose code ``code`` is (now, one before or one after), or None.
    The caller must still refuse a step already used (replay)."""
    if not CODE_RE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = step_of(now)
    found = None
    for step in range(current - DRIFT, current + DRIFT + 1):
        # Every candidate is compared, in constant time, whatever matched before.
        if hmac.compare_digest(totp.at(step * STEP), code):
            found = step
    return found
