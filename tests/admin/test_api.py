"""The admin REST API (SPEC §5 `/admin/api/...`): Bearer tokens with idp:admin from admin
clients only, every operation of the dashboard as JSON, every action audited, and bad
input refused with a JSON error that changes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select, update

from idp.accounts.models import User
from idp.admin import openapi
from idp.clients.models import Client
from idp.models import Base
from tests.support.auth import PASSWORD, AuthActions, RegisteredClient, csrf_from
from tests.support.jwt import header
from tests.support.mfa import enrol

API = "/admin/api"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "werkzeug", "<html")


class Api:
    """Calls the admin API with a Bearer token."""

    def __init__(self, client: Any, token: str | None) -> None:
        self.client = client
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**base, **(extra or {})}

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = self.headers(kw.pop("headers", None))
        if body is not None:
            kw["json"] = body
        return self.client.open(API + path, method=method, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, body, **kw)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = self.call(method, path, body)
        assert resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()


def admin_token(auth: AuthActions, client: RegisteredClient, scope: str = "idp:admin") -> str:
    resp = auth.token(client, {"grant_type": "client_credentials", "scope": scope})
    assert resp.status_code == 200, resp.get_json()
    return str(resp.get_json()["access_token"])


class Login:
    """A user logged in on their own browser, holding tokens of an offline_access client."""

    def __init__(
        self,
        app: Any,
        auth: AuthActions,
        rp: RegisteredClient,
        username: str,
        ua: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
    ) -> None:
        self.browser = app.test_client()
        self.actions = AuthActions(app, self.browser)
        page = self.browser.get("/login")
        resp = self.browser.post(
            "/login",
            headers={"User-Agent": ua},
            data={
                "username": username,
                "password": PASSWORD,
                "csrf_token": csrf_from(page.get_data(as_text=True)),
            },
        )
        assert resp.status_code == 303
        self.rp = rp
        self.tokens = self.actions.tokens(rp, scope="openid email offline_access")
        self.sid = pyjwt_claims(self.tokens["access_token"])["sid"]

    def refresh(self) -> Any:
        return self.actions.token(
            self.rp, {"grant_type": "refresh_token", "refresh_token": self.tokens["refresh_token"]}
        )


def pyjwt_claims(token: str) -> dict[str, Any]:
    import jwt as pyjwt

    return dict(pyjwt.decode(token, options={"verify_signature": False}))


def introspect(auth: AuthActions, rs: RegisteredClient, token: str) -> dict[str, Any]:
    resp = auth.client.post("/introspect", data={"token": token}, headers=rs.basic())
    assert resp.status_code == 200
    return dict(resp.get_json())


def audit(api: Api, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return list(api.ok("GET", f"/audit?{query}")["events"])


def row_counts(svc: Any) -> dict[str, int]:
    with svc.db.read() as s:
        return {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
            if t.name != "state_entries"
        }


def assert_json_error(resp: Any, status: int, error: str | None = None) -> dict[str, Any]:
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, (resp.status_code, text[:300])
    assert resp.mimetype == "application/json", text[:300]
    for marker in TRACE_MARKERS:
        assert marker not in text, text[:300]
    data = resp.get_json()
    assert set(data) == {"error", "error_description"}, data
    assert data["error"] and data["error_description"]
    if error:
        assert data["error"] == error, data
    return dict(data)


def documented_operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in openapi.PATHS.items() for method in item]


def concrete(path: str) -> str:
    return (
        path.replace("{sid}", "0" * 32)
        .replace("{user_id}", "0" * 32)
        .replace("{client_id}", "nobody")
        .replace("{stream_id}", "0" * 32)
    )


# --- the document -------------------------------------------------------------------------


def test_document_describes_every_route_of_the_blueprint_and_no_other(app):
    admin_app = app.extensions["idp.admin"]
    routes = set()
    for rule in admin_app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix("/api"))
            routes |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == {(m, p) for m, p in documented_operations()}


def test_document_is_openapi_3_1_served_without_a_token(client):
    resp = client.get(f"{API}/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": API}]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_ref_in_the_document_resolves():
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(openapi.DOCUMENT):
        node: Any = openapi.DOCUMENT
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


def test_document_patterns_are_anchored():
    """Patterns are matched whole (Python's `$` also matches before a final newline)."""

    def patterns(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
            return own + [p for v in node.values() for p in patterns(v)]
        if isinstance(node, list):
            return [p for v in node for p in patterns(v)]
        return []

    found = patterns(openapi.DOCUMENT)
    assert found
    for pattern in found:
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        re.compile(pattern)


# --- who may call it -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [op for op in documented_operations() if op[1] != "/openapi.json"]
)
def test_every_operation_needs_a_bearer_token(client, method, path):
    resp = client.open(API + concrete(path), method=method, json={})
    assert_json_error(resp, 401, "invalid_token")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-token",
        "Bearer ",
        "Basic b3BzOnNlY3JldA==",
        "bearer a.b.c",
        "Bearer " + "A" * 9000,
    ],
)
def test_a_bad_token_is_401(client, ops, authorization):
    resp = client.get(f"{API}/overview", headers={"Authorization": authorization})
    assert_json_error(resp, 401, "invalid_token")


