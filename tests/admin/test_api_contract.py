"""The admin API's document and its server agree on every field: a value the OpenAPI
document accepts is accepted by the server, unless a rule that spans several fields or
depends on stored state (listed in SEMANTIC_REFUSALS) turns it down; a value the document
refuses is refused before anything changes. Walked field by field with fixed values, so it
runs the same on every run; test_api_schemathesis.py hunts with generated ones."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from idp.admin import openapi
from idp.admin.api.checks import problem, resolve
from idp.sessions import services as sessions
from idp.ssf import streams
from tests.admin.test_api import Api, admin_token, row_counts
from tests.support.auth import AuthActions, RegisteredClient

# What the server may still refuse in a request the document accepts, per operation: the
# start of the error_description. Redirect and back-channel URIs follow RFC 9700 §4.1.3
# rules that a pattern cannot state; the others span fields or depend on stored rows.
SEMANTIC_REFUSALS: dict[str, tuple[str, ...]] = {
    "GET /sessions": ("after is not a cursor this API returned",),
    "POST /clients": (
        "redirect URI ",
        "post-logout redirect URI ",
        "backchannel logout URI: ",
        "authorization_code needs at least one",
        "a public client cannot use client_credentials",
        "an admin client must be confidential",
        "That client_id is taken",
        "client ",  # "client 'x' already exists"
        # Keys: outbound-URL rules (idp.outbound), key material joserfc must read, and
        # the method/keys/public combinations of RFC 7591 §2.
        "jwks_uri: ",
        "jwks ",
        "register jwks or jwks_uri",
        "private_key_jwt needs",
        "a public client, and only",
    ),
    "POST /users": (
        "That username is taken",
        # Password rules no schema can state (idp.accounts.passwords.problem): a password
        # from the shipped list of common ones, or the username itself.
        "That password is one of the most common ones",
        "Password must not be your username",
    ),
    "PATCH /clients/{client_id}": (
        "redirect URI ",
        "post-logout redirect URI ",
        "backchannel logout URI: ",
        "authorization_code needs at least one",
        "jwks_uri: ",
        "jwks ",
        "register jwks or jwks_uri",
        "private_key_jwt needs",
    ),
}

# Values that sit on the edges of what the document says: blanks of every kind Python
# strips, control characters, markup, claim shapes, URIs.
PROBES = [
    "",
    " ",
    "\n",
    "\t",
    "\r\n",
    "\u00a0",
    "\u0085",
    "\u1680",
    "\u2028",
    "\u3000",
    "\ufeff",
    "\x1c",
    "\x0b",
    "\x00",
    "\x7f",
    "a",
    " a ",
    "a\nb",
    "é\U0001f600",
    "<script>alert(1)</script>",
    "iss",
    "tier",
    "tier=gold",
    "iss=me",
    "=x",
    "tier=user:email",
    "https://x.example/cb",
    "http://127.0.0.1:8080/cb",
    "javascript:alert(1)",
]


def probes_for(schema: dict[str, Any]) -> list[str]:
    found = list(PROBES)
    if "maxLength" in schema:
        found += ["x" * schema["maxLength"], "x" * (schema["maxLength"] + 1)]
    return found


def verdict_ok(schema: dict[str, Any], value: Any) -> bool:
    return problem(schema, value, "") is None


class Target:
    """Fresh objects for each probe, so an accepted probe never changes what the next sees."""

    def __init__(self, auth: AuthActions, svc: Any) -> None:
        self.auth, self.svc = auth, svc
        self.user = auth.user("alice")
        self.ids = itertools.count()

    def sid(self) -> str:
        with self.svc.db.raw_transaction() as cur:
            session, _ = sessions.start(
                cur, self.svc.clock, self.svc.session_policy, self.user.id, "127.0.0.1", "probe"
            )
            return str(session.id)

    def client_id(self) -> str:
        client_id = f"probe-{next(self.ids)}"
        self.auth.oauth_client(client_id, scope="openid offline_access")
        return client_id

    def stream_id(self) -> str:
        with self.svc.db.transaction() as s:
            stream = streams.create(
                s,
                self.svc.clock.now(),
                self.client_id(),
                {"delivery": {"method": streams.POLL}},
                self.svc.pusher.outbound,
            )
            return str(stream.id)

    def path(self, path: str) -> str:
        if "{stream_id}" in path:
            return path.replace("{stream_id}", self.stream_id())
        if "{sid}" in path:
            return path.replace("{sid}", self.sid())
        if "{user_id}" in path:  # a fresh user: a probe may delete it
            user = self.auth.user(f"probe-user-{next(self.ids)}")
            return path.replace("{user_id}", str(user.id))
        return path.replace("{client_id}", self.client_id()) if "{client_id}" in path else path

    def base_body(self, label: str) -> dict[str, Any]:
        if label == "POST /clients":
            return {"client_id": f"new-{next(self.ids)}", "grant_types": ["client_credentials"]}
        if label == "POST /sessions/{sid}/kill":
            return {"reason": "probe"}
        if label == "PATCH /clients/{client_id}":
            return {"name": "probe"}
        if label == "POST /ssf/streams/{stream_id}/status":
            return {"status": "paused"}
        if label == "POST /users":
            return {"username": f"new-user-{next(self.ids)}"}
        if label == "PATCH /users/{user_id}":
            return {"name": "probe"}
        return {}


def body_fields(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(field, its schema, how to place a probe string in it) for every field whose value
    is or holds text."""
    for name, sub in resolve(schema).get("properties", {}).items():
        sub = resolve(sub)
        kinds = sub.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if "string" in kinds:
            yield name, sub, lambda v: v
        elif kinds == ["array"] and resolve(sub["items"]).get("type") == "string":
            yield f"{name}[]", sub["items"], lambda v: [v]
        elif "anyOf" in sub:  # claims: an object of NAME: VALUE, or "NAME=VALUE" strings
            yield f"{name}{{name}}", sub, lambda v: {v: "gold"}
            yield f"{name}{{value}}", sub, lambda v: {"tier": v}
            yield f"{name}[]", sub, lambda v: [v]


