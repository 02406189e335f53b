"""The OpenAPI 3.1 description of the admin REST API (served at /admin/api/openapi.json).

It is also the API's input contract: ``admin.api.common`` checks path parameters, query
strings and request bodies against the operation described here, so the document cannot
drift from what the API accepts. Patterns are anchored and kept to the subset of regular
expressions that ECMA-262 and Python read alike.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from idp.clients.models import ADMIN_SCOPE
from idp.clients.services import GRANTS, RESERVED_CLAIMS
from idp.config import SUPPORTED_ALGS
from idp.ssf.streams import STATUSES as STREAM_STATUSES

# Text an operator types (reasons): no C0 control characters but tab and newlines, no DEL.
# NUL in particular would reach PostgreSQL, which refuses it in text.
TEXT_CHAR = r"[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]"
LINE_CHAR = r"[^\u0000-\u001f\u007f]"  # one line: no control characters at all
# What the server strips from text before it decides whether the text is blank: every
# character Python's str.isspace() knows, and the control characters. Spelled out because
# `\s` means different sets in ECMA-262 and in Python (tests pin it to str.isspace()).
BLANK = r"\u0000-\u0020\u007f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT = f"^{TEXT_CHAR}*$"
LINE = f"^{LINE_CHAR}*$"
# Not blank: at least one character that survives stripping.
SOME_TEXT = f"^{TEXT_CHAR}*[^{BLANK}]{TEXT_CHAR}*$"
SOME_LINE = f"^{LINE_CHAR}*[^{BLANK}]{LINE_CHAR}*$"
URI = r"^[!-~]+$"  # RFC 3986: printable ASCII, no spaces
ID = r"^[A-Za-z0-9_-]{1,64}$"
CLIENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
CLAIM_NAME_CHARS = r"[A-Za-z0-9_:/.-]{1,100}"
CLAIM_NAME = f"^{CLAIM_NAME_CHARS}$"
SCOPE = r"^[ !#-\[\]-~]*$"  # RFC 6749 §3.3 scope-token characters and spaces
CURSOR = r"^[A-Za-z0-9_=-]{1,200}$"  # base64url, opaque
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,149}$"  # idp.accounts.services.USERNAME_RE
# idp.accounts.services.EMAIL_RE, without anything Python's \s or str.strip() would see.
EMAIL_PART = f"[^@<>\"'{BLANK}]"
EMAIL = f"^{EMAIL_PART}{{1,64}}@{EMAIL_PART}{{1,255}}$"

DATETIME = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."}
MAYBE_DATETIME = {"type": ["string", "null"], "format": "date-time"}
STRING = {"type": "string"}
MAYBE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
DETAILS = {"type": "object", "description": "Free-form details of the event."}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


def _object(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def _uris(what: str) -> dict[str, Any]:
    return {
        "type": "array",
        "maxItems": 50,
        "description": what,
        "items": {"type": "string", "maxLength": 2000, "pattern": URI},
    }


# Registered JWT and OIDC claim names, which a client's private claims cannot override.
RESERVED = sorted(RESERVED_CLAIMS)
CLAIMS_OBJECT: dict[str, Any] = {
    "type": "object",
    "maxProperties": 50,
    "propertyNames": {"pattern": CLAIM_NAME, "not": {"enum": RESERVED}},
    "additionalProperties": {"type": "string", "maxLength": 1000, "pattern": LINE},
}
CLAIMS: dict[str, Any] = {
    "description": "Private claims put in this client's tokens: an object of NAME: VALUE, or "
    'a list of "NAME=VALUE" strings as on the command line. A VALUE of user:ATTR copies a '
    "user attribute. Registered JWT and OIDC claim names are refused.",
    "anyOf": [
        CLAIMS_OBJECT,
        {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "string",
                "maxLength": 1101,
                "pattern": f"^{CLAIM_NAME_CHARS}={LINE_CHAR}{{0,1000}}$",
                "not": {"pattern": f"^({'|'.join(map(re.escape, RESERVED))})={LINE_CHAR}*$"},
            },
        },
    ],
}
BACKCHANNEL_URI = {"type": "string", "maxLength": 2000, "pattern": URI}
CLIENT_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": SOME_LINE}
JWKS = {
    "type": "object",
    "required": ["keys"],
    "description": "The client's public keys (RFC 7517), for private_key_jwt and signed "
    "request objects.",
    "properties": {
        "keys": {
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "items": {
                "type": "object",
                "required": ["kty"],
                "properties": {"kty": {"type": "string", "enum": ["RSA", "EC", "OKP"]}},
            },
        }
    },
}
JWKS_URI = {
    "type": "string",
    "maxLength": 2000,
    "pattern": URI,
    "description": "Where the client publishes its public keys (fetched when needed).",
}
REQUIRE_MFA = {
    "type": "boolean",
    "default": False,
    "description": "Logins for this client need a second factor (acr 2).",
}
REQUIRE_PAR = {
    "type": "boolean",
    "default": False,
    "description": "Authorization requests only through PAR (RFC 9126 section 6).",
}
DPOP_BOUND = {
    "type": "boolean",
    "default": False,
    "description": "Every token request must carry a DPoP proof (RFC 9449 section 5.2.1).",
}

USER_EMAIL = {"type": "string", "maxLength": 320, "pattern": EMAIL}
USER_NAME = {
    "type": "string",
    "maxLength": 200,
    "pattern": LINE,
    "description": "The display name (the `name` claim); blank means none.",
}
USER_ADMIN = {"type": "boolean", "description": "May use the dashboard."}

SCHEMAS: dict[str, Any] = {
    "Error": {
        **_object(
            error={"type": "string", "description": "An RFC 6749 §5.2 style error code."},
            error_description=STRING,
        ),
        "description": "Every error, whatever the status.",
    },
    # --- requests -----------------------------------------------------------------------
    "Reason": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "reason": {"type": "string", "maxLength": 500, "pattern": TEXT},
        },
        "description": "Why the operator does this; kept in the audit trail. Absent or "
        "blank: the operation's default reason.",
    },
    "RequiredReason": {
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": SOME_TEXT},
        },
        "description": "Why the operator does this (not blank); kept in the audit trail.",
    },
    "StreamStatusChange": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status"],
        "properties": {
            "status": {
                "type": "string",
                "enum": list(STREAM_STATUSES),
                "description": "paused: events are kept until enabled; disabled: owed "
                "events are dropped. The receiver gets a stream-updated event.",
            },
            # One line: the receiver reads it in the stream-updated event.
            "reason": {"type": "string", "maxLength": 500, "pattern": LINE},
        },
        "description": "The stream's new status and why (kept in the audit trail and sent "
        'to the receiver; absent or blank: "set by operator").',
    },
    "ClientCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["client_id"],
        "description": "The options of `idp clients create`.",
        "properties": {
            "client_id": {"type": "string", "pattern": CLIENT_ID},
            "redirect_uris": _uris("Exact redirect URIs; required for authorization_code."),
            "public": {
                "type": "boolean",
                "default": False,
                "description": "A public client has no secret (PKCE only).",
            },
            "grant_types": {
                "type": "array",
                "maxItems": len(GRANTS),
                "items": {"type": "string", "enum": list(GRANTS)},
                "description": "Default: authorization_code (client_credentials for an "
                "admin client).",
            },
            "scope": {
                "type": "string",
                "maxLength": 1000,
                "pattern": SCOPE,
                "default": "openid profile email offline_access",
            },
            "claims": CLAIMS,
            "backchannel_logout_uri": BACKCHANNEL_URI,
            "post_logout_redirect_uris": _uris("Where RP-initiated logout may return."),
            "name": {**CLIENT_NAME, "description": "Shown on the consent screen."},
            "first_party": {
                "type": "boolean",
                "default": False,
                "description": "Skips the consent screen.",
            },
            "admin_client": {
                "type": "boolean",
                "default": False,
                "description": f"May obtain the {ADMIN_SCOPE} scope (client_credentials).",
            },
            "id_token_alg": {
                "type": "string",
                "enum": list(SUPPORTED_ALGS),
                "description": "id_token_signed_response_alg; RS256 when absent.",
            },
            "dpop_bound_access_tokens": DPOP_BOUND,
            "token_endpoint_auth_method": {
                "type": "string",
                "enum": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
                "description": "none for a public client, client_secret_basic otherwise; "
                "private_key_jwt needs jwks or jwks_uri.",
            },
            "jwks": JWKS,
            "jwks_uri": JWKS_URI,
            "require_pushed_authorization_requests": REQUIRE_PAR,
            "require_mfa": REQUIRE_MFA,
        },
    },
    "ClientPatch": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "The fields to change; the others stay as they are.",
        "properties": {
            "redirect_uris": _uris("Replaces the redirect URIs."),
            "post_logout_redirect_uris": _uris("Replaces the post-logout redirect URIs."),
            "backchannel_logout_uri": {
                "type": ["string", "null"],
                "maxLength": 2000,
                "pattern": r"^[!-~]*$",
                "description": "An empty string or null removes it.",
            },
            "claims": CLAIMS,
            "name": CLIENT_NAME,
            "dpop_bound_access_tokens": DPOP_BOUND,
            "jwks": {**JWKS, "description": "Replaces the keys."},
            "jwks_uri": {
                **JWKS_URI,
                "pattern": r"^[!-~]*$",
                "description": "Replaces the keys; empty removes them.",
            },
            "require_pushed_authorization_requests": REQUIRE_PAR,
            "require_mfa": REQUIRE_MFA,
        },
    },
    "UserCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["username"],
        "description": "The options of `idp users create`.",
        "properties": {
            "username": {"type": "string", "pattern": USERNAME},
            "email": USER_EMAIL,
            "name": USER_NAME,
            "admin": {**USER_ADMIN, "default": False},
            "password": {
                "type": "string",
                "minLength": 8,
                "maxLength": 1024,
                "pattern": r"^[^\u0000]*$",  # anything a person can type; never NUL
                "description": "Absent: the account has no password, and nobody can log "
                "in to it until a password is set through a password reset.",
            },
        },
    },
    "UserPatch": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "The fields to change; the others stay as they are. A changed "
        "email is no longer verified.",
        "properties": {
            "email": {**USER_EMAIL, "type": ["string", "null"], "description": "null removes it."},
            "name": {**USER_NAME, "type": ["string", "null"]},
            "admin": USER_ADMIN,
        },
    },
    # --- responses ----------------------------------------------------------------------
    "Session": _object(
        sid=STRING,
        user={"type": "string", "description": "Username."},
        user_id=STRING,
        clients=_list_of(STRING),
        ip=STRING,
        user_agent=STRING,
        browser=STRING,
        os=STRING,
        created_at=DATETIME,
        last_seen_at=DATETIME,
        expires_at=DATETIME,
        auth_time=DATETIME,
        ended_at=MAYBE_DATETIME,
        end_reason=MAYBE_STRING,
    ),
    "SessionPage": _object(
        sessions=_list_of(_ref("Session")),
        next_cursor={
            "type": ["string", "null"],
            "description": "Pass as `after` for the next page; null on the last page.",
        },
    ),
    "RefreshToken": _object(
        id=STRING,
        generation=INTEGER,
        parent_id=MAYBE_STRING,
        scope=STRING,
        issued_at=DATETIME,
        issued_ip=MAYBE_STRING,
        issued_user_agent=MAYBE_STRING,
        used_at=MAYBE_DATETIME,
        used_ip=MAYBE_STRING,
        used_user_agent=MAYBE_STRING,
        expires_at=DATETIME,
    ),
    "Family": _object(
        id=STRING,
        client_id=STRING,
        user_id=STRING,
        session_id=MAYBE_STRING,
        scope=STRING,
        created_at=DATETIME,
        last_used_at=DATETIME,
        absolute_expires_at=DATETIME,
        revoked_at=MAYBE_DATETIME,
        revoked_reason=MAYBE_STRING,
        dpop_jkt={
            "type": ["string", "null"],
            "description": "The DPoP key (RFC 7638 thumbprint) every refresh must prove.",
        },
        tokens=_list_of(_ref("RefreshToken")),
        events=_list_of(_object(at=DATETIME, kind=STRING, details=DETAILS)),
    ),
    "Delivery": _object(
        client_id=STRING,
        uri=STRING,
        status={"type": "string", "enum": ["pending", "delivered", "failed"]},
        attempts=INTEGER,
        last_error=MAYBE_STRING,
        last_status_code={"type": ["integer", "null"]},
        last_attempt_at=MAYBE_DATETIME,
    ),
    "SessionDetail": _object(
        session=_ref("Session"),
        live=BOOLEAN,
        families=_list_of(_ref("Family")),
        deliveries=_list_of(_ref("Delivery")),
    ),
    "SessionKilled": _object(sid=STRING, killed=BOOLEAN, reason=STRING, ended_at=DATETIME),
    "Stream": _object(
        stream_id=STRING,
        receiver={"type": "string", "description": "The receiver's client_id (the SETs' aud)."},
        method={"type": "string", "enum": ["push", "poll"]},
        endpoint_url={"type": ["string", "null"], "description": "Push streams only."},
        status={"type": "string", "enum": list(STREAM_STATUSES)},
        status_reason=MAYBE_STRING,
        owed={**INTEGER, "description": "Events not yet delivered."},
        lag_seconds={**INTEGER, "description": "Age of the oldest event not yet delivered."},
        last_delivery_at=MAYBE_DATETIME,
        last_error=MAYBE_STRING,
        created_at=DATETIME,
    ),
    "StreamList": _object(streams=_list_of(_ref("Stream"))),
    "StreamStatus": _object(
        stream_id=STRING,
        status={"type": "string", "enum": list(STREAM_STATUSES)},
        reason=STRING,
    ),
    "User": _object(
        id=STRING,
        username=STRING,
        email=MAYBE_STRING,
        name=MAYBE_STRING,
        is_admin=BOOLEAN,
        disabled=BOOLEAN,
        created_at=DATETIME,
    ),
    "UserList": _object(users=_list_of(_ref("User"))),
    "UserDetail": _object(
        user=_ref("User"),
        sessions=_list_of(_ref("Session")),
        families=_list_of(_ref("Family")),
        consents=_list_of(_object(client_id=STRING, scope=STRING, granted_at=DATETIME)),
    ),
    "UserSessionsKilled": _object(user_id=STRING, sessions_killed=INTEGER),
    "UserFactorsReset": _object(user_id=STRING, factors_removed=INTEGER),
    "UserDeleted": _object(
        user_id=STRING,
        deleted=BOOLEAN,
        pseudonym={
            "type": "string",
            "description": "What the audit trail now calls the user (deleted-user-...).",
        },
        sessions_killed=INTEGER,
    ),
    "ClientMetadata": _object(
        client_id=STRING,
        client_name=STRING,
        redirect_uris=_list_of(STRING),
        grant_types=_list_of(STRING),
        response_types=_list_of(STRING),
        scope=STRING,
        token_endpoint_auth_method={
            "type": "string",
            "enum": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        },
        claims={"type": "object", "additionalProperties": STRING},
        first_party=BOOLEAN,
        id_token_signed_response_alg=STRING,
        backchannel_logout_uri=MAYBE_STRING,
        post_logout_redirect_uris=_list_of(STRING),
        dpop_bound_access_tokens=BOOLEAN,
        jwks={"type": ["object", "null"]},
        jwks_uri=MAYBE_STRING,
        require_pushed_authorization_requests=BOOLEAN,
        require_mfa=BOOLEAN,
        default_acr_values=_list_of(STRING),
        require_verified_email=BOOLEAN,
    ),
    "Client": {
        "allOf": [
            _ref("ClientMetadata"),
            _object(disabled=BOOLEAN, is_admin_client=BOOLEAN, created_at=DATETIME),
        ]
    },
    "ClientDetail": {
        "allOf": [
            _ref("Client"),
            _object(live_families={"type": "integer", "description": "Live refresh families."}),
        ]
    },
    "ClientList": _object(clients=_list_of(_ref("Client"))),
    "ClientCreated": {
        "allOf": [
            _ref("ClientMetadata"),
            _object(
                required=[],
                client_secret={
                    "type": "string",
                    "description": "Shown this once; absent for a public client.",
                },
            ),
        ]
    },
    "ClientSecret": _object(client_id=STRING, client_secret=STRING),
    "ClientTokensRevoked": _object(client_id=STRING, families_revoked=INTEGER),
    "Key": _object(
        kid=STRING,
        alg={"type": "string", "enum": list(SUPPORTED_ALGS)},
        state={"type": "string", "enum": ["next", "active", "retired"]},
        created_at=DATETIME,
        activated_at=MAYBE_DATETIME,
        retired_at=MAYBE_DATETIME,
        remove_after=MAYBE_DATETIME,
        activates_at={
            **MAYBE_DATETIME,
            "description": "A next key: when the schedule ([keys] rotate_every) makes it "
            "active; null without a schedule.",
        },
        retires_at={
            **MAYBE_DATETIME,
            "description": "An active key: when the schedule retires it; null without one.",
        },
        kek_id={
            "type": ["string", "null"],
            "description": "Which KEK seals the private key (null: sealed before KEK ids).",
        },
        age_days={"type": "number"},
    ),
    "KeyList": _object(keys=_list_of(_ref("Key"))),
    "KeysRotated": _object(
        active={**_list_of(STRING), "description": "The kids that became active."},
        keys=_list_of(_ref("Key")),
    ),
    "Overview": _object(
        live_sessions=INTEGER,
        live_families=INTEGER,
        logins_24h={**_list_of(INTEGER), "description": "Per hour, oldest first."},
        issued_24h=_list_of(INTEGER),
        refreshed_24h=_list_of(INTEGER),
        recent_reuse=_list_of(
            _object(
                at=DATETIME,
                user_id=MAYBE_STRING,
                client_id=MAYBE_STRING,
                session_id=MAYBE_STRING,
                family_id=MAYBE_STRING,
                details=DETAILS,
            )
        ),
    ),
    "AuditEvent": _object(
        at=DATETIME,
        actor={"type": "string", "description": 'A username, "cli", or "client:<id>".'},
        action=STRING,
        target=MAYBE_STRING,
        reason=MAYBE_STRING,
        ip=MAYBE_STRING,
        details=DETAILS,
    ),
    "AuditEventList": _object(events=_list_of(_ref("AuditEvent"))),
    "SecurityEvent": _object(
        at=DATETIME,
        kind=STRING,
        user_id=MAYBE_STRING,
        client_id=MAYBE_STRING,
        session_id=MAYBE_STRING,
        family_id=MAYBE_STRING,
        details=DETAILS,
    ),
    "SecurityEventList": _object(events=_list_of(_ref("SecurityEvent"))),
}

ERRORS = {
    400: "The request is malformed: bad query parameter, JSON body or field.",
    401: "No valid Bearer access token.",
    403: f"The token lacks {ADMIN_SCOPE}, or its client is not an admin client.",
    404: "No such object.",
    409: "The object is not in a state that allows this (a session that already ended).",
    413: "The request body is too large.",
    415: "The request body is not application/json.",
}


def _path(name: str, what: str, pattern: str = ID) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "string", "pattern": pattern},
    }


def _query(name: str, what: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": what,
        "schema": {"type": "string", "pattern": LINE, **schema},
    }


def _limit(default: int, maximum: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "How many to return at most.",
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
    }


def _op(
    operation_id: str,
    summary: str,
    response: str,
    *,
    tag: str,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    body_required: bool = False,
    status: int = 200,
    public: bool = False,
    conflict: bool = False,
) -> dict[str, Any]:
    """One operation: a summary, its inputs, its success response and its errors."""
    params = params or []
    codes = [] if public else [401, 403]
    if any(p["in"] == "query" for p in params):
        codes.append(400)
    if any(p["in"] == "path" for p in params):
        codes.append(404)
    if body:
        codes += [400, 413, 415]
    if conflict:
        codes.append(409)
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {
            str(status): {
                "description": "OK" if status == 200 else "Created",
                "content": {"application/json": {"schema": _ref(response)}},
            },
            **{
                str(code): {"$ref": f"#/components/responses/E{code}"}
                for code in sorted(set(codes))
            },
        },
    }
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if public:
        op["security"] = []
    return op


SID = _path("sid", "The session id (the `sid` claim of its tokens).")
USER_ID = _path("user_id", "The user's id.")
CLIENT = _path("client_id", "The client_id.", CLIENT_ID)
STREAM = _path("stream_id", "The stream's id (SSF stream_id).")
AUDITED = " Audited."

PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "tags": ["meta"],
            "security": [],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
    "/overview": {
        "get": _op("getOverview", "Live counts and 24-hour series.", "Overview", tag="overview")
    },
    "/sessions": {
        "get": _op(
            "listSessions",
            "Live browser sessions, newest first, a page at a time (keyset cursor).",
            "SessionPage",
            tag="sessions",
            params=[
                _query("user", "Only this username's sessions.", maxLength=150),
                _query("client", "Only sessions in which this client got tokens.", maxLength=100),
                _query("ip", "Only sessions from this IP address.", maxLength=64),
                _query(
                    "after",
                    "The `next_cursor` of the previous page (opaque).",
                    maxLength=200,
                    pattern=CURSOR,
                ),
                _limit(50, 200),
            ],
        )
    },
    "/sessions/{sid}": {
        "get": _op(
            "getSession",
            "A session with its refresh families, tokens and back-channel deliveries.",
            "SessionDetail",
            tag="sessions",
            params=[SID],
        )
    },
    "/sessions/{sid}/kill": {
        "post": _op(
            "killSession",
            "End the session everywhere: its refresh families are revoked, its access "
            "tokens denied, relying apps get a back-channel logout." + AUDITED,
            "SessionKilled",
            tag="sessions",
            params=[SID],
            body="RequiredReason",
            body_required=True,
            conflict=True,
        )
    },
    "/users": {
        "get": _op(
            "searchUsers",
            "Users whose username or email starts with `q` (all when empty).",
            "UserList",
            tag="users",
            params=[
                _query("q", "Prefix of a username or email.", maxLength=320),
                _limit(100, 200),
            ],
        ),
        "post": _op(
            "createUser",
            "Create a user, with or without a password." + AUDITED,
            "User",
            tag="users",
            body="UserCreate",
            body_required=True,
            status=201,
        ),
    },
    "/users/{user_id}": {
        "get": _op(
            "getUser",
            "A user with their sessions, refresh families and consents.",
            "UserDetail",
            tag="users",
            params=[USER_ID],
        ),
        "patch": _op(
            "updateUser",
            "Change a user's email, name or admin flag." + AUDITED,
            "User",
            tag="users",
            params=[USER_ID],
            body="UserPatch",
            body_required=True,
        ),
        "delete": _op(
            "deleteUser",
            "Delete the user for good: every session and refresh family is killed, "
            "receivers get RISC account-purged, personal data is removed, and the audit "
            "trail keeps only a pseudonym." + AUDITED,
            "UserDeleted",
            tag="users",
            params=[USER_ID],
            body="Reason",
        ),
    },
    "/users/{user_id}/kill-sessions": {
        "post": _op(
            "killUserSessions",
            "Kill every session and refresh family of the user." + AUDITED,
            "UserSessionsKilled",
            tag="users",
            params=[USER_ID],
            body="Reason",
        )
    },
    "/users/{user_id}/mfa-reset": {
        "post": _op(
            "resetUserFactors",
            "Remove every second factor (authenticator apps, passkeys) and recovery code of "
            "the user; receivers get CAEP credential-change." + AUDITED,
            "UserFactorsReset",
            tag="users",
            params=[USER_ID],
            body="Reason",
        )
    },
    "/users/{user_id}/disable": {
        "post": _op(
            "disableUser",
            "Disable the user: they cannot log in, and everything they hold is killed." + AUDITED,
            "User",
            tag="users",
            params=[USER_ID],
            body="Reason",
        )
    },
    "/users/{user_id}/enable": {
        "post": _op(
            "enableUser",
            "Enable a disabled user." + AUDITED,
            "User",
            tag="users",
            params=[USER_ID],
            body="Reason",
        )
    },
    "/clients": {
        "get": _op("listClients", "Every client.", "ClientList", tag="clients"),
        "post": _op(
            "createClient",
            "Register a client; its secret is in this response only." + AUDITED,
            "ClientCreated",
            tag="clients",
            body="ClientCreate",
            body_required=True,
            status=201,
        ),
    },
    "/clients/{client_id}": {
        "get": _op(
            "getClient",
            "A client's metadata and live refresh-family count.",
            "ClientDetail",
            tag="clients",
            params=[CLIENT],
        ),
        "patch": _op(
            "updateClient",
            "Change a client's URIs, private claims or name." + AUDITED,
            "ClientDetail",
            tag="clients",
            params=[CLIENT],
            body="ClientPatch",
            body_required=True,
        ),
    },
    "/clients/{client_id}/rotate-secret": {
        "post": _op(
            "rotateClientSecret",
            "A new secret, shown once; the old one stops working at once." + AUDITED,
            "ClientSecret",
            tag="clients",
            params=[CLIENT],
            body="Reason",
        )
    },
    "/clients/{client_id}/revoke-tokens": {
        "post": _op(
            "revokeClientTokens",
            "Revoke every refresh family and live access token of the client." + AUDITED,
            "ClientTokensRevoked",
            tag="clients",
            params=[CLIENT],
            body="Reason",
        )
    },
    "/ssf/streams": {
        "get": _op(
            "listStreams",
            "Shared Signals streams: receiver, delivery, status, events owed, lag, last "
            "delivery and error.",
            "StreamList",
            tag="signals",
        )
    },
    "/ssf/streams/{stream_id}/status": {
        "post": _op(
            "setStreamStatus",
            "Pause, disable or enable a Shared Signals stream; its receiver is told by a "
            "stream-updated event." + AUDITED,
            "StreamStatus",
            tag="signals",
            params=[STREAM],
            body="StreamStatusChange",
            body_required=True,
        )
    },
    "/keys": {
        "get": _op("listKeys", "Signing keys: next, active and retired.", "KeyList", tag="keys")
    },
    "/keys/rotate": {
        "post": _op(
            "rotateKeys",
            "Promote the next key of every algorithm; the old active key stays published "
            "until its tokens expire." + AUDITED,
            "KeysRotated",
            tag="keys",
            body="Reason",
        )
    },
    "/audit": {
        "get": _op(
            "listAuditEvents",
            "Operator and user actions, newest first.",
            "AuditEventList",
            tag="events",
            params=[
                _query("action", "Only this action, e.g. session.kill.", maxLength=100),
                _query("actor", 'Only this actor, e.g. "client:ops".', maxLength=200),
                _query("target", "Only events about this object id.", maxLength=200),
                _limit(200, 500),
            ],
        )
    },
    "/security-events": {
        "get": _op(
            "listSecurityEvents",
            "What attackers did or tried (refresh-token reuse, code replay), newest first.",
            "SecurityEventList",
            tag="events",
            params=[
                _query("kind", "Only this kind, e.g. refresh_token_reuse.", maxLength=50),
                _limit(200, 500),
            ],
        )
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "idp admin API",
        "version": "1",
        "description": "Operate idp from scripts: sessions, users, clients, Shared Signals "
        "streams, keys and the audit trail. Authenticate with a Bearer access token carrying the "
        f"`{ADMIN_SCOPE}` scope, which only admin clients obtain, from the token endpoint "
        "with the client_credentials grant (`idp clients create ops --admin-client`). "
        "Errors are JSON objects with `error` and `error_description`; datetimes are "
        "ISO 8601 in UTC. Every state-changing call is audited with the client as the actor.",
    },
    "servers": [{"url": "/admin/api"}],
    "security": [{"bearerAuth": []}],
    "tags": [
        {"name": name}
        for name in (
            "overview",
            "sessions",
            "users",
            "clients",
            "signals",
            "keys",
            "events",
            "meta",
        )
    ],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": f"An access token with scope {ADMIN_SCOPE} from an admin "
                "client (client_credentials grant at /token).",
            }
        },
        "schemas": SCHEMAS,
        "responses": {
            f"E{code}": {
                "description": what,
                "content": {"application/json": {"schema": _ref("Error")}},
            }
            for code, what in ERRORS.items()
        },
    },
}


def document(server_url: str) -> dict[str, Any]:
    """The document with its server URL set to where the API is mounted."""
    doc = copy.deepcopy(DOCUMENT)
    doc["servers"] = [{"url": server_url}]
    return doc
