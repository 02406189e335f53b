"""The `idp` command as users' scripts call it (SPEC §5)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys

import pytest

from idp import create_app, migrate
from tests.conftest import TEST_KEK

# Each test runs a process (the idp command, curl) or a live server.
pytestmark = pytest.mark.slow


def clean_environ(**idp: str) -> dict[str, str]:
    """os.environ without the caller's IDP_ variables (a stray one would stop idp), plus
    ``idp``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("IDP_")}, **idp}


def idp(cwd, *args, stdin="", **env):
    """The real `idp` command in ``cwd``, with only the IDP_ variables given."""
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", *args],
        env=clean_environ(**env),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def run(tmp_path):
    env = clean_environ(
        IDP_SERVER__INSTANCE_PATH=str(tmp_path),
        IDP_DATABASE__URL=f"sqlite:///{tmp_path}/cli.db",
        IDP_KEK=TEST_KEK,
        IDP_CONFIG=os.devnull,
    )

    def run(*args, stdin=None, check=True):
        proc = subprocess.run(
            [sys.executable, "-m", "idp.cli", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    migrate.upgrade(f"sqlite:///{tmp_path}/cli.db")
    return run


def test_db_upgrade_command(tmp_path):
    env = {
        **os.environ,
        "IDP_DATABASE__URL": f"sqlite:///{tmp_path}/up.db",
        "IDP_CONFIG": os.devnull,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "idp.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0 and "database is at head" in proc.stdout


def test_users_create_reads_password_from_stdin(run):
    out = json.loads(
        run(
            "users",
            "create",
            "carol",
            "--password-stdin",
            "--email",
            "carol@example.test",
            "--admin",
            stdin="a long password\n",
        ).stdout
    )
    assert out["username"] == "carol" and out["admin"] is True
    dup = run(
        "users", "create", "carol", "--password-stdin", stdin="a long password\n", check=False
    )
    assert dup.returncode == 1 and "taken" in dup.stderr


def test_clients_create_dpop_bound(run):
    """RFC 9449 §5.2.1: a client whose every token request must carry a proof."""
    out = run(
        "clients",
        "create",
        "svc",
        "--grant",
        "client_credentials",
        "--scope",
        "api",
        "--dpop-bound",
    ).stdout
    assert json.loads(out)["dpop_bound_access_tokens"] is True
    plain = run("clients", "create", "other", "--grant", "client_credentials").stdout
    assert json.loads(plain)["dpop_bound_access_tokens"] is False


def test_clients_create_can_require_a_verified_email(run):
    """Users without a verified address get no code for such a client (issue 13)."""
    proc = run(
        "clients",
        "create",
        "strict",
        "--redirect-uri",
        "https://strict.example.test/cb",
        "--require-verified-email",
    )
    assert json.loads(proc.stdout)["require_verified_email"] is True


def test_clients_create_prints_one_json_object(run):
    out = run(
        "clients",
        "create",
        "shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--redirect-uri",
        "https://shop.example/cb2",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--scope",
        "openid email",
        "--claim",
        "tier=gold",
        "--backchannel-logout-uri",
        "https://shop.example/bcl",
    ).stdout
    data = json.loads(out)
    assert data["client_id"] == "shop" and len(data["client_secret"]) >= 43
    assert data["redirect_uris"] == ["https://shop.example/cb", "https://shop.example/cb2"]
    assert data["grant_types"] == ["authorization_code", "refresh_token"]
    assert data["claims"] == {"tier": "gold"}
    public = json.loads(
        run("clients", "create", "spa", "--public", "--redirect-uri", "http://127.0.0.1/cb").stdout
    )
    assert "client_secret" not in public
    assert public["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize(
    "args",
    [
        ["--redirect-uri", "http://evil.example/cb"],
        ["--redirect-uri", "https://x.example/cb#frag"],
        ["--redirect-uri", "javascript:alert(1)"],
        ["--redirect-uri", "https://x.example/cb", "--claim", "iss=me"],
        ["--redirect-uri", "https://x.example/cb", "--claim", "novalue"],
        ["--public", "--grant", "client_credentials"],
    ],
)
def test_clients_create_refuses_unsafe_registrations(run, args):
    proc = run("clients", "create", "bad", *args, check=False)
    assert proc.returncode != 0
    assert proc.stderr.startswith(("idp: ", "Usage", "Error")), proc.stderr


def test_keys_rotate_and_list(run):
    before = [json.loads(line) for line in run("keys", "list").stdout.splitlines()]
    rotated = json.loads(run("keys", "rotate").stdout)["active"]
    after = [json.loads(line) for line in run("keys", "list").stdout.splitlines()]
    states = {k["kid"]: k["state"] for k in after}
    assert all(states[kid] == "active" for kid in rotated)
    assert any(k["state"] == "retired" for k in after) or not before
    assert {"ES256", "RS256"} <= {k["alg"] for k in after}


@pytest.fixture
def live_session(run, tmp_path):
    """A user logged in through the app on the CLI's database; returns (app, browser)."""
    from idp import create_app
    from tests.support.auth import AuthActions

    run("users", "create", "dave", "--password-stdin", stdin="correct horse battery\n")
    app = create_app(
        {
            "server": {"instance_path": str(tmp_path), "secret_key": "k"},
            "database": {"url": f"sqlite:///{tmp_path}/cli.db"},
            "keys": {"kek": TEST_KEK},
        }
    )
    browser = AuthActions(app, app.test_client())
    assert browser.login("dave").status_code == 303
    yield app, browser
    app.extensions["idp"].close()


def test_sessions_list_and_kill(run, live_session):
    _, browser = live_session
    [row] = [
        json.loads(line) for line in run("sessions", "list", "--user", "dave").stdout.splitlines()
    ]
    assert row["user"] == "dave" and row["ended_at"] is None
    out = json.loads(run("sessions", "kill", row["sid"], "--reason", "lost phone").stdout)
    assert out == {"sid": row["sid"], "killed": True, "reason": "lost phone"}
    assert browser.client.get("/account").status_code == 303
    assert run("sessions", "list", "--user", "dave").stdout == ""
    assert run("sessions", "kill", "nope", check=False).returncode == 1


def test_tokens_revoke_user_kills_everything(run, live_session):
    _, browser = live_session
    out = json.loads(run("tokens", "revoke-user", "dave").stdout)
    assert out == {"user": "dave", "sessions_killed": 1}
    assert browser.client.get("/account").status_code == 303


def test_users_disable_and_enable(run, live_session):
    _, browser = live_session
    run("users", "disable", "dave")
    assert browser.client.get("/account").status_code == 303
    assert browser.login("dave").status_code == 401
    run("users", "enable", "dave")
    assert browser.login("dave").status_code == 303


def test_users_list_and_update(run, live_session):
    run("users", "create", "erin", "--password-stdin", stdin="a long password\n")
    listed = [json.loads(line) for line in run("users", "list").stdout.splitlines()]
    assert [u["username"] for u in listed] == ["dave", "erin"]
    assert listed[1]["email"] is None and listed[1]["admin"] is False
    out = json.loads(
        run(
            "users",
            "update",
            "erin",
            "--email",
            "erin@example.test",
            "--name",
            "Erin E.",
            "--admin",
        ).stdout
    )
    assert out["email"] == "erin@example.test" and out["name"] == "Erin E."
    assert out["admin"] is True
    assert out["changed"] == {"email": "erin@example.test", "name": "Erin E.", "is_admin": True}
    cleared = json.loads(run("users", "update", "erin", "--email", "", "--no-admin").stdout)
    assert cleared["email"] is None and cleared["admin"] is False and cleared["name"] == "Erin E."
    assert json.loads(run("users", "update", "erin").stdout)["changed"] == {}
    bad = run("users", "update", "erin", "--email", "not an email", check=False)
    assert bad.returncode == 1 and "Email address is not valid" in bad.stderr
    assert run("users", "update", "nobody", "--name", "x", check=False).returncode == 1
    after = [json.loads(line) for line in run("users", "list").stdout.splitlines()]
    assert after[1]["email"] is None  # the refused update changed nothing


def test_users_delete_asks_first_and_ends_everything(run, live_session):
    _, browser = live_session
    unasked = run("users", "delete", "dave", check=False)  # no terminal, no --yes
    assert unasked.returncode == 2 and "--yes" in unasked.stderr
    assert browser.client.get("/account").status_code == 200
    out = json.loads(run("users", "delete", "dave", "--yes", "--reason", "left").stdout)
    assert out["user"] == "dave" and out["deleted"] is True and out["sessions_killed"] == 1
    assert out["pseudonym"].startswith("deleted-user-")
    assert browser.client.get("/account").status_code == 303
    assert browser.login("dave").status_code == 401
    assert run("users", "list").stdout == ""
    again = run("users", "delete", "dave", "--yes", check=False)
    assert again.returncode == 1 and "no user" in again.stderr
    exported = [json.loads(line) for line in run("audit", "export").stdout.splitlines()]
    assert not any("dave" in json.dumps(e) for e in exported)
    [deleted] = [e for e in exported if e["action"] == "user.delete"]
    assert deleted["target"] == out["pseudonym"] and deleted["actor"] == "cli"


def test_clients_rotate_secret_and_revoke_tokens(run, live_session):
    app, _ = live_session
    created = json.loads(
        run("clients", "create", "batch", "--grant", "client_credentials", "--scope", "jobs").stdout
    )
    client = app.test_client()
    old = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("batch", created["client_secret"]),
    )
    assert old.status_code == 200
    new = json.loads(run("clients", "rotate-secret", "batch").stdout)["client_secret"]
    assert (
        client.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("batch", created["client_secret"]),
        ).status_code
        == 401
    )
    fresh = client.post("/token", data={"grant_type": "client_credentials"}, auth=("batch", new))
    assert fresh.status_code == 200
    out = json.loads(run("clients", "revoke-tokens", "batch").stdout)
    assert out["client_id"] == "batch"
    info = client.post(
        "/introspect", data={"token": fresh.get_json()["access_token"]}, auth=("batch", new)
    )
    assert info.get_json() == {"active": False}
    listed = [json.loads(line)["client_id"] for line in run("clients", "list").stdout.splitlines()]
    assert "batch" in listed


def test_version_prints_the_package_version(tmp_path):
    proc = idp(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"idp {importlib.metadata.version('idp')}\n"
    assert list(tmp_path.iterdir()) == []


def test_sessions_list_of_an_unknown_user_fails_like_the_other_commands(run):
    proc = run("sessions", "list", "--user", "nobody", check=False)
    assert (proc.returncode, proc.stderr) == (1, "idp: no user 'nobody'\n")


def test_killing_an_ended_session_says_so_and_records_nothing_new(run, live_session):
    from sqlalchemy import func, select

    from idp.audit.models import AuditEvent
    from idp.revocations.models import RevocationEntry
    from idp.sessions.models import BrowserSession

    app, _ = live_session
    [row] = [json.loads(line) for line in run("sessions", "list").stdout.splitlines()]
    sid = row["sid"]
    # Found by a fresh-clone run: a sid that began with "-" was taken for an option.
    assert re.fullmatch(r"[0-9a-f]{32}", sid), sid
    run("sessions", "kill", sid, "--reason", "lost phone")
    again = run("sessions", "kill", sid, "--reason", "stolen laptop", check=False)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr == f"idp: session '{sid}' already ended (reason: lost phone)\n"
    with app.extensions["idp"].db.read() as s:
        assert s.get(BrowserSession, sid).end_reason == "lost phone"
        kills = select(func.count()).where(
            AuditEvent.action == "session.kill", AuditEvent.target == sid
        )
        assert s.scalar(kills) == 1
        denials = select(func.count()).where(
            RevocationEntry.kind == "sid", RevocationEntry.value == sid
        )
        assert s.scalar(denials) == 1


def test_users_create_without_a_terminal_says_how_to_pass_the_password(run):
    proc = run("users", "create", "alice", stdin="", check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "idp: no terminal to ask for the password; "
        "pass it on standard input with --password-stdin\n"
    )
    assert run("sessions", "list", "--user", "alice", check=False).returncode == 1


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("nope://x", "unknown database 'nope' (use sqlite or postgresql+psycopg)"),
        (
            "postgresql+nope://idp:s3cret@db/idp",
            "unknown database 'postgresql+nope' (use sqlite or postgresql+psycopg)",
        ),
        (
            "idp:s3cret@db",
            "not a database URL (for example sqlite:///instance/idp.db or "
            "postgresql+psycopg://user@host/dbname)",
        ),
    ],
)
def test_a_bad_database_url_is_one_line_naming_the_key(tmp_path, url, problem):
    proc = idp(tmp_path, "keys", "list", IDP_DATABASE__URL=url)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"idp: configuration error: database.url: {problem}"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("IDP_SERVER__PROT", "did you mean IDP_SERVER__PORT?"),
        ("IDP_DATABASE_URL", "did you mean IDP_DATABASE__URL?"),
        ("IDP_NOPE__X", "settings are IDP_<SECTION>__<KEY>, for example IDP_DATABASE__URL"),
    ],
)
def test_an_idp_variable_that_names_no_setting_stops_the_command(tmp_path, name, hint):
    proc = idp(tmp_path, "keys", "list", **{name: "sqlite:///elsewhere.db"})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"idp: configuration error: {name}: names no setting ({hint})"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["sessions", "list"],
        ["users", "create", "alice", "--password-stdin"],
        ["janitor"],
    ],
)
def test_outside_the_project_folder_a_command_stops_before_creating_anything(tmp_path, args):
    proc = idp(tmp_path, *args, stdin="a long password\n")
    here = tmp_path.resolve()
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"idp: no idp database at sqlite:///{here}/instance/idp.db "
        f"(no config.toml in {here}, IDP_CONFIG unset): run idp from the project folder, "
        "set IDP_CONFIG, or run 'idp db upgrade' first"
    ]
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no instance/, KEK, secret key or SQLite file