def test_an_expired_token_is_401(api, clock, svc):
    clock.advance(svc.config.tokens.access_token_ttl + 1)
    assert_json_error(api.get("/overview"), 401, "invalid_token")


def test_a_revoked_token_is_401(api, auth, ops):
    resp = auth.client.post("/revoke", data={"token": api.token}, headers=ops.basic())
    assert resp.status_code == 200
    assert_json_error(api.get("/overview"), 401, "invalid_token")


def test_a_normal_client_asking_for_idp_admin_is_refused_at_the_token_endpoint(auth):
    sneaky = auth.oauth_client(
        "sneaky",
        grant_types=["client_credentials"],
        scope="idp:admin api",
        redirect_uri="https://x.example.test/x",
    )
    resp = auth.token(sneaky, {"grant_type": "client_credentials", "scope": "idp:admin"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_scope"
    token = admin_token(auth, sneaky, scope="api")
    assert_json_error(Api(auth.client, token).get("/overview"), 403, "insufficient_scope")


def test_an_admin_clients_token_without_idp_admin_is_403(auth):
    ops = auth.oauth_client(
        "ops",
        grant_types=["client_credentials"],
        admin_client=True,
        scope="idp:admin reports",
        redirect_uri="https://ops.example.test/x",
    )
    resp = Api(auth.client, admin_token(auth, ops, scope="reports")).get("/overview")
    assert_json_error(resp, 403, "insufficient_scope")
    assert 'scope="idp:admin"' in resp.headers["WWW-Authenticate"]


def test_a_users_access_token_is_403(alice, auth):
    resp = Api(auth.client, alice.tokens["access_token"]).get("/overview")
    assert_json_error(resp, 403, "insufficient_scope")


@pytest.mark.parametrize("change", [{"is_admin_client": False}, {"disabled": True}])
def test_a_token_of_a_client_no_longer_admin_is_403(api, svc, change):
    with svc.db.transaction() as s:
        s.execute(update(Client).where(Client.client_id == "ops").values(**change))
    assert_json_error(api.get("/overview"), 403, "insufficient_scope")


# --- sessions ---------------------------------------------------------------------------


def test_sessions_are_listed_with_filters_and_a_keyset_cursor(api, app, auth, rp, alice, clock):
    auth.user("bob")
    clock.advance(1)
    bobs = [Login(app, auth, rp, "bob", ua="curl/8.0") for _ in range(3)]
    everyone = api.ok("GET", "/sessions")
    assert [s["sid"] for s in everyone["sessions"]][-1] == alice.sid
    assert everyone["next_cursor"] is None and len(everyone["sessions"]) == 4

    seen, cursor = [], ""
    while True:
        page = api.ok("GET", "/sessions?user=bob&limit=2" + (f"&after={cursor}" if cursor else ""))
        seen += [s["sid"] for s in page["sessions"]]
        assert all(s["user"] == "bob" for s in page["sessions"])
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(b.sid for b in bobs) and len(seen) == 3

    row = api.ok("GET", "/sessions?user=alice")["sessions"][0]
    assert row["clients"] == ["app"] and row["browser"].startswith("Firefox")
    for key in ("created_at", "last_seen_at", "expires_at", "auth_time"):
        assert ISO_UTC.match(row[key]), row[key]
    assert row["ended_at"] is None
    filtered = api.ok("GET", "/sessions?client=app&ip=127.0.0.1")["sessions"]
    assert sorted(s["sid"] for s in filtered) == sorted([alice.sid, *(b.sid for b in bobs)])
    assert api.ok("GET", "/sessions?ip=10.9.9.9")["sessions"] == []
    assert api.ok("GET", "/sessions?client=nobody")["sessions"] == []


def test_a_session_is_shown_with_its_families(api, alice):
    detail = api.ok("GET", f"/sessions/{alice.sid}")
    assert detail["session"]["sid"] == alice.sid and detail["live"] is True
    [family] = detail["families"]
    assert family["client_id"] == "app" and family["revoked_at"] is None
    assert family["tokens"][0]["parent_id"] is None
    assert "token_hash" not in family["tokens"][0]


def test_killing_a_session_ends_its_tokens_and_is_audited(api, auth, rs, alice, svc):
    assert introspect(auth, rs, alice.tokens["access_token"])["active"] is True
    killed = api.ok("POST", f"/sessions/{alice.sid}/kill", {"reason": "stolen laptop"})
    assert killed["sid"] == alice.sid and killed["killed"] is True
    assert ISO_UTC.match(killed["ended_at"])
    assert introspect(auth, rs, alice.tokens["access_token"]) == {"active": False}
    refreshed = alice.refresh()
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    assert alice.browser.get("/account").status_code == 303
    [event] = audit(api, action="session.kill")
    assert event["actor"] == "client:ops" and event["target"] == alice.sid
    assert event["reason"] == "stolen laptop" and event["ip"] == "127.0.0.1"
    assert api.ok("GET", "/sessions")["sessions"] == []
    assert api.ok("GET", f"/sessions/{alice.sid}")["session"]["end_reason"] == "stolen laptop"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   \n"}, None])
def test_killing_a_session_needs_a_reason(api, alice, svc, body):
    before = row_counts(svc)
    assert_json_error(api.post(f"/sessions/{alice.sid}/kill", body), 400, "invalid_request")
    assert row_counts(svc) == before
    assert api.ok("GET", f"/sessions/{alice.sid}")["live"] is True


def test_killing_an_ended_session_says_so_and_changes_nothing(api, alice, svc):
    api.ok("POST", f"/sessions/{alice.sid}/kill", {"reason": "stolen laptop"})
    before = row_counts(svc)
    again = assert_json_error(
        api.post(f"/sessions/{alice.sid}/kill", {"reason": "second try"}), 409
    )
    assert "already ended (stolen laptop)" in again["error_description"]
    assert row_counts(svc) == before
    assert [e["reason"] for e in audit(api, action="session.kill")] == ["stolen laptop"]


def test_killing_an_unknown_session_is_404_and_denies_nothing(api, svc):
    resp = api.post("/sessions/" + "f" * 32 + "/kill", {"reason": "typo"})
    assert_json_error(resp, 404, "not_found")
    assert not svc.deny.is_denied("sid", "f" * 32)
    assert audit(api, action="session.kill") == []


# --- users ----------------------------------------------------------------------------------


def test_users_are_searched_and_shown(api, auth, alice):
    auth.user("alan", email="al@example.test")
    auth.user("bob")
    found = api.ok("GET", "/users?q=al")["users"]
    assert [u["username"] for u in found] == ["alan", "alice"]
    assert "password_hash" not in found[0] and ISO_UTC.match(found[0]["created_at"])
    assert len(api.ok("GET", "/users")["users"]) == 3
    assert api.ok("GET", "/users?q=%25")["users"] == []
    user_id = found[1]["id"]
    detail = api.ok("GET", f"/users/{user_id}")
    assert detail["user"]["username"] == "alice"
    assert [s["sid"] for s in detail["sessions"]] == [alice.sid]
    assert detail["families"][0]["client_id"] == "app"


def user_id(svc: Any, username: str) -> str:
    with svc.db.read() as s:
        return str(s.scalar(select(User.id).where(User.username == username)))


def test_killing_a_users_sessions_ends_all_of_them(api, app, auth, rp, rs, alice, svc):
    second = Login(app, auth, rp, "alice")
    uid = user_id(svc, "alice")
    done = api.ok("POST", f"/users/{uid}/kill-sessions", {"reason": "phished"})
    assert done == {"user_id": uid, "sessions_killed": 2}
    for login in (alice, second):
        assert introspect(auth, rs, login.tokens["access_token"]) == {"active": False}
        assert login.refresh().status_code == 400
    assert {e["target"] for e in audit(api, action="session.kill")} == {alice.sid, second.sid}
    [event] = audit(api, action="user.kill_sessions", actor="client:ops")
    assert event["target"] == uid and event["details"]["sessions_killed"] == 2


def test_disabling_a_user_kills_everything_and_enabling_lets_them_back(api, auth, rs, alice, svc):
    uid = user_id(svc, "alice")
    user = api.ok("POST", f"/users/{uid}/disable", {"reason": "left the company"})
    assert user["disabled"] is True and user["username"] == "alice"
    assert introspect(auth, rs, alice.tokens["access_token"]) == {"active": False}
    assert alice.refresh().status_code == 400
    page = auth.client.get("/login")
    csrf = csrf_from(page.get_data(as_text=True))
    refused = auth.client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf}
    )
    assert refused.status_code == 401, "a disabled account is refused like a wrong password"
    assert "Wrong username or password." in refused.get_data(as_text=True)
    [event] = audit(api, action="user.disable")
    assert event["actor"] == "client:ops" and event["reason"] == "left the company"

    assert api.ok("POST", f"/users/{uid}/enable")["disabled"] is False
    assert audit(api, action="user.enable")[0]["reason"] == "enabled by operator"
    assert auth.login("alice").status_code == 303


