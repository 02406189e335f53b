"""Property-based check of the admin API against its own OpenAPI document (schemathesis):
generated requests, valid and invalid, never get a 500; every answer keeps to the
documented status codes, content types and schemas; and a request the document accepts is
accepted, unless a rule the document cannot state turns it down (SEMANTIC_REFUSALS).

Derandomized under `make test` (tests/support/fuzzing.py); `make fuzz` hunts with fresh
examples."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from idp.admin import openapi
from tests.admin.test_api import API, admin_token
from tests.admin.test_api_contract import SEMANTIC_REFUSALS


class Current:
    """The test's app and admin token. The schema is built at import time; the app and the
    token come per test from fixtures, so schemathesis reaches them through here."""

    app: Any = None
    token: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)


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


def only_semantic_refusals(ctx: Any, response: Any, case: Any) -> None:
    """positive_data_acceptance, narrowed: a schema-valid request may get a 400 only for a
    rule listed in SEMANTIC_REFUSALS for its operation."""
    if not case.meta or not case.meta.generation.mode.is_positive:
        return
    if response.status_code != 400:
        return
    description = str(response.json().get("error_description", ""))
    allowed = SEMANTIC_REFUSALS.get(case.operation.label, ())
    assert allowed and description.startswith(allowed), (
        f"the document accepts this request, the server refused it: {description}"
    )


@pytest.mark.slow
@pytest.mark.fuzz
@schema.parametrize()
def test_the_api_keeps_to_its_document(case: Any, current: Current) -> None:
    semantic = case.operation.label in SEMANTIC_REFUSALS
    case.call_and_validate(
        excluded_checks=[positive_data_acceptance] if semantic else [],
        additional_checks=[only_semantic_refusals] if semantic else [],
    )
