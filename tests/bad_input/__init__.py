"""Bad input anywhere gets a clear error, never a 500, never a trace, never a stored change.

SPEC §5-6 and SECURITY-CHECKLIST: every endpoint is fed malformed, oversized and hostile
input. Protocol endpoints (/token, /userinfo, /jwks.json, /.well-known/*, /healthz) answer
RFC 6749 §5.2 JSON (``error``, ``error_description``); browser pages answer a clean HTML
page that never echoes markup unescaped. Row counts of every table (except
``state_entries``, which counts login throttling) are the same before and after.
"""