def test_mfa_reset_removes_the_users_factors(api, app, svc):
    carol = AuthActions(app, app.test_client())
    user = carol.user("carol")
    enrol(carol, "carol")
    done = api.ok("POST", f"/users/{user.id}/mfa-reset", {"reason": "lost phone"})
    assert done == {"user_id": user.id, "factors_removed": 1}
    assert not svc.factors.has_factor(user.id)
    [event] = audit(api, action="user.mfa_reset")
    assert event["actor"] == "client:ops" and event["reason"] == "lost phone"


@pytest.mark.parametrize("action", ["kill-sessions", "disable", "enable", "mfa-reset"])
def test_actions_on_an_unknown_user_are_404(api, svc, action):
    before = row_counts(svc)
    assert_json_error(api.post("/users/" + "0" * 32 + f"/{action}", {"reason": "x"}), 404)
    assert row_counts(svc) == before


# --- clients --------------------------------------------------------------------------------


def test_clients_are_listed_and_shown(api, rp, alice):
    listed = {c["client_id"]: c for c in api.ok("GET", "/clients")["clients"]}
    assert set(listed) == {"app", "ops"}
    assert listed["ops"]["is_admin_client"] is True and "secret_hash" not in listed["ops"]
    detail = api.ok("GET", "/clients/app")
    assert detail["live_families"] == 1 and detail["redirect_uris"] == [rp.redirect_uri]
    assert ISO_UTC.match(detail["created_at"])


