"""What a login was worth: ``amr`` (RFC 8176 §2) and ``acr`` (OIDC Core §2).

Two ``acr`` values, numbered like Keycloak's levels of authentication, so that
``acr_values=2`` asks for the same step-up there and here:

- ``"1"``: a password;
- ``"2"``: a password and a second factor (TOTP, a recovery code or a passkey), or a
  user-verified passkey alone.

A higher level satisfies a request for a lower one. Values idp does not define are
ignored, as OIDC Core §3.1.2.1 makes ``acr_values`` a voluntary request.
"""

from __future__ import annotations

from collections.abc import Iterable

ACR_PWD = "1"  # noqa: S105 - an acr value
ACR_MFA = "2"
SUPPORTED = (ACR_PWD, ACR_MFA)
LEVEL = {ACR_PWD: 1, ACR_MFA: 2}

# RFC 8176 §2 method values idp uses.
PWD = "pwd"  # noqa: S105 - an amr value
OTP = "otp"
HWK = "hwk"
MFA = "mfa"
SECOND_FACTORS = frozenset({OTP, HWK})


def with_second_factor(amr: Iterable[str], method: str) -> list[str]:
    """The methods after a second factor ``method`` was proven: ``mfa`` marks that
    more than one was (RFC 8176 §2)."""
    methods = list(dict.fromkeys([*amr, method]))
    if SECOND_FACTORS & set(methods) and len(methods) > 1 and MFA not in methods:
        methods.append(MFA)
    return methods


def acr_of(amr: Iterable[str]) -> str:
    return ACR_MFA if MFA in set(amr) else ACR_PWD


def wanted_level(acr_values: str | None) -> int:
    """The level an ``acr_values`` request needs: the lowest it names that idp knows
    (any of them satisfies it), 0 when it names none."""
    levels = [LEVEL[v] for v in (acr_values or "").split() if v in LEVEL]
    return min(levels) if levels else 0


def satisfies(acr: str, level: int) -> bool:
    return LEVEL.get(acr, 0) >= level