def cases() -> Iterator[Any]:
    for path, item in openapi.PATHS.items():
        for method, op in item.items():
            label = f"{method.upper()} {path}"
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                for field, _sub, _place in body_fields(schema):
                    yield pytest.param(label, "body", field, id=f"{label} {field}")
            for param in op.get("parameters", []):
                if param["in"] == "query" and param["schema"]["type"] == "string":
                    name = param["name"]
                    yield pytest.param(label, "query", name, id=f"{label} ?{name}")


@pytest.fixture
def api(auth: AuthActions) -> Api:
    ops: RegisteredClient = auth.oauth_client(
        "ops",
        grant_types=["client_credentials"],
        admin_client=True,
        scope="idp:admin",
        redirect_uri="https://ops.example.test/x",
    )
    return Api(auth.client, admin_token(auth, ops))


# Agreement is a property of the code, not of the storage: one backend is enough here (the
# bad-input suite sends hostile values to both).
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("label", "where", "field"), list(cases()))
def test_what_the_document_accepts_the_server_accepts(
    api: Api, auth: AuthActions, svc: Any, label: str, where: str, field: str
) -> None:
    method, path = label.split(" ", 1)
    op = openapi.PATHS[path][method.lower()]
    target = Target(auth, svc)
    allowed = SEMANTIC_REFUSALS.get(label, ())
    if where == "body":
        schema = resolve(op["requestBody"]["content"]["application/json"]["schema"])
        [(_, sub, place)] = [f for f in body_fields(schema) if f[0] == field]
        values = probes_for(sub)
    else:
        [param] = [p for p in op["parameters"] if p["name"] == field]
        sub = param["schema"]
        values = probes_for(sub)
    for value in values:
        where_to = target.path(path)
        request: dict[str, Any] = {"query_string": {field: value}}
        ok = verdict_ok(sub, value)
        if where == "body":
            body = {**target.base_body(label), field.split("[")[0].split("{")[0]: place(value)}
            request, ok = {"json": body}, verdict_ok(schema, body)
        before = None if ok else row_counts(svc)
        resp = api.call(method, where_to, **request)
        data = resp.get_json()
        said = f"{label} {field}={value!r}: {resp.status_code} {data}"
        if ok:
            refused = resp.status_code == 400 and data["error_description"].startswith(allowed)
            assert resp.status_code < 400 or (allowed and refused), said
        else:
            assert resp.status_code == 400 and data["error"] == "invalid_request", said
            assert row_counts(svc) == before, said


def test_a_blank_reason_is_refused_by_the_document_and_the_server(
    api: Api, auth: AuthActions, svc: Any
) -> None:
    """Found by schemathesis: {"reason": "\\n"} fitted the document and got a 400."""
    kill = openapi.PATHS["/sessions/{sid}/kill"]["post"]
    schema = kill["requestBody"]["content"]["application/json"]["schema"]
    sid = Target(auth, svc).sid()
    for blank in ["\n", " ", "\t\r\n", "\u3000", "\u2028\u00a0"]:
        assert not verdict_ok(schema, {"reason": blank})
        resp = api.post(f"/sessions/{sid}/kill", {"reason": blank})
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    assert verdict_ok(schema, {"reason": "\n lost laptop \n"})
    killed = api.post(f"/sessions/{sid}/kill", {"reason": "\n lost laptop \n"})
    assert killed.status_code == 200 and killed.get_json()["reason"] == "lost laptop"


def test_blank_is_every_character_python_strips() -> None:
    """The server strips text with str.strip(); the document's BLANK set names the same
    characters (plus the controls that TEXT refuses anyway)."""
    blank = resolve({"type": "string", "pattern": f"^[{openapi.BLANK}]$"})
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert all(verdict_ok(blank, c) for c in spaces)
    assert not verdict_ok(blank, "a") and not verdict_ok(blank, "\ufeff")


def document_patterns() -> list[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return sorted(set(walk(openapi.DOCUMENT)))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (make services)")
def test_patterns_read_alike_in_ecma262_and_python() -> None:
    """JSON Schema patterns are ECMA-262 regular expressions; clients validate with them.
    Every pattern gives JavaScript's answer on every probe."""
    from idp.admin.api.checks import matches

    values = sorted({*PROBES, "x" * 101, "x" * 2001, "a\n", "\na", "ab\u0000"})
    script = (
        "const [patterns, values] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map(p => values.map("
        "v => new RegExp(p, 'u').test(v)))));"
    )
    patterns = document_patterns()
    out = subprocess.run(
        ["node", "-e", script],
        input=json.dumps([patterns, values]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    ecma = json.loads(out)
    for pattern, answers in zip(patterns, ecma, strict=True):
        for value, answer in zip(values, answers, strict=True):
            assert matches(pattern, value) == answer, (pattern, value)
