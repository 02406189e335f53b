"""Logs (issue 14 item 2): `[log] format = "json"` writes one object a line with ts,
level, logger, msg and request_id; every request has an id (a sane X-Request-ID, else a
new one) that is on each line logged while handling it and in the response; one access
line per request; no password, token or client secret at any level."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from idp import logs
from idp.config import LogConfig
from tests.conftest import make_config
from tests.support.auth import PASSWORD, AuthActions
from tests.support.live import free_port
from tests.support.server import ROOT, env_for, idp_serve

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def logged() -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Configures logging as the idp command does, into a buffer; returns a function
    that (re)configures it and gives the JSON lines written so far."""
    root = logging.getLogger()
    quiet = [logging.getLogger(n) for n in ("sqlalchemy", "authlib", "alembic.runtime.plugins")]
    saved = (list(root.handlers), root.level, [q.level for q in quiet])
    buffer = io.StringIO()

    def configure(**settings: Any) -> list[dict[str, Any]]:
        if settings or not any(h.get_name() == "idp" for h in root.handlers):
            logs.configure(LogConfig(**{"format": "json", **settings}), stream=buffer)
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    configure()
    yield configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for q, level in zip(quiet, saved[2], strict=True):
        q.setLevel(level)
    logs.access_log.disabled = False


def test_json_lines_have_the_fields_and_no_request_id_outside_requests(logged) -> None:
    logging.getLogger("idp.test").warning("plain %s", "line")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("idp.test").exception("it failed")
    logging.getLogger("idp.test").debug("below the level")
    plain, failed = logged()
    assert TS.fullmatch(plain["ts"])
    assert plain["level"] == "WARNING" and plain["logger"] == "idp.test"
    assert plain["msg"] == "plain line" and plain["request_id"] is None
    assert "exc" not in plain
    assert failed["level"] == "ERROR" and "RuntimeError: boom" in failed["exc"]


def test_text_lines_have_the_time_level_logger_and_request_id() -> None:
    record = logging.makeLogRecord(
        {"name": "idp.x", "levelname": "INFO", "msg": "hi", "request_id": "r1", "created": 0}
    )
    assert logs.TextFormatter().format(record) == "1970-01-01T00:00:00.000Z INFO idp.x [r1] hi"


def test_each_request_logs_an_access_line_and_its_lines_carry_its_id(
    app: Flask, client: Any, logged: Callable[..., list[dict[str, Any]]]
) -> None:
    app.before_request(lambda: logging.getLogger("idp.test").warning("inside"))
    resp = client.get("/jwks.json?secret=query", headers={"X-Request-ID": "req-1.A_b"})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "req-1.A_b"
    inside, access = [line for line in logged() if line["logger"] in {"idp.test", "idp.access"}]
    assert inside["msg"] == "inside" and inside["request_id"] == "req-1.A_b"
    assert access["request_id"] == "req-1.A_b" and access["level"] == "INFO"
    assert access["method"] == "GET" and access["path"] == "/jwks.json"
    assert access["status"] == 200 and access["duration_ms"] >= 0
    assert "secret=query" not in json.dumps(access)
    # After the request, lines have no request id again.
    logging.getLogger("idp.test").warning("after")
    assert logged()[-1]["request_id"] is None


def test_a_request_without_an_id_gets_a_new_one_each_time(client: Any, logged) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    assert [line["request_id"] for line in logged() if line["logger"] == "idp.access"] == [
        first,
        second,
    ]


@pytest.mark.parametrize(
    "hostile",
    ["a\r\nX-Injected: 1", "x" * 10_000, "x" * 129, "caf\u00e9", "", "a b", "a\x00b", "\u2028"],
)
def test_a_hostile_request_id_is_replaced(client: Any, logged, hostile: str) -> None:
    # Set in the WSGI environ: an HTTP client library would refuse to send most of them.
    resp = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": hostile})
    rid = resp.headers["X-Request-ID"]
    assert rid != hostile and re.fullmatch(r"[0-9a-f]{32}", rid)
    assert resp.headers.getlist("X-Request-ID") == [rid]
    (access,) = [line for line in logged() if line["logger"] == "idp.access"]
    assert access["request_id"] == rid


def test_a_hostile_path_cannot_split_the_text_access_line(client: Any, logged) -> None:
    buffer = io.StringIO()
    logs.configure(LogConfig(format="text"), stream=buffer)
    client.get("/nothing%0D%0Afake%20line%00" + "a" * 2000)
    (line,) = buffer.getvalue().splitlines()
    assert "idp.access" in line and "\\r\\nfake line\\x00" in line and len(line) < 800


def test_a_reset_link_token_in_the_path_is_not_logged(client: Any, logged) -> None:
    secret = "kq3-reset-link-token-that-must-not-be-logged"
    client.get(f"/password/reset/{secret}?x={secret}")
    (access,) = [line for line in logged() if line["logger"] == "idp.access"]
    assert access["path"] == "/password/reset/<token>"
    assert all(secret not in json.dumps(line) for line in logged())


