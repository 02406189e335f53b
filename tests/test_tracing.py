"""OpenTelemetry tracing (issue 14 item 2), `[tracing]`: off by default and then nothing
of OpenTelemetry is loaded; on, a real `idp serve` sends a real OTLP/HTTP receiver a
server span per request (continuing the caller's traceparent) with a span per SQL
statement under it, never a parameter, query string, code, token or secret; JSON log
lines carry the trace and span ids; a stopping worker flushes what it holds."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import requests

from idp import config
from tests.conftest import make_config
from tests.support.browserless import code_flow
from tests.support.live import free_port
from tests.support.otlp import CLIENT, SERVER, ReceivedSpan, otlp_collector
from tests.support.server import ROOT, env_for, idp_serve
from tests.support.waiting import wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
REDIRECT = "http://127.0.0.1/cb"


# --- configuration ------------------------------------------------------------------------
def test_tracing_is_off_by_default_and_its_keys_have_defaults() -> None:
    t = config.Config().tracing
    assert t.enabled is False
    assert t.endpoint == "http://127.0.0.1:4318/v1/traces"
    assert (t.service_name, t.sample_ratio, t.headers) == ("idp", 1.0, "")


def test_the_tracing_keys_are_read_from_the_environment() -> None:
    cfg = config.from_mapping(
        {},
        env={
            "IDP_TRACING__ENABLED": "true",
            "IDP_TRACING__ENDPOINT": "https://otel.example.com/v1/traces",
            "IDP_TRACING__SERVICE_NAME": "idp-eu",
            "IDP_TRACING__SAMPLE_RATIO": "0.25",
            "IDP_TRACING__HEADERS": "Authorization=Bearer%20k1=,x-tenant = eu",
        },
    )
    t = cfg.tracing
    assert t.enabled and t.endpoint == "https://otel.example.com/v1/traces"
    assert t.service_name == "idp-eu" and t.sample_ratio == 0.25
    assert t.header_pairs() == {"Authorization": "Bearer k1=", "x-tenant": "eu"}


@pytest.mark.parametrize(
    ("tracing", "key"),
    [
        ({"sample_ratio": 1.5}, "tracing.sample_ratio"),
        ({"sample_ratio": -0.1}, "tracing.sample_ratio"),
        ({"sample_ratio": "half"}, "tracing.sample_ratio"),
        ({"sample_ratio": True}, "tracing.sample_ratio"),
        ({"endpoint": "ftp://collector/v1/traces"}, "tracing.endpoint"),
        ({"endpoint": "collector:4318"}, "tracing.endpoint"),
        ({"endpoint": "https://user:pw@collector/v1/traces"}, "tracing.endpoint"),
        ({"service_name": " "}, "tracing.service_name"),
        ({"headers": "Authorization"}, "tracing.headers"),
        ({"headers": "=value"}, "tracing.headers"),
        ({"enabled": "sometimes"}, "tracing.enabled"),
    ],
)
def test_a_bad_tracing_value_names_its_key(tracing: dict[str, Any], key: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping({"tracing": tracing})
    assert err.value.key == key


def test_a_malformed_header_is_refused_without_repeating_the_key_it_holds() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping({"tracing": {"headers": "x-api-key=k, sk-live-0123456789"}})
    assert "sk-live" not in str(err.value) and "pair 2" in str(err.value)


@pytest.mark.slow
def test_enabled_without_the_extra_stops_startup_with_one_line(tmp_path) -> None:
    # The interpreter behaves as if opentelemetry were not installed.
    script = "import sys; sys.modules['opentelemetry'] = None; from idp.cli import main; main()"
    env = {
        **_clean_env(),
        "IDP_CONFIG": "/dev/null",
        "IDP_SERVER__INSTANCE_PATH": str(tmp_path),
        "IDP_DATABASE__URL": f"sqlite:///{tmp_path}/idp.db",
        "IDP_TRACING__ENABLED": "true",
    }
    proc = subprocess.run(
        [sys.executable, "-c", script, "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "idp: configuration error: tracing.enabled: needs the tracing extra "
        "(opentelemetry.sdk is not installed): pip install 'idp[tracing]'"
    ]


# --- off: nothing loaded ------------------------------------------------------------------
# Records, for each OpenTelemetry module imported, the file whose code imported it
# (redis-py imports opentelemetry.sdk.metrics itself whenever it is installed).
PROBE = textwrap.dedent(
    """
    import json, sys

    importers = {}

    class Probe:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "opentelemetry" or name == "idp.tracing":
                frame = sys._getframe(1)
                while frame and frame.f_code.co_filename.startswith("<frozen"):
                    frame = frame.f_back
                importers[name] = frame.f_code.co_filename if frame else "?"
            return None

    sys.meta_path.insert(0, Probe())
    from idp import create_app

    app = create_app({
        "database": {"url": sys.argv[1]},
        "server": {"instance_path": sys.argv[2]},
        "tracing": {"enabled": sys.argv[3] == "on"},
    })
    client = app.test_client()
    assert client.get("/healthz?x=1").status_code == 200
    assert client.get("/jwks.json").status_code == 200
    token = client.post("/token", data={"grant_type": "client_credentials"}, auth=("no", "pw"))
    assert token.status_code == 401
    print(json.dumps(importers))
    """
)


def _importers(tmp_path, tracing: str) -> dict[str, str]:
    url = f"sqlite:///{tmp_path}/idp.db"
    from idp import migrate

    migrate.upgrade(url)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, url, str(tmp_path), tracing],
        env=_clean_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def _ours(importers: dict[str, str]) -> dict[str, str]:
    return {
        name: path
        for name, path in importers.items()
        if path.startswith((str(ROOT / "idp"), str(ROOT / "admin")))
    }


@pytest.mark.slow
def test_with_tracing_off_idp_imports_nothing_of_opentelemetry(tmp_path) -> None:
    importers = _importers(tmp_path, "off")
    assert "idp.tracing" not in importers
    assert _ours(importers) == {}
    # What is there, redis-py loaded (and OpenTelemetry's modules each other).
    assert all("/redis/" in path or "/opentelemetry/" in path for path in importers.values()), (
        importers
    )
    assert not [
        n for n in importers if n.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter"))
    ]


@pytest.mark.slow
def test_the_import_probe_sees_tracing_when_it_is_on(tmp_path) -> None:
    """The probe above would catch idp importing OpenTelemetry: here it does."""
    importers = _importers(tmp_path, "on")
    assert "idp.tracing" in importers and _ours(importers)


# --- on: a real server, a real receiver ---------------------------------------------------
def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "OTEL_"))}


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    """Every span below ``parent`` in its trace."""
    below: list[ReceivedSpan] = []
    frontier = [parent.span_id]
    while frontier:
        current = frontier.pop()
        for s in spans:
            if s.trace_id == parent.trace_id and s.parent_span_id == current:
                below.append(s)
                frontier.append(s.span_id)
    return below


def _every_value(spans: list[ReceivedSpan]) -> str:
    return json.dumps(
        [[s.name, s.attributes, s.resource] for s in spans], ensure_ascii=False, default=str
    )


@pytest.mark.slow
def test_a_token_request_is_one_server_span_with_its_statements_and_no_secret(
    auth, backend, tmp_path, monkeypatch
) -> None:
    auth.user()
    rp = auth.oauth_client("app", scope="openid offline_access", redirect_uri=REDIRECT)
    # Nothing leaves a worker before it stops: what arrives was flushed at shutdown.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    log = tmp_path / "serve.log"
    with otlp_collector() as collector:
        tracing = {"enabled": True, "endpoint": collector.url, "service_name": "idp-test"}
        cfg = make_config(backend, tmp_path, tracing=tracing, log={"format": "json"})
        with idp_serve(cfg, workers=2, threads=2, log=log) as served:
            tokens = code_flow(served.url, "app", rp.secret, REDIRECT)
            refreshed = requests.post(
                served.url + "/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=("app", rp.secret),
                headers={
                    "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
                    "X-Request-ID": "traced-refresh",
                },
                timeout=10,
            )
            assert refreshed.status_code == 200, refreshed.text
            query = requests.get(served.url + "/jwks.json?code=QUERYSECRET42", timeout=10)
            assert query.status_code == 200
            link = requests.get(served.url + "/password/reset/PATHSECRET4242", timeout=10)
            assert link.status_code == 400
            assert collector.received() == []
            served.process.send_signal(signal.SIGTERM)
            assert served.process.wait(timeout=40) == 0
        spans = collector.received()

    (token,) = [s for s in spans if s.attributes.get("idp.request_id") == "traced-refresh"]
    assert token.kind == SERVER and token.name == "POST /token"
    assert (token.trace_id, token.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert token.attributes["http.request.method"] == "POST"
    assert token.attributes["http.route"] == "/token"
    assert token.attributes["url.path"] == "/token"
    assert token.attributes["http.response.status_code"] == 200
    assert token.resource["service.name"] == "idp-test"

    statements = _children(spans, token)
    assert statements and all(s.kind == CLIENT for s in statements)
    system = "sqlite" if backend["name"] == "sqlite" else "postgresql"
    assert {s.attributes["db.system.name"] for s in statements} == {system}
    texts = [s.attributes["db.query.text"] for s in statements]
    # The rotation runs on the DBAPI cursor (idp.db.RawCursor): its statements are there.
    assert any(t.lstrip().startswith("UPDATE refresh_tokens") for t in texts), texts

    (jwks,) = [s for s in spans if s.attributes.get("http.route") == "/jwks.json"]
    assert jwks.attributes["url.path"] == "/jwks.json" and jwks.name == "GET /jwks.json"
    (reset,) = [s for s in spans if s.attributes.get("http.route") == "/password/reset/<token>"]
    assert reset.attributes["url.path"] == "/password/reset/<token>"
    assert reset.attributes["http.response.status_code"] == 400
    # Each request of the code flow is a trace of its own, its root a server span.
    roots = [s for s in spans if s.kind == SERVER and s.trace_id != TRACE_ID]
    assert {s.attributes.get("http.route") for s in roots} >= {"/authorize", "/login", "/token"}
    assert all(not s.parent_span_id for s in roots)

    everything = _every_value(spans)
    secrets = {
        "client secret": rp.secret,
        "query string": "QUERYSECRET42",
        "reset link token": "PATHSECRET4242",
        **{f"first {n}": tokens[n] for n in ("access_token", "refresh_token", "id_token")},
        **{f"new {n}": refreshed.json()[n] for n in ("access_token", "refresh_token")},
    }
    for name, value in secrets.items():
        for part in value.split("."):  # a JWT's signature alone is a leak too
            assert part not in everything or len(part) < 16, f"the {name} is in a span"
    assert "?" not in "".join(str(s.attributes.get("url.path")) for s in spans)

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    (access,) = [
        line
        for line in lines
        if line["logger"] == "idp.access" and line["request_id"] == "traced-refresh"
    ]
    assert (access["trace_id"], access["span_id"]) == (TRACE_ID, token.span_id)
    # Outside requests, no trace fields.
    started = [line for line in lines if line["logger"] == "idp.cli"]
    assert started and all("trace_id" not in line for line in started)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_sample_ratio_and_the_callers_decision_are_honoured(backend, tmp_path) -> None:
    """At ratio 0 nothing is recorded unless the caller's traceparent says sampled; a
    caller's "not sampled" is followed at any ratio. Headers reach the collector."""
    with otlp_collector() as collector:
        tracing = {
            "enabled": True,
            "endpoint": collector.url,
            "sample_ratio": 0.0,
            "headers": "x-api-key=k%2C1",
        }
        cfg = make_config(backend, tmp_path, tracing=tracing)
        with idp_serve(cfg, workers=1, threads=2) as served:
            for _ in range(3):
                requests.get(served.url + "/healthz", timeout=10)
            unsampled = f"00-{TRACE_ID}-{PARENT_ID}-00"
            requests.get(served.url + "/healthz", headers={"traceparent": unsampled}, timeout=10)
            sampled = f"00-{'1' * 32}-{PARENT_ID}-01"
            requests.get(served.url + "/jwks.json", headers={"traceparent": sampled}, timeout=10)
            served.process.send_signal(signal.SIGTERM)
            assert served.process.wait(timeout=40) == 0
        spans = collector.received()
        posts = list(collector.posts)
    assert {s.trace_id for s in spans} == {"1" * 32}
    assert [s.name for s in spans if s.kind == SERVER] == ["GET /jwks.json"]
    assert posts and all(p["x-api-key"] == "k,1" for p in posts)
    assert all(p["content-type"] == "application/x-protobuf" for p in posts)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("preload", [False, True], ids=["per-worker", "preload"])
def test_gunicorn_workers_trace_and_flush_when_they_stop(
    backend, tmp_path, monkeypatch, preload: bool
) -> None:
    """With --preload the tracer starts in gunicorn's master, before the fork: each
    worker still sends what it holds when it stops."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    conf = ROOT / "deploy" / "gunicorn.conf.py"
    with otlp_collector() as collector:
        tracing = {"enabled": True, "endpoint": collector.url}
        env = env_for(make_config(backend, tmp_path, tracing=tracing), url)
        command = [sys.executable, "-m", "gunicorn", "-c", str(conf), "-b", f"127.0.0.1:{port}"]
        command += ["--workers", "2", *(["--preload"] if preload else []), "idp.wsgi:app"]
        with open(tmp_path / "gunicorn.log", "w") as out:
            proc = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True
            )
        try:
            wait_for(lambda: _answers(url + "/healthz") or proc.poll() is not None, 60)
            for n in range(4):
                headers = {"X-Request-ID": f"g-{n}"}
                assert requests.get(url + "/jwks.json", headers=headers, timeout=10).ok
            assert collector.received() == []
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(40) == 0
        ids = {s.attributes.get("idp.request_id") for s in collector.received()}
    assert {f"g-{n}" for n in range(4)} <= ids


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False