def test_a_database_without_the_idp_schema_is_named_with_the_config_used(tmp_path):
    (tmp_path / "empty.db").touch()
    proc = idp(
        tmp_path,
        "clients",
        "list",
        IDP_CONFIG=os.devnull,
        IDP_DATABASE__URL="sqlite:///empty.db",
        IDP_SERVER__INSTANCE_PATH=str(tmp_path / "instance"),
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"idp: no idp database at sqlite:///{tmp_path.resolve()}/empty.db "
        f"(config from IDP_CONFIG={os.devnull}; database.url from IDP_DATABASE__URL): "
        "run 'idp db upgrade' first"
    ]
    assert not (tmp_path / "instance").exists()


def test_a_database_behind_the_migrations_asks_for_db_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    migrate.upgrade(url)
    migrate.downgrade(url, "-1")
    [head] = migrate.head_revisions()
    proc = idp(tmp_path, "keys", "list", IDP_CONFIG=os.devnull, IDP_DATABASE__URL=url)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"idp: the database at {url} is at revision ")
    assert line.endswith(
        f", this idp needs {head} (config from IDP_CONFIG={os.devnull}; "
        "database.url from IDP_DATABASE__URL): run 'idp db upgrade' first"
    )


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path):
    proc = idp(
        tmp_path,
        "keys",
        "list",
        IDP_CONFIG=os.devnull,
        IDP_DATABASE__URL="postgresql+psycopg://idp:s3cret@127.0.0.1:1/idp",
    )
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith(
        "idp: cannot open the database at postgresql+psycopg://idp:***@127.0.0.1:1/idp: "
    )
    assert "s3cret" not in proc.stderr


