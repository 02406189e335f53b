"""/account: a user sees the apps they consented to and withdraws a consent (ASVS 10.7,
issue 13 item 7): the consent goes, the app's refresh tokens for the user stop working,
the next authorization asks again, and the withdrawal is audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from idp.accounts.models import Consent
from idp.audit.models import AuditEvent
from tests.bad_input.helpers import assert_clean_error
from tests.support.auth import AuthActions, RegisteredClient, csrf_from, query_of

pytestmark = pytest.mark.usefixtures("no_background_worker")

SCOPE = "openid email offline_access"


def consented_tokens(auth: AuthActions, rp: RegisteredClient) -> dict[str, Any]:
    """The consent page answered "allow", then the code exchanged: the tokens."""
    params = auth.authorize_params(rp, scope=SCOPE)
    page = auth.client.get("/authorize?" + urlencode(params))
    assert page.status_code == 200 and "decision" in page.get_data(as_text=True)
    allowed = auth.client.post(
        "/authorize?" + urlencode(params),
        data={"decision": "allow", "csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert allowed.status_code == 303, allowed.get_data(as_text=True)[:300]
    code = query_of(allowed.headers["Location"])["code"]
    resp = auth.exchange(rp, code, auth.verifier)
    assert resp.status_code == 200, resp.get_json()
    return dict(resp.get_json())


def refresh(auth: AuthActions, rp: RegisteredClient, token: str) -> Any:
    return auth.token(rp, {"grant_type": "refresh_token", "refresh_token": token})


def introspect(auth: AuthActions, rp: RegisteredClient, token: str) -> dict[str, Any]:
    resp = auth.client.post("/introspect", data={"token": token}, headers=rp.basic())
    assert resp.status_code == 200
    return dict(resp.get_json())


def consents(svc: Any) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Consent)) or 0)


@pytest.fixture
def partners(auth: AuthActions) -> tuple[RegisteredClient, RegisteredClient]:
    """Two third-party apps (consent screens), each holding tokens of alice's."""
    auth.user()
    auth.login()
    photos = auth.oauth_client("photos", first_party=False, scope=SCOPE, name="Photo <Print>")
    notes = auth.oauth_client("notes", first_party=False, scope=SCOPE, name="Notes")
    return photos, notes


def test_the_account_page_lists_consents_and_withdrawing_one_revokes_its_tokens(
    auth: AuthActions, svc: Any, partners: tuple[RegisteredClient, RegisteredClient]
) -> None:
    photos, notes = partners
    photo_tokens = consented_tokens(auth, photos)
    note_tokens = consented_tokens(auth, notes)
    page = auth.client.get("/account").get_data(as_text=True)
    assert "Photo &lt;Print&gt;" in page and "<Print>" not in page  # escaped
    assert "openid email offline_access" in page
    assert 'action="/account/consents/photos/withdraw"' in page
    resp = auth.client.post(
        "/account/consents/photos/withdraw", data={"csrf_token": csrf_from(page)}
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account")
    after = auth.client.get("/account").get_data(as_text=True)
    assert "Photo &lt;Print&gt;" not in after and ">Notes<" in after
    # The withdrawn app's refresh and access tokens stop working; the other app's do not.
    assert refresh(auth, photos, photo_tokens["refresh_token"]).status_code == 400
    assert introspect(auth, photos, photo_tokens["access_token"]) == {"active": False}
    assert refresh(auth, notes, note_tokens["refresh_token"]).status_code == 200
    # The next authorization asks again.
    again = auth.authorize(photos, scope=SCOPE)
    assert again.status_code == 200 and "decision" in again.get_data(as_text=True)
    with svc.db.read() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "consent.withdraw"))
    assert event.actor == "alice" and event.target == "photos"
    assert event.details["scope"] == SCOPE and event.details["families_revoked"] == 1


def test_withdrawing_needs_the_csrf_token_and_changes_nothing_without_it(
    auth: AuthActions, svc: Any, partners: tuple[RegisteredClient, RegisteredClient]
) -> None:
    photos, _ = partners
    tokens = consented_tokens(auth, photos)
    for data in ({}, {"csrf_token": "forged"}):
        resp = auth.client.post("/account/consents/photos/withdraw", data=data)
        assert resp.status_code == 400
    assert consents(svc) == 1
    assert refresh(auth, photos, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    "client_id", ["nobody", "notes", "x" * 300, "%00", "<script>", "photos%2F..%2F"]
)
def test_withdrawing_what_was_never_granted_is_404_and_changes_nothing(
    auth: AuthActions,
    svc: Any,
    partners: tuple[RegisteredClient, RegisteredClient],
    client_id: str,
) -> None:
    photos, _ = partners
    consented_tokens(auth, photos)
    token = csrf_from(auth.client.get("/account").get_data(as_text=True))
    resp = auth.client.post(f"/account/consents/{client_id}/withdraw", data={"csrf_token": token})
    assert_clean_error(resp, json_body=False, status=404)
    assert consents(svc) == 1


def test_withdrawing_is_post_only(
    auth: AuthActions, svc: Any, partners: tuple[RegisteredClient, RegisteredClient]
) -> None:
    photos, _ = partners
    consented_tokens(auth, photos)
    assert auth.client.get("/account/consents/photos/withdraw").status_code == 405
    assert consents(svc) == 1


def test_a_user_cannot_withdraw_someone_elses_consent(
    app: Any, auth: AuthActions, svc: Any, partners: tuple[RegisteredClient, RegisteredClient]
) -> None:
    photos, _ = partners
    tokens = consented_tokens(auth, photos)
    auth.user("mallory")
    mallory = AuthActions(app, app.test_client())
    assert mallory.login("mallory").status_code == 303
    token = csrf_from(mallory.client.get("/account").get_data(as_text=True))
    resp = mallory.client.post("/account/consents/photos/withdraw", data={"csrf_token": token})
    assert resp.status_code == 404
    assert consents(svc) == 1
    assert refresh(auth, photos, tokens["refresh_token"]).status_code == 200


def test_withdrawing_needs_a_login(client: Any, auth: AuthActions, partners: Any) -> None:
    anonymous = AuthActions(auth.app, auth.app.test_client())
    page = anonymous.client.get("/login").get_data(as_text=True)
    resp = anonymous.client.post(
        "/account/consents/photos/withdraw", data={"csrf_token": csrf_from(page)}
    )
    assert resp.status_code == 303 and "/login" in resp.headers["Location"]
