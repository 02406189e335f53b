"""What the side-by-side benchmark does to a server: register the clients, log in over
HTTP to start refresh-token chains, follow them under wrk, run whole password logins,
and time one argon2id verification alone.

idp and node-oidc-provider get the same three clients: ``bench-cc`` (client_credentials,
scope api:read), ``bench-rp`` (authorization_code + refresh_token, openid
offline_access; first-party, so no consent screen) and ``bench-rs`` (a resource server
that calls introspection), all confidential with client_secret_basic.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from refresh import REDIRECT_URI, code_flow
from run import ROOT, BenchError, WrkResult, basic_auth, idp_cli, run_wrk
from servers import CLIENT_CPU, SERVER_CPU

BENCH = ROOT / "bench"
ROTATE_LUA = BENCH / "rotate.lua"
INTROSPECT_LUA = BENCH / "introspect.lua"
TOKEN_LUA = BENCH / "token.lua"
USERNAME = "bench"
API_SCOPE = "api:read"
RP_SCOPE = "openid offline_access"
PEER_API = "urn:idp-bench:api"  # the peer's resource server (bench/peer/server.mjs)
CC_BODY = urlencode({"grant_type": "client_credentials", "scope": API_SCOPE})


@dataclass
class Accounts:
    """The user's password and each client's secret, on one server."""

    password: str
    secrets: dict[str, str] = field(default_factory=dict)

    def auth(self, client_id: str) -> str:
        return basic_auth(client_id, self.secrets[client_id])


def seed_idp(env: Mapping[str, str]) -> Accounts:
    """``idp db upgrade``, the user and the three clients, through the idp command."""
    idp_cli(env, "db", "upgrade")
    accounts = Accounts(secrets.token_urlsafe(16))
    idp_cli(env, "users", "create", USERNAME, "--password-stdin", stdin=accounts.password + "\n")
    for client_id, options in (
        ("bench-cc", ["--grant", "client_credentials", "--scope", API_SCOPE]),
        ("bench-rs", ["--grant", "client_credentials", "--scope", API_SCOPE]),
        (
            "bench-rp",
            [
                *("--grant", "authorization_code", "--grant", "refresh_token"),
                *("--redirect-uri", REDIRECT_URI, "--scope", RP_SCOPE, "--first-party"),
            ],
        ),
    ):
        out = idp_cli(env, "clients", "create", client_id, *options).strip().splitlines()
        accounts.secrets[client_id] = json.loads(out[-1])["client_secret"]
    return accounts


def peer_accounts() -> Accounts:
    """Fresh secrets for the peer's clients (given to server.mjs in PEER_SECRETS)."""
    ids = ("bench-cc", "bench-rs", "bench-rp")
    return Accounts("any", {i: secrets.token_urlsafe(24) for i in ids})


# --- logins ---------------------------------------------------------------------------


def idp_login(base: str, accounts: Accounts) -> dict[str, Any]:
    """authorize -> login form with CSRF -> code -> token, on idp; the token response."""
    return code_flow(base, "bench-rp", accounts.secrets["bench-rp"], USERNAME, accounts.password)


FORM_ACTION = re.compile(r'action="([^"]+)"')
FORM_PROMPT = re.compile(r'name="prompt" value="(\w+)"')


def peer_login(base: str, accounts: Accounts) -> dict[str, Any]:
    """The same on node-oidc-provider, through its development login and consent pages
    (devInteractions: any username, no password check). The grant includes the API
    resource, so a refresh with ``resource=`` returns a JWT access token; the code
    exchange here asks for none, so its access token is opaque (introspectable)."""
    browser = requests.Session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": "bench-rp",
        "redirect_uri": REDIRECT_URI,
        "scope": f"{RP_SCOPE} {API_SCOPE}",
        "resource": PEER_API,
        "prompt": "consent",  # OIDC Core §11: offline_access needs prompt=consent
        "state": "s",
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    resp = browser.get(f"{base}/auth?{urlencode(params)}", allow_redirects=False, timeout=30)
    for _ in range(4):  # the login page, then the consent page
        location = urljoin(base, resp.headers.get("Location", ""))
        if location.startswith(REDIRECT_URI):
            break
        page = browser.get(location, timeout=30)
        action, prompt = FORM_ACTION.search(page.text), FORM_PROMPT.search(page.text)
        if page.status_code != 200 or not action or not prompt:
            raise BenchError(f"peer interaction page {page.status_code}: {page.text[:300]}")
        form = {"prompt": prompt[1], "login": USERNAME, "password": "x"}
        resp = browser.post(urljoin(base, action[1]), data=form, allow_redirects=False, timeout=30)
        resp = browser.get(
            urljoin(base, resp.headers["Location"]), allow_redirects=False, timeout=30
        )
    else:
        raise BenchError("peer login did not come back with a code")
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = requests.post(
        f"{base}/token",
        headers={"Authorization": accounts.auth("bench-rp")},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        timeout=30,
    )
    if token.status_code != 200:
        raise BenchError(f"peer code exchange {token.status_code}: {token.text[:300]}")
    return dict(token.json())


# --- checks by hand -------------------------------------------------------------------