def test_audit_export_resumes_after_its_cursor_without_gaps_or_repeats(run):
    for name in ("ann", "bob", "cat"):
        run("users", "create", name, "--password-stdin", stdin="a long password\n")
    first = [
        json.loads(line) for line in run("audit", "export", "--limit", "2").stdout.splitlines()
    ]
    assert len(first) == 2
    rest = run("audit", "export", "--after", first[-1]["cursor"]).stdout.splitlines()
    events = first + [json.loads(line) for line in rest]
    created = [e["details"]["username"] for e in events if e["action"] == "user.create"]
    assert created == ["ann", "bob", "cat"]
    assert len({e["id"] for e in events}) == len(events)
    assert run("audit", "export", "--after", events[-1]["cursor"]).stdout == ""
    bad = run("audit", "export", "--after", "garbage", check=False)
    assert bad.returncode == 2 and "not a cursor" in bad.stderr


def test_ssf_streams_are_listed_and_paused_from_the_cli(run, live_session):
    """A kill from the CLI reaches a receiver's poll stream; the operator sees what is
    owed and pauses the stream (audited)."""
    from sqlalchemy import select

    from idp.audit.models import AuditEvent
    from idp.ssf import streams
    from idp.ssf.models import SsfStream

    app, browser = live_session
    svc = app.extensions["idp"]
    browser.oauth_client("rx", grant_types=["client_credentials"], scope="ssf")
    body = {
        "delivery": {"method": streams.POLL},
        "events_requested": ["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],
    }
    with svc.db.transaction() as s:
        stream_id = streams.create(s, svc.clock.now(), "rx", body, svc.pusher.outbound).id
    [row] = [json.loads(line) for line in run("sessions", "list").stdout.splitlines()]
    run("sessions", "kill", row["sid"], "--reason", "lost phone")
    [listed] = [json.loads(line) for line in run("ssf", "streams").stdout.splitlines()]
    assert listed["stream_id"] == stream_id and listed["receiver"] == "rx"
    assert listed["status"] == "enabled" and listed["owed"] == 1
    out = json.loads(run("ssf", "status", stream_id, "paused", "--reason", "maintenance").stdout)
    assert out == {"stream_id": stream_id, "status": "paused", "reason": "maintenance"}
    with svc.db.read() as s:
        assert s.scalar(select(SsfStream.status)) == "paused"
        assert s.scalar(select(AuditEvent.action).where(AuditEvent.target == stream_id)) == (
            "ssf.stream_status"
        )
    assert run("ssf", "status", "nope", "paused", check=False).returncode == 1


def test_clients_initial_token_prints_one_token_good_for_one_registration(run, tmp_path):
    """SPEC §5: one RFC 7591 initial access token, alone on stdout."""
    lines = run("clients", "initial-token", "--ttl", "600").stdout.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"[A-Za-z0-9_-]{43}", lines[0]), lines
    assert "one client" in run("clients", "initial-token", "--help").stdout
    assert run("clients", "initial-token", "--ttl", "0", check=False).returncode == 2
    app = create_app(
        {
            "server": {"instance_path": str(tmp_path), "secret_key": "test"},
            "database": {"url": f"sqlite:///{tmp_path}/cli.db"},
            "keys": {"kek": TEST_KEK},
        }
    )
    try:
        with app.test_client() as client:
            body = {"redirect_uris": ["https://rp.example/cb"], "client_name": "From the CLI"}
            headers = {"Authorization": f"Bearer {lines[0]}"}
            first = client.post("/register", json=body, headers=headers)
            assert first.status_code == 201, first.get_json()
            assert first.get_json()["client_name"] == "From the CLI"
            again = client.post("/register", json=body, headers=headers)
            assert again.status_code == 401 and again.get_json()["error"] == "invalid_token"
    finally:
        app.extensions["idp"].close()
    exported = [json.loads(line) for line in run("audit", "export").stdout.splitlines()]
    issued = [e for e in exported if e["action"] == "initial_token.issue"]
    assert len(issued) == 1 and issued[0]["actor"] == "cli"
    assert lines[0] not in json.dumps(exported)