def test_creating_a_client_shows_its_secret_once(api, auth):
    resp = api.post(
        "/clients",
        {
            "client_id": "billing",
            "redirect_uris": ["https://billing.example.test/cb"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scope": "openid email offline_access reports",
            "claims": ["tenant=acme"],
            "name": "Billing",
            "backchannel_logout_uri": "https://billing.example.test/bcl",
            "post_logout_redirect_uris": ["https://billing.example.test/bye"],
            "id_token_alg": "ES256",
        },
    )
    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()
    assert resp.headers["Location"] == f"{API}/clients/billing"
    assert created["client_id"] == "billing" and created["claims"] == {"tenant": "acme"}
    assert created["id_token_signed_response_alg"] == "ES256"
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    billing = RegisteredClient("billing", created["client_secret"], "https://x")
    token = auth.token(billing, {"grant_type": "client_credentials", "scope": "reports"})
    assert token.status_code == 200
    shown = api.ok("GET", "/clients/billing")
    assert "client_secret" not in shown and shown["client_name"] == "Billing"
    [event] = audit(api, action="client.create")
    assert event["target"] == "billing" and event["actor"] == "client:ops"
    # Everything registered is in the record (issue 10 item 8).
    registered = event["details"]["metadata"]
    assert registered["redirect_uris"] == ["https://billing.example.test/cb"]
    assert registered["backchannel_logout_uri"] == "https://billing.example.test/bcl"
    assert registered["first_party"] is False
    assert "client_secret" not in registered


def test_dpop_bound_access_tokens_is_set_and_changed_through_the_api(api, auth):
    created = api.ok(
        "POST",
        "/clients",
        {
            "client_id": "svc",
            "grant_types": ["client_credentials"],
            "scope": "reports",
            "dpop_bound_access_tokens": True,
        },
        status=201,
    )
    assert created["dpop_bound_access_tokens"] is True
    svc_client = RegisteredClient("svc", created["client_secret"], "https://x")
    refused = auth.token(svc_client, {"grant_type": "client_credentials"})
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_dpop_proof"
    changed = api.ok("PATCH", "/clients/svc", {"dpop_bound_access_tokens": False})
    assert changed["dpop_bound_access_tokens"] is False
    assert auth.token(svc_client, {"grant_type": "client_credentials"}).status_code == 200
    [event] = audit(api, action="client.update")
    assert event["details"]["changed"]["dpop_bound_access_tokens"] == {"from": True, "to": False}


def test_a_public_client_has_no_secret(api):
    created = api.ok(
        "POST",
        "/clients",
        {"client_id": "spa", "public": True, "redirect_uris": ["http://127.0.0.1/cb"]},
        status=201,
    )
    assert "client_secret" not in created
    assert created["token_endpoint_auth_method"] == "none"
    resp = api.post("/clients/spa/rotate-secret")
    assert_json_error(resp, 400, "invalid_client_metadata")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"client_id": "ops", "redirect_uris": ["https://a.example.test/cb"]},
            "invalid_client_metadata",
        ),
        (
            {"client_id": "x", "redirect_uris": ["http://evil.example.test/cb"]},
            "invalid_redirect_uri",
        ),
        ({"client_id": "x", "redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        (
            {"client_id": "x", "redirect_uris": ["https://a.example.test/cb#frag"]},
            "invalid_redirect_uri",
        ),
        ({"client_id": "x"}, "invalid_client_metadata"),
        (
            {
                "client_id": "x",
                "redirect_uris": ["https://a.example.test/cb"],
                "claims": {"sub": "1"},
            },
            "invalid_request",  # the document names the reserved claims
        ),
        (
            {
                "client_id": "x",
                "redirect_uris": ["https://a.example.test/cb"],
                "claims": ["nothing"],
            },
            "invalid_request",  # the document's pattern is NAME=VALUE
        ),
        (
            {"client_id": "x", "public": True, "grant_types": ["client_credentials"]},
            "invalid_client_metadata",
        ),
        (
            {"client_id": "x", "redirect_uris": ["https://a.example.test/cb"], "scope": "a\\b"},
            "invalid_request",
        ),
        (
            {
                "client_id": "x",
                "redirect_uris": ["https://a.example.test/cb"],
                "backchannel_logout_uri": "ftp://a.example.test/",
            },
            "invalid_client_metadata",
        ),
    ],
)
def test_client_metadata_the_services_refuse_is_400(api, svc, body, error):
    before = row_counts(svc)
    assert_json_error(api.post("/clients", body), 400, error)
    assert row_counts(svc) == before