def jwt_header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def check_client_credentials(base: str, accounts: Accounts, jwks_path: str) -> None:
    """One client_credentials answer: an ES256 JWT whose kid the JWKS publishes."""
    resp = requests.post(
        f"{base}/token",
        data=CC_BODY,
        headers={
            "Authorization": accounts.auth("bench-cc"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=30,
    )
    if resp.status_code != 200 or "access_token" not in resp.json():
        raise BenchError(f"{base}: client_credentials {resp.status_code}: {resp.text[:300]}")
    header = jwt_header(resp.json()["access_token"])
    kids = {k["kid"] for k in requests.get(base + jwks_path, timeout=30).json()["keys"]}
    if header.get("alg") != "ES256" or header.get("kid") not in kids:
        raise BenchError(f"{base}: access token header {header}, JWKS kids {kids}")


def check_introspection(url: str, accounts: Accounts, token: str) -> None:
    resp = requests.post(
        url, data={"token": token}, headers={"Authorization": accounts.auth("bench-rs")}, timeout=30
    )
    if resp.status_code != 200 or resp.json().get("active") is not True:
        raise BenchError(f"{url}: introspection {resp.status_code}: {resp.text[:300]}")


def refresh_once(
    base: str, accounts: Accounts, refresh_token: str, extra: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One rotation by hand: a new refresh token, an ES256 JWT access token and an RS256
    ID token, or BenchError."""
    resp = requests.post(
        f"{base}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **(extra or {})},
        headers={"Authorization": accounts.auth("bench-rp")},
        timeout=30,
    )
    body = resp.json() if resp.status_code == 200 else {}
    if body.get("refresh_token") in (None, refresh_token) or "id_token" not in body:
        raise BenchError(f"{base}: refresh {resp.status_code}: {resp.text[:300]}")
    access, id_token = jwt_header(body["access_token"]), jwt_header(body["id_token"])
    if access.get("alg") != "ES256" or id_token.get("alg") != "RS256":
        raise BenchError(f"{base}: refresh gave access token {access}, ID token {id_token}")
    return dict(body)


# --- rotation under wrk ---------------------------------------------------------------


@dataclass
class Rotation:
    wrk: WrkResult
    rotations: int
    failures: int
    first_failure: str

    @property
    def rate(self) -> float:
        return self.rotations / self.wrk.seconds if self.wrk.seconds else 0.0


def rotate(
    url: str, authorization: str, chains: Sequence[str], duration: int, extra: str = ""
) -> Rotation:
    """wrk with bench/rotate.lua: one thread and one connection per chain."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="idp-bench-chains-") as f:
        f.write("\n".join(chains) + "\n")
        f.flush()
        result = run_wrk(
            url,
            duration=duration,
            connections=len(chains),
            threads=len(chains),
            script=ROTATE_LUA,
            script_args=[authorization, f.name, extra],
            timeout="10s",
            cpu=CLIENT_CPU,
        )
    done = re.search(r"^Rotations: (\d+)$", result.output, re.MULTILINE)
    failed = re.search(r"^Failures: (\d+)$", result.output, re.MULTILINE)
    first = re.search(r"^First failure: (.*)$", result.output, re.MULTILINE)
    if not done or not failed:
        raise BenchError(f"rotate.lua printed no counts:\n{result.output}")
    return Rotation(result, int(done[1]), int(failed[1]), first[1] if first else "")


# --- whole logins and the argon2id bound ----------------------------------------------


@dataclass
class LoginLoad:
    flows: int
    seconds: float
    failures: list[str]
    latencies_ms: list[float]
    client_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.flows / self.seconds if self.seconds else 0.0


def login_load(
    base: str,
    accounts: Accounts,
    duration: float,
    clients: int,
    flow: Callable[[str, Accounts], dict[str, Any]] = idp_login,
) -> LoginLoad:
    """``clients`` threads (in this process, on CLIENT_CPU), each running whole logins
    (``flow``: idp's password login, or the peer's) back to back for ``duration``
    seconds."""
    deadline = time.monotonic() + duration
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def worker() -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                token = flow(base, accounts)
                ok = bool(token.get("id_token") and token.get("access_token"))
            except (BenchError, requests.RequestException, KeyError, AttributeError) as exc:
                token, ok = {"error": repr(exc)}, False
            with lock:
                if ok:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    failures.append(str(token)[:200])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    return LoginLoad(len(latencies), seconds, failures, latencies, time.process_time() - cpu0)


ARGON2_TIMER = """
import json, statistics, time
from idp.accounts.passwords import HASHER
h = HASHER.hash("correct horse battery staple")
for _ in range(3):
    HASHER.verify(h, "correct horse battery staple")
wall, cpu = [], []
for _ in range({samples}):
    w, c = time.perf_counter(), time.thread_time()
    HASHER.verify(h, "correct horse battery staple")
    wall.append(time.perf_counter() - w)
    cpu.append(time.thread_time() - c)
params = f"{{HASHER.time_cost}}/{{HASHER.memory_cost}}/{{HASHER.parallelism}}"
out = {{"wall": statistics.median(wall), "cpu": statistics.median(cpu), "params": params}}
print(json.dumps(out))
"""


def argon2_verify(samples: int = 30) -> tuple[float, float, str]:
    """One argon2id verification with idp's hasher, alone on SERVER_CPU (the servers
    idle): median seconds of CPU time (the bound: what the server's core must spend) and
    of wall time (equal on an idle machine), and its parameters as time/memory KiB/lanes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        ["taskset", "-c", SERVER_CPU, sys.executable, "-c", ARGON2_TIMER.format(samples=samples)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"argon2 timing failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["cpu"]), float(out["wall"]), str(out["params"])