def test_users_mfa_reset_removes_the_factors_and_is_audited(run, live_session):
    import pyotp

    from idp.audit.models import AuditEvent
    from idp.mfa.models import MfaFactor

    app, browser = live_session
    svc = app.extensions["idp"]
    user = _user_row(svc, _user_id(svc, "dave"))
    svc.factors.start_totp(user.id)
    secret = svc.factors.enrolment(user).secret
    code = pyotp.TOTP(secret).at(int(svc.clock.now().timestamp()))
    svc.factors.confirm_totp(user, code, "127.0.0.1")
    assert svc.factors.has_factor(user.id)
    out = json.loads(run("users", "mfa-reset", "dave", "--reason", "lost phone").stdout)
    assert out == {"user": "dave", "factors_removed": 1}
    assert not svc.factors.has_factor(user.id)
    with svc.db.read() as s:
        assert s.query(MfaFactor).count() == 0
        [event] = s.query(AuditEvent).filter_by(action="user.mfa_reset").all()
        assert event.actor == "cli" and event.reason == "lost phone"
    assert run("users", "mfa-reset", "nobody", check=False).returncode == 1


def _user_id(svc, username):
    from idp.accounts.services import by_username

    with svc.db.read() as s:
        user = by_username(s, username)
        assert user is not None
        return user.id


