"""The admin API's user lifecycle (issue 13 item 7): create (with or without a password),
change, delete; bad input is a JSON 4xx that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from idp.accounts.models import User
from tests.admin.test_api import (  # the fixtures api, ops, rp, rs and alice too
    Api,
    Login,
    assert_json_error,
    audit,
    introspect,
    row_counts,
    user_id,
)
from tests.support.auth import AuthActions, RegisteredClient

pytestmark = pytest.mark.usefixtures("no_background_worker")

NEW = {"username": "carol", "email": "carol@example.test", "name": "Carol C."}


def stored(svc: Any, username: str) -> User | None:
    with svc.db.read() as s:
        return s.scalar(select(User).where(User.username == username))


def test_creating_a_user_with_a_password_lets_them_log_in(api: Api, auth: AuthActions) -> None:
    resp = api.post("/users", {**NEW, "password": "a long password", "admin": True})
    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()
    assert created["username"] == "carol" and created["is_admin"] is True
    assert created["email"] == "carol@example.test" and created["name"] == "Carol C."
    assert resp.headers["Location"].endswith(f"/admin/api/users/{created['id']}")
    assert api.ok("GET", f"/users/{created['id']}")["user"] == created
    assert auth.login("carol", "a long password").status_code == 303
    [event] = audit(api, action="user.create")
    assert event["actor"] == "client:ops" and event["target"] == created["id"]
    assert event["details"] == {"username": "carol", "admin": True, "password": True}


def test_a_user_created_without_a_password_cannot_log_in(api: Api, auth: AuthActions) -> None:
    created = api.ok("POST", "/users", {"username": "dora"}, status=201)
    assert created["email"] is None and created["is_admin"] is False
    for guess in ("", "!", "a long password"):
        assert auth.login("dora", guess).status_code == 401


@pytest.mark.parametrize("taken", ["alice", "ALICE", "Alice"])
def test_a_taken_username_is_400_and_changes_nothing(
    api: Api, svc: Any, alice: Login, taken: str
) -> None:
    before = row_counts(svc)
    resp = api.post("/users", {"username": taken, "password": "a long password"})
    assert assert_json_error(resp, 400, "invalid_request")["error_description"] == (
        "That username is taken."
    )
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": ""},
        {"username": "a b"},
        {"username": "x" * 151},
        {"username": "<script>alert(1)</script>"},
        {"username": "name\x00"},
        {"username": "-leading"},
        {"username": 7},
        {"username": "ok", "password": "short"},
        {"username": "ok", "password": "p" * 1025},
        {"username": "ok", "password": "nul\x00nul nul nul"},
        {"username": "ok", "password": None},
        {"username": "ok", "email": "not-an-email"},
        {"username": "ok", "email": "a@b@c"},
        {"username": "ok", "email": "a @b.test"},
        {"username": "ok", "email": "a@b.test\n"},
        {"username": "ok", "email": "<a>@b.test"},
        {"username": "ok", "email": "a" * 65 + "@b.test"},
        {"username": "ok", "name": "n" * 201},
        {"username": "ok", "name": "two\nlines"},
        {"username": "ok", "name": "bell\x07"},
        {"username": "ok", "admin": "yes"},
        {"username": "ok", "role": "admin"},
    ],
)
def test_bad_new_users_are_400_and_change_nothing(api: Api, svc: Any, body: Any) -> None:
    before = row_counts(svc)
    assert_json_error(api.post("/users", body), 400, "invalid_request")
    assert row_counts(svc) == before


def test_a_surrogate_in_a_new_users_name_is_400(api: Api, svc: Any) -> None:
    before = row_counts(svc)
    resp = api.post(
        "/users",
        data='{"username": "ok", "name": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert_json_error(resp, 400, "invalid_request")
    assert row_counts(svc) == before


def test_patching_a_user_changes_only_the_given_fields(
    api: Api, svc: Any, alice: Login, clock: Any
) -> None:
    uid = user_id(svc, "alice")
    with svc.db.transaction() as s:
        s.execute(update(User).where(User.id == uid).values(email_verified=True, name="Alice"))
    same = api.ok("PATCH", f"/users/{uid}", {"admin": True})
    clock.advance(1)
    assert same["is_admin"] is True and same["name"] == "Alice"
    assert same["email"] == "alice@example.test"
    row = stored(svc, "alice")
    assert row is not None and row.email_verified is True  # untouched email stays verified
    changed = api.ok("PATCH", f"/users/{uid}", {"email": "new@example.test", "name": "  A. L.  "})
    clock.advance(1)
    assert changed["email"] == "new@example.test" and changed["name"] == "A. L."
    row = stored(svc, "alice")
    assert row is not None and row.email_verified is False  # a new address is not verified
    cleared = api.ok("PATCH", f"/users/{uid}", {"email": None, "name": None, "admin": False})
    assert cleared["email"] is None and cleared["name"] is None and cleared["is_admin"] is False
    events = audit(api, action="user.update")
    assert [e["details"]["changed"] for e in reversed(events)] == [
        {"is_admin": True},
        {"email": "new@example.test", "name": "A. L."},
        {"email": None, "name": None, "is_admin": False},
    ]
    # Nothing to change: nothing audited.
    api.ok("PATCH", f"/users/{uid}", {"admin": False})
    assert len(audit(api, action="user.update")) == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "renamed"},
        {"email": "nope"},
        {"email": ""},
        {"name": "x" * 201},
        {"name": "tab\tbed"},
        {"admin": None},
        {"admin": 1},
        {"is_admin": True},
        {"disabled": True},
    ],
)
def test_bad_patches_are_400_and_change_nothing(
    api: Api, svc: Any, alice: Login, body: Any
) -> None:
    uid = user_id(svc, "alice")
    before = api.ok("GET", f"/users/{uid}")
    assert_json_error(api.patch(f"/users/{uid}", body), 400, "invalid_request")
    assert api.ok("GET", f"/users/{uid}") == before


def test_deleting_a_user_through_the_api_ends_everything_they_hold(
    api: Api, svc: Any, auth: AuthActions, rs: RegisteredClient, alice: Login
) -> None:
    uid = user_id(svc, "alice")
    body = api.ok("DELETE", f"/users/{uid}", {"reason": "left the company"})
    assert body["user_id"] == uid and body["deleted"] is True
    assert body["sessions_killed"] == 1 and body["pseudonym"].startswith("deleted-user-")
    assert introspect(auth, rs, alice.tokens["access_token"]) == {"active": False}
    refused = alice.refresh()
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert_json_error(api.get(f"/users/{uid}"), 404, "not_found")
    assert_json_error(api.call("DELETE", f"/users/{uid}"), 404, "not_found")
    [event] = audit(api, action="user.delete")
    assert event["actor"] == "client:ops" and event["target"] == body["pseudonym"]
    assert event["reason"] == "left the company"
    assert audit(api, target=uid) == []  # every record now names the pseudonym
    assert api.ok("GET", "/users?q=alice")["users"] == []


def test_deleting_without_a_body_uses_the_default_reason(api: Api, svc: Any, alice: Login) -> None:
    api.ok("DELETE", f"/users/{user_id(svc, 'alice')}")
    [event] = audit(api, action="user.delete")
    assert event["reason"] == "deleted by operator"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/users/" + "0" * 32, {"name": "x"}),
        ("DELETE", "/users/" + "0" * 32, None),
        ("PATCH", "/users/nobody", {"name": "x"}),
        ("DELETE", "/users/%00", None),
        ("DELETE", "/users/" + "a" * 65, None),
        ("DELETE", "/users/<script>", None),
    ],
)
def test_changing_an_unknown_user_is_404_and_changes_nothing(
    api: Api, svc: Any, alice: Login, method: str, path: str, body: Any
) -> None:
    before = row_counts(svc)
    assert_json_error(api.call(method, path, body), 404, "not_found")
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "body", [{"reason": 5}, {"reason": "x" * 501}, {"reason": "nul\x00"}, {"why": "x"}]
)
def test_a_bad_deletion_reason_is_400_and_deletes_nothing(
    api: Api, svc: Any, alice: Login, body: Any
) -> None:
    before = row_counts(svc)
    assert_json_error(api.call("DELETE", f"/users/{user_id(svc, 'alice')}", body), 400)
    assert row_counts(svc) == before
    assert alice.refresh().status_code == 200