def test_the_access_line_can_be_turned_off(client: Any, logged) -> None:
    logged(access=False)
    assert client.get("/healthz").headers["X-Request-ID"]
    assert not [line for line in logged() if line["logger"] == "idp.access"]


def test_the_admin_app_mounted_under_admin_has_one_access_line_per_request(
    client: Any, logged
) -> None:
    resp = client.get("/admin/", headers={"X-Request-ID": "adm-1"})
    assert resp.headers["X-Request-ID"] == "adm-1"
    access = [line for line in logged() if line["logger"] == "idp.access"]
    assert [(a["path"], a["request_id"]) for a in access] == [("/admin/", "adm-1")]


def test_login_token_and_refresh_at_debug_log_no_secret(
    app: Flask, client: Any, auth: AuthActions, logged
) -> None:
    logged(level="DEBUG")
    auth.user()
    rp = auth.oauth_client()
    assert auth.login().status_code in {302, 303}
    code, verifier, _ = auth.code_for(rp, scope="openid email offline_access")
    resp = auth.token(
        rp,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
        },
        auth="post",
    )
    tokens = resp.get_json()
    assert resp.status_code == 200, tokens
    assert client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = auth.token(rp, refresh)
    assert refreshed.status_code == 200
    lines = logged()
    assert any(line["logger"] == "idp.access" and line["path"] == "/token" for line in lines)
    text = "\n".join(json.dumps(line) for line in lines)
    secrets = {
        "password": PASSWORD,
        "client secret": rp.secret,
        "code": code,
        "code verifier": verifier,
        **{name: tokens[name] for name in ("access_token", "refresh_token", "id_token")},
        "new refresh token": refreshed.get_json()["refresh_token"],
    }
    for name, value in secrets.items():
        assert value
        for part in value.split("."):  # a JWT's signature alone is a leak too
            assert part not in text or len(part) < 16, f"the {name} is in the log"


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of ``output`` as JSON (fails on a line that is not)."""
    lines = []
    for text in output.splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {text!r}")
    for line in lines:
        assert {"ts", "level", "logger", "msg", "request_id"} <= line.keys(), line
        assert TS.fullmatch(line["ts"])
    return lines


@pytest.mark.slow
def test_the_idp_command_logs_json_lines(tmp_path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
        "IDP_CONFIG": os.devnull,
        "IDP_LOG__FORMAT": "json",
        "IDP_SERVER__INSTANCE_PATH": str(tmp_path),
        "IDP_DATABASE__URL": f"sqlite:///{tmp_path}/idp.db",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "idp.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "database is at head\n"  # the command's answer stays plain
    lines = json_lines(proc.stderr)
    # No IDP_KEK: the development key is generated, and said so.
    assert any("development key-encryption key" in line["msg"] for line in lines), lines
    assert all(line["request_id"] is None for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_idp_serve_workers_log_json_with_request_ids(backend, tmp_path) -> None:
    log = tmp_path / "serve.log"
    config = make_config(backend, tmp_path, log={"format": "json"})
    with idp_serve(config, workers=2, threads=2, log=log) as served:
        ids = [f"probe-{n}" for n in range(6)]
        for rid in ids:
            resp = requests.get(
                served.url + "/jwks.json?x=1", headers={"X-Request-ID": rid}, timeout=10
            )
            assert resp.headers["X-Request-ID"] == rid
        hostile = {"X-Request-ID": "bad id\u00e9"}
        resp = requests.get(served.url + "/healthz", headers=hostile, timeout=10)
        assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=40)
    lines = json_lines(log.read_text())
    access = {
        line["request_id"]: line
        for line in lines
        if line["logger"] == "idp.access" and line["path"] == "/jwks.json"
    }
    assert set(ids) <= access.keys()
    assert all(access[rid]["status"] == 200 for rid in ids)
    assert any(line["logger"] == "idp.cli" and "idp on http" in line["msg"] for line in lines)
    assert any(line["logger"] == "_granian" for line in lines)  # the server's own lines too


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_gunicorn_with_the_deploy_config_logs_json_with_request_ids(backend, tmp_path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = env_for(make_config(backend, tmp_path, log={"format": "json"}), url)
    log = tmp_path / "gunicorn.log"
    conf = ROOT / "deploy" / "gunicorn.conf.py"
    command = [sys.executable, "-m", "gunicorn", "-c", str(conf), "-b", f"127.0.0.1:{port}"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*command, "--workers", "2", "idp.wsgi:app"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    resp = requests.get(
                        url + "/healthz", headers={"X-Request-ID": "g-1"}, timeout=5
                    )
                    break
                except requests.ConnectionError:
                    assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "g-1"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(40)
    lines = json_lines(log.read_text())
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    (access,) = [line for line in lines if line["logger"] == "idp.access"]
    assert access["request_id"] == "g-1" and access["path"] == "/healthz"