def _user_row(svc, user_id):
    from idp.accounts.models import User

    with svc.db.read() as s:
        user = s.get(User, user_id)
        s.expunge(user)
        return user


def test_clients_create_require_mfa(run):
    created = json.loads(
        run(
            "clients",
            "create",
            "strict",
            "--redirect-uri",
            "https://rp.example/cb",
            "--require-mfa",
        ).stdout
    )
    assert created["require_mfa"] is True and created["default_acr_values"] == ["2"]


def test_serve_without_migrate_on_start_refuses_a_database_behind_and_changes_nothing(tmp_path):
    """The image sets [server] migrate_on_start = false: a replica never migrates, the
    Job does (deploy/k8s/migrate-job.yaml)."""
    url = f"sqlite:///{tmp_path}/old.db"
    migrate.upgrade(url)
    migrate.downgrade(url, "-1")
    before = migrate.current_revisions(url)
    proc = idp(
        tmp_path,
        "serve",
        IDP_CONFIG=os.devnull,
        IDP_DATABASE__URL=url,
        IDP_SERVER__MIGRATE_ON_START="false",
        IDP_SERVER__INSTANCE_PATH=str(tmp_path / "instance"),
    )
    assert proc.returncode == 2
    assert proc.stderr.rstrip().endswith("run 'idp db upgrade' first")
    assert migrate.current_revisions(url) == before
    assert not (tmp_path / "instance").exists()
