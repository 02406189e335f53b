"""Keys on a schedule (``[keys] rotate_every``, issue 14 item 7): the janitor rotates when
a rotation is due, a key is published one served JWKS max-age before it signs, a retired
key stays until the last thing it signed has expired, two schedulers make one rotation,
and the dashboard and `idp keys list` show the plan."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import delete, select

from idp.admin.queries import events
from idp.janitor import rotate_keys, run
from idp.keys.models import ACTIVE, NEXT, RETIRED, SigningKey
from tests.support.scrape import scrape

EVERY = 3600


@pytest.fixture
def config_overrides():
    return {"keys": {"rotate_every": EVERY, "jwks_max_age": 300}}


def rows(svc, alg="ES256"):
    with svc.db.read() as s:
        return {
            k.kid: k
            for k in s.scalars(
                select(SigningKey).where(SigningKey.alg == alg).order_by(SigningKey.created_at)
            )
        }


def of_state(svc, state, alg="ES256"):
    return [k for k in rows(svc, alg).values() if k.state == state]


def published(keys):
    return {k["kid"] for k in json.loads(keys.jwks()[0])["keys"]}


def test_the_schedule_rotates_when_due_and_not_before(svc, fresh_keys, clock):
    fresh_keys.ensure({"ES256"} | svc.algs_in_use())
    [active], [nxt] = of_state(svc, ACTIVE), of_state(svc, NEXT)
    start = clock.now()
    assert set(fresh_keys.schedule().values()) == {start + dt.timedelta(seconds=EVERY)}
    clock.advance(EVERY - 1)
    assert rotate_keys(svc) == 0
    assert fresh_keys.signer("ES256").kid == active.kid
    clock.advance(1)
    assert rotate_keys(svc) == len(fresh_keys.algs())
    assert fresh_keys.signer("ES256").kid == nxt.kid
    assert [k.kid for k in of_state(svc, RETIRED)] == [active.kid]
    [new_next] = of_state(svc, NEXT)
    assert new_next.created_at == clock.now()  # published now, one rotate_every ahead
    assert fresh_keys.schedule()["ES256"] == clock.now() + dt.timedelta(seconds=EVERY)
    # Audited as the manual rotation is, naming the schedule.
    [rotation] = events(svc, kind="keys.rotate")
    assert rotation["actor"] == "schedule"
    assert nxt.kid in rotation["details"]["active"]
    assert rotation["details"]["scheduled"] is True
    # Nothing more is due until the next interval.
    clock.advance(EVERY - 1)
    assert rotate_keys(svc) == 0


def test_a_next_key_created_late_waits_one_max_age_before_it_signs(svc, fresh_keys, clock):
    """A next key that appears between rotations (a lost row, an algorithm taken into
    use) must still be published one max-age before the schedule promotes it."""
    fresh_keys.ensure({"ES256"})
    clock.advance(EVERY - 10)
    with svc.db.transaction() as s:
        s.execute(delete(SigningKey).where(SigningKey.state == NEXT))
    fresh_keys.ensure({"ES256"})
    [late] = of_state(svc, NEXT)
    max_age = svc.config.jwks_max_age
    clock.advance(10)  # rotate_every has passed since the active key began
    assert rotate_keys(svc) == 0
    clock.advance(max_age - 11)
    assert rotate_keys(svc) == 0
    clock.advance(1)
    assert rotate_keys(svc) == 1
    assert fresh_keys.signer("ES256").kid == late.kid


def test_every_key_is_published_at_least_one_max_age_before_its_first_signature(
    svc, fresh_keys, clock
):
    fresh_keys.ensure({"ES256"})
    first = fresh_keys.signer("ES256").kid
    max_age = dt.timedelta(seconds=svc.config.jwks_max_age)
    seen: dict[str, dt.datetime] = {}
    signs: dict[str, dt.datetime] = {}
    for step in range(4 * EVERY // 60 + 1):
        if step == EVERY // 60 + 7:
            # A new next key mid-interval: it, too, must wait one max-age.
            with svc.db.transaction() as s:
                s.execute(delete(SigningKey).where(SigningKey.state == NEXT))
            fresh_keys.ensure({"ES256"})
        run(svc)
        for kid in published(fresh_keys):
            seen.setdefault(kid, clock.now())
        signs.setdefault(fresh_keys.signer("ES256").kid, clock.now())
        clock.advance(60)
    later = {kid: at for kid, at in signs.items() if kid != first}
    assert len(later) >= 3
    for kid, at in later.items():
        assert at - seen[kid] >= max_age, kid


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "keys": {"rotate_every": EVERY, "jwks_max_age": 300},
            # Tokens shorter than back-channel logout tokens (120 s), also signed by it.
            "tokens": {"access_token_ttl": 30, "id_token_ttl": 30, "client_credentials_ttl": 30},
        }
    ],
)
def test_a_retired_key_stays_until_the_last_thing_it_signed_expired_then_is_purged(
    svc, fresh_keys, clock, auth, client
):
    rp = auth.oauth_client(
        "svc", grant_types=["client_credentials"], scope="api", redirect_uri="https://x.test/cb"
    )
    fresh_keys.ensure(svc.algs_in_use())
    old = fresh_keys.signer("ES256").kid
    clock.advance(EVERY - 1)
    resp = client.post(
        "/token", data={"grant_type": "client_credentials", "scope": "api"}, headers=rp.basic()
    )
    token = resp.get_json()["access_token"]
    clock.advance(1)
    assert rotate_keys(svc) >= 1
    [retired] = [k for k in of_state(svc, RETIRED) if k.kid == old]
    # The longest thing it signed: a logout token (120 s), longer than these tokens.
    assert retired.remove_after - retired.retired_at >= dt.timedelta(seconds=120)
    assert retired.remove_after == retired.retired_at + dt.timedelta(
        seconds=svc.config.longest_signed_ttl + 60
    )
    fresh_keys.verify(token)  # signed by the retired key, still verifiable
    clock.advance((retired.remove_after - clock.now()).total_seconds() - 1)
    run(svc)
    assert old in rows(svc) and old in published(fresh_keys)
    clock.advance(1)
    counts = run(svc)
    assert counts["keys_rotated"] == 0
    assert old not in rows(svc) and old not in published(fresh_keys)


def test_concurrent_schedulers_make_one_rotation(svc, fresh_keys, clock):
    fresh_keys.ensure({"ES256", "RS256"})
    clock.advance(EVERY)
    barrier = threading.Barrier(8)
    results: list[int] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            barrier.wait()
            results.append(rotate_keys(svc))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results) == [0] * 7 + [2]
    for alg in ("ES256", "RS256"):
        assert sorted(k.state for k in rows(svc, alg).values()) == [ACTIVE, NEXT, RETIRED]
    assert len(events(svc, kind="keys.rotate")) == 1


@pytest.mark.parametrize(
    ("config_overrides", "expected"),
    [
        ({"keys": {"rotate_every": 0, "jwks_max_age": 300}}, 300),
        ({"keys": {"rotate_every": "2h", "jwks_max_age": 300}}, 300),
        ({"keys": {"rotate_every": 120, "jwks_max_age": 300}}, 120),
    ],
)
def test_jwks_max_age_never_exceeds_the_lead_of_a_key_over_its_signature(
    client, svc, config_overrides, expected
):
    assert svc.config.jwks_max_age == expected
    for path in ("/jwks.json", "/jwks.json?through=flask"):
        resp = client.get(path)
        assert resp.headers["Cache-Control"] == f"public, max-age={expected}"


def test_the_dashboard_and_the_api_show_the_schedule(svc, fresh_keys, clock, auth):
    fresh_keys.ensure({"ES256"})
    clock.advance(600)
    [nxt], [active] = of_state(svc, NEXT), of_state(svc, ACTIVE)
    due = active.activated_at + dt.timedelta(seconds=EVERY)
    auth.user("root", admin=True)
    auth.login("root")
    page = auth.client.get("/admin/keys").get_data(as_text=True)
    assert "Automatic rotation every <strong>1 h</strong>" in page
    assert f'Next rotation: ES256 <time datetime="{due.isoformat()}"' in page
    assert "(in 50 min)" in page  # the next key activates, the active one retires
    assert page.count(f'<time datetime="{due.isoformat()}"') == 3
    assert "max-age=300" in page
    from idp.admin.queries import keys_list

    by_kid = {k["kid"]: k for k in keys_list(svc)}
    assert by_kid[nxt.kid]["activates_at"] == due and by_kid[nxt.kid]["retires_at"] is None
    assert by_kid[active.kid]["retires_at"] == due
    assert by_kid[active.kid]["kek_id"] == svc.keys.keyring.id


@pytest.mark.parametrize("config_overrides", [{"keys": {"rotate_every": 0}}])
def test_without_a_schedule_the_dashboard_says_so_and_nothing_rotates(svc, fresh_keys, clock, auth):
    fresh_keys.ensure({"ES256"})
    clock.advance(365 * 86400)
    assert rotate_keys(svc) == 0
    assert fresh_keys.schedule() == {}
    auth.user("root", admin=True)
    auth.login("root")
    page = auth.client.get("/admin/keys").get_data(as_text=True)
    assert "No automatic rotation" in page


def test_the_background_janitor_of_a_serving_process_runs_the_schedule(svc, fresh_keys, clock):
    from idp import janitor

    fresh_keys.ensure(svc.algs_in_use())
    before = fresh_keys.signer("ES256").kid
    clock.advance(EVERY)
    janitor.Janitor(svc)._run()  # what maybe_run starts in a thread, once per interval
    after = fresh_keys.signer("ES256").kid
    assert after != before
    assert [k.kid for k in of_state(svc, RETIRED)] == [before]


def test_metrics_show_how_late_a_scheduled_rotation_is(svc, fresh_keys, client, clock):
    """idp_signing_key_rotation_overdue_seconds (the IdpSigningKeyRotationOverdue alert):
    0 while on time, then how long past due the rotation is while no janitor runs; back
    to 0 once one has rotated."""
    in_use = svc.algs_in_use()
    fresh_keys.ensure(in_use)

    def late():
        samples = scrape(client)
        return {
            dict(labels)["alg"]: v
            for (name, labels), v in samples.items()
            if name == "idp_signing_key_rotation_overdue_seconds"
        }

    assert late() == dict.fromkeys(in_use, 0.0)
    clock.advance(EVERY + 90)  # no janitor ran
    assert late() == dict.fromkeys(in_use, 90.0)
    assert rotate_keys(svc) == len(in_use)
    assert late() == dict.fromkeys(in_use, 0.0)