def test_patching_a_client_changes_only_the_given_fields(api, auth, rp):
    changed = api.ok(
        "PATCH",
        "/clients/app",
        {
            "redirect_uris": ["https://rp.example.test/new"],
            "claims": {"tier": "gold"},
            "name": "The App",
            "backchannel_logout_uri": "https://rp.example.test/bcl",
        },
    )
    assert changed["redirect_uris"] == ["https://rp.example.test/new"]
    assert changed["claims"] == {"tier": "gold"} and changed["client_name"] == "The App"
    assert changed["scope"] == "openid profile email offline_access"
    assert changed["backchannel_logout_uri"] == "https://rp.example.test/bcl"
    cleared = api.ok("PATCH", "/clients/app", {"backchannel_logout_uri": None})
    assert cleared["backchannel_logout_uri"] is None and cleared["client_name"] == "The App"
    events = audit(api, action="client.update")
    # The audit trail holds the values, before and after (issue 10 item 8).
    assert sorted(sorted(e["details"]["changed"]) for e in events) == [
        ["backchannel_logout_uri"],
        ["backchannel_logout_uri", "claims", "client_name", "redirect_uris"],
    ]
    edit = next(e for e in events if "redirect_uris" in e["details"]["changed"])
    assert edit["details"]["changed"]["redirect_uris"]["to"] == ["https://rp.example.test/new"]
    assert edit["details"]["changed"]["claims"] == {"from": {}, "to": {"tier": "gold"}}
    assert auth.authorize(rp).status_code == 400  # the old redirect URI is gone


