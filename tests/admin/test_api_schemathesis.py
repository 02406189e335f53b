"""Property-based check of the admin API against its own OpenAPI document (schemathesis):
generated requests, valid and invalid, never get a 500, and every answer keeps to the
documented status codes, content types and schemas."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from admin import openapi
from tests.admin.test_api import API, admin_token

# Operations whose inputs have rules the schema cannot state, so a schema-valid request may
# rightly be a 400: the cursor is opaque, and create_client/update_client check redirect
# URIs, grant combinations and reserved claim names.
SEMANTIC = {"GET /sessions", "POST /clients", "PATCH /clients/{client_id}"}


class Current:
    """The test's app and admin token. The schema is built at import time; the app and the
    token come per test from fixtures, so schemathesis reaches them through here."""

    app: Any = None
    token: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)  # type: ignore[no-any-return]


CURRENT = Current()
schema = schemathesis.openapi.from_dict(openapi.document(API))
schema.app = CURRENT


@schema.auth(refresh_interval=None)
class OpsToken:
    def get(self, case: Any, context: Any) -> str:
        return CURRENT.token

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def current(app: Any, auth: Any) -> Current:
    ops = auth.oauth_client(
        "ops",
        grant_types=["client_credentials"],
        admin_client=True,
        scope="idp:admin",
        redirect_uri="https://ops.example.test/x",
    )
    CURRENT.app, CURRENT.token = app, admin_token(auth, ops)
    return CURRENT


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(
    max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
)
def test_the_api_keeps_to_its_document(case: Any, current: Current) -> None:
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC else []
    case.call_and_validate(excluded_checks=excluded)