@pytest.mark.parametrize(
    "body",
    [
        {"redirect_uris": ["https://ok.example.test/cb"], "claims": {"iss": "me"}},
        {"redirect_uris": []},
        {"name": "   "},
        {"post_logout_redirect_uris": ["data:text/html,hi"]},
        {},
        {"client_id": "renamed"},
    ],
)
def test_a_refused_patch_changes_nothing(api, svc, rp, body):
    before = api.ok("GET", "/clients/app")
    counts = row_counts(svc)
    assert_json_error(api.patch("/clients/app", body), 400)
    assert api.ok("GET", "/clients/app") == before
    assert row_counts(svc) == counts


def test_rotating_a_secret_makes_the_old_one_fail(api, auth, rs):
    assert admin_token(auth, rs, scope="api")
    new = api.ok("POST", "/clients/rs/rotate-secret", {"reason": "leaked in a log"})
    assert new["client_id"] == "rs" and new["client_secret"] != rs.secret
    old = auth.token(rs, {"grant_type": "client_credentials", "scope": "api"})
    assert old.status_code == 401 and old.get_json()["error"] == "invalid_client"
    fresh = RegisteredClient("rs", new["client_secret"], rs.redirect_uri)
    assert admin_token(auth, fresh, scope="api")
    [event] = audit(api, action="client.rotate_secret")
    assert event["target"] == "rs" and event["reason"] == "leaked in a log"


def test_revoking_a_clients_tokens(api, auth, rs, alice, clock):
    clock.advance(1)
    done = api.ok("POST", "/clients/app/revoke-tokens", {"reason": "compromised"})
    assert done == {"client_id": "app", "families_revoked": 1}
    assert introspect(auth, rs, alice.tokens["access_token"]) == {"active": False}
    assert alice.refresh().status_code == 400
    assert api.ok("GET", "/clients/app")["live_families"] == 0
    [event] = audit(api, action="client.revoke_tokens")
    assert event["details"]["families"] == 1 and event["actor"] == "client:ops"


@pytest.mark.parametrize("path", ["/clients/ghost/rotate-secret", "/clients/ghost/revoke-tokens"])
def test_actions_on_an_unknown_client_are_404(api, svc, path):
    before = row_counts(svc)
    assert_json_error(api.post(path), 404, "not_found")
    assert_json_error(api.patch("/clients/ghost", {"name": "x"}), 404, "not_found")
    assert_json_error(api.get("/clients/ghost"), 404, "not_found")
    assert row_counts(svc) == before


# --- keys, events, overview ---------------------------------------------------------------


def test_rotating_keys_changes_the_active_kid(api, auth, ops):
    active = {k["alg"]: k["kid"] for k in api.ok("GET", "/keys")["keys"] if k["state"] == "active"}
    assert header(api.token)["kid"] == active["ES256"]
    rotated = api.ok("POST", "/keys/rotate", {"reason": "yearly"})
    now = {k["alg"]: k["kid"] for k in rotated["keys"] if k["state"] == "active"}
    assert set(rotated["active"]) == set(now.values())
    assert all(now[alg] != kid for alg, kid in active.items())
    retired = {k["kid"] for k in rotated["keys"] if k["state"] == "retired"}
    assert set(active.values()) <= retired
    next_token = admin_token(auth, ops)
    assert header(next_token)["kid"] == now["ES256"]
    [event] = audit(api, action="keys.rotate")
    assert set(event["target"].split(",")) == set(now.values()) and event["reason"] == "yearly"
    assert Api(auth.client, next_token).get("/keys").status_code == 200


def test_security_events_show_refresh_token_reuse(api, alice):
    assert alice.refresh().status_code == 200
    assert alice.refresh().status_code == 400  # the same token again: reuse
    events = api.ok("GET", "/security-events?kind=refresh_token_reuse")["events"]
    assert [e["kind"] for e in events] == ["refresh_token_reuse"]
    assert events[0]["session_id"] == alice.sid and ISO_UTC.match(events[0]["at"])
    assert api.ok("GET", "/security-events?kind=nothing")["events"] == []
    overview = api.ok("GET", "/overview")
    assert overview["recent_reuse"][0]["family_id"] == events[0]["family_id"]


def test_overview_counts(api, alice):
    overview = api.ok("GET", "/overview")
    assert overview["live_sessions"] == 1 and overview["live_families"] == 1
    assert len(overview["logins_24h"]) == 24 and sum(overview["logins_24h"]) == 1


def test_audit_filters(api, alice, svc):
    api.ok("POST", f"/sessions/{alice.sid}/kill", {"reason": "r"})
    api.ok("POST", "/keys/rotate")
    everything = audit(api)
    assert {e["action"] for e in everything} >= {"session.kill", "keys.rotate"}
    # everything done to alice's session (her login, the kill) and nothing else
    assert {e["action"] for e in audit(api, target=alice.sid)} == {"login", "session.kill"}
    assert {e["target"] for e in audit(api, action="session.kill")} == {alice.sid}
    assert audit(api, actor="client:nobody") == []
    assert len(api.ok("GET", "/audit?limit=1")["events"]) == 1


# --- bad input ----------------------------------------------------------------------------


JSON = {"Content-Type": "application/json"}
SID = "0" * 32


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        # bodies
        ("POST", "/sessions/{sid}/kill", {"data": "{", "headers": JSON}, 400),
        ("POST", "/sessions/{sid}/kill", {"data": '{"reason": "x"', "headers": JSON}, 400),
        ("POST", "/sessions/{sid}/kill", {"data": b"\xff\xfe\x00", "headers": JSON}, 400),
        ("POST", "/sessions/{sid}/kill", {"data": '["reason"]', "headers": JSON}, 400),
        ("POST", "/sessions/{sid}/kill", {"data": '"reason"', "headers": JSON}, 400),
        ("POST", "/sessions/{sid}/kill", {"data": "null", "headers": JSON}, 400),
        ("POST", "/sessions/{sid}/kill", {"data": '{"reason": NaN}', "headers": JSON}, 400),
        (
            "POST",
            "/sessions/{sid}/kill",
            {"data": "[" * 100000 + "]" * 100000, "headers": JSON},
            413,
        ),
        (
            "POST",
            "/sessions/{sid}/kill",
            {"data": '{"reason": 1' + "0" * 5000 + "}", "headers": JSON},
            400,
        ),
        ("POST", "/sessions/{sid}/kill", {"data": "reason=x"}, 415),
        (
            "POST",
            "/sessions/{sid}/kill",
            {"data": "reason=x", "headers": {"Content-Type": "text/plain"}},
            415,
        ),
        ("POST", "/sessions/{sid}/kill", {"json": {"reason": 5}}, 400),
        ("POST", "/sessions/{sid}/kill", {"json": {"reason": ["x"]}}, 400),
        ("POST", "/sessions/{sid}/kill", {"json": {"reason": None}}, 400),
        ("POST", "/sessions/{sid}/kill", {"json": {"reason": "x" * 501}}, 400),
        ("POST", "/sessions/{sid}/kill", {"json": {"reason": "nul\x00byte"}}, 400),
        ("POST", "/sessions/{sid}/kill", {"data": '{"reason": "\\ud800"}', "headers": JSON}, 400),
        ("POST", "/sessions/{sid}/kill", {"json": {"reason": "x", "why": "y"}}, 400),
        ("POST", "/sessions/{sid}/kill", {"json": {"reason": "x" * 70000}}, 413),
        ("POST", "/users/{uid}/disable", {"json": {"reason": True}}, 400),
        ("POST", "/clients", {"json": {"client_id": 7}}, 400),
        ("POST", "/clients", {"json": {"client_id": "a\n"}}, 400),
        ("POST", "/clients", {"json": {"client_id": "<script>alert(1)</script>"}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x" * 101}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "public": "yes"}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "redirect_uris": "https://a.test/"}}, 400),
        (
            "POST",
            "/clients",
            {"json": {"client_id": "x", "redirect_uris": ["https://a b.test/"]}},
            400,
        ),
        (
            "POST",
            "/clients",
            {"json": {"client_id": "x", "redirect_uris": ["https://a.test/\n"]}},
            400,
        ),
        (
            "POST",
            "/clients",
            {"json": {"client_id": "x", "redirect_uris": ["https://a.test/" + "a" * 2000]}},
            400,
        ),
        ("POST", "/clients", {"json": {"client_id": "x", "grant_types": ["implicit"]}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "id_token_alg": "none"}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "name": "n" * 201}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "scope": "s" * 1001}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "claims": {"a\n": "b"}}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "claims": {"a": 1}}}, 400),
        ("POST", "/clients", {"json": {"client_id": "x", "claims": ["a\n=b"]}}, 400),
        (
            "POST",
            "/clients",
            {
                "json": {
                    "client_id": "x",
                    "admin_client": True,
                    "redirect_uris": [],
                    "scope": "idp:admin",
                    "public": True,
                }
            },
            400,
        ),
        ("POST", "/clients", {"json": {}}, 400),
        ("POST", "/clients", {}, 400),
        ("PATCH", "/clients/app", {"json": {"claims": "tier=gold"}}, 400),
        ("PATCH", "/clients/app", {"json": {"name": None}}, 400),
        ("PATCH", "/clients/app", {"data": "name=x"}, 415),
        # query strings
        ("GET", "/sessions", {"query_string": {"limit": "0"}}, 400),
        ("GET", "/sessions", {"query_string": {"limit": "201"}}, 400),
        ("GET", "/sessions", {"query_string": {"limit": "ten"}}, 400),
        ("GET", "/sessions", {"query_string": {"limit": "9" * 50}}, 400),
        ("GET", "/sessions", {"query_string": "limit=1&limit=2"}, 400),
        ("GET", "/sessions", {"query_string": {"after": "yesterday"}}, 400),
        ("GET", "/sessions", {"query_string": {"after": "2024-13-45T99:99:99|abc"}}, 400),
        ("GET", "/sessions", {"query_string": {"after": "MjAyNC0xMy00NVQ5OTo5OTo5OXxhYmM="}}, 400),
        ("GET", "/sessions", {"query_string": {"after": "MjAyNC0wMS0wMVQwMDowMDowMHw8Pg=="}}, 400),
        ("GET", "/sessions", {"query_string": {"user": "alice\x00"}}, 400),
        ("GET", "/sessions", {"query_string": {"user": "a" * 151}}, 400),
        ("GET", "/sessions", {"query_string": {"usr": "alice"}}, 400),
        ("GET", "/users", {"query_string": {"q": "\x00"}}, 400),
        ("GET", "/audit", {"query_string": {"actor": "<script>" * 40}}, 400),
        ("GET", "/security-events", {"query_string": {"limit": "-1"}}, 400),
        ("GET", "/overview", {"query_string": {"x": "1"}}, 400),
        # paths and methods
        ("GET", "/sessions/%00", {}, 404),
        ("GET", "/sessions/" + "a" * 65, {}, 404),
        ("GET", "/sessions/<script>", {}, 404),
        ("GET", "/users/..%2F..%2Fetc", {}, 404),
        ("GET", "/clients/%E2%80%AE", {}, 404),
        ("GET", "/clients/a%0Ab", {}, 404),
        ("GET", "/nothing-here", {}, 404),
        ("GET", "", {}, 404),
        ("DELETE", "/sessions/{sid}", {}, 405),
        ("PUT", "/clients/app", {"json": {}}, 405),
        ("GET", "/sessions/{sid}/kill", {}, 405),
        ("POST", "/overview", {}, 405),
    ],
)
def test_bad_input_is_a_json_error_that_changes_nothing(
    api, svc, rp, alice, method, path, kw, status
):
    path = path.replace("{sid}", alice.sid).replace("{uid}", user_id(svc, "alice"))
    before = row_counts(svc)
    resp = api.call(method, path, **kw)
    assert_json_error(resp, status)
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    if resp.status_code == 405:
        assert resp.headers["Allow"]
    assert row_counts(svc) == before
    assert api.ok("GET", f"/sessions/{alice.sid}")["live"] is True


def test_head_and_options_work(api):
    assert api.call("HEAD", "/sessions?limit=5").status_code == 200
    options = api.call("OPTIONS", "/clients/app")
    assert options.status_code == 200 and "PATCH" in options.headers["Allow"]


def test_a_query_string_over_the_limit_is_a_json_error(api):
    resp = api.get("/sessions?user=" + "a" * 9000)
    assert_json_error(resp, 414)


def test_datetimes_are_iso_8601_utc(api, alice, clock):
    clock.advance(0.000789)
    api.ok("POST", f"/sessions/{alice.sid}/kill", {"reason": "r"})
    [event] = audit(api, action="session.kill")
    assert event["at"] == clock.now().strftime("%Y-%m-%dT%H:%M:%S.000789Z")
