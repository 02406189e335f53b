"""One typed configuration, read from ``config.toml`` and the environment.

Every setting has a type, a default and a one-line doc here; ``config.toml``
mirrors this file. ``IDP_CONFIG`` names another file, and any key can be
overridden with ``IDP_<SECTION>__<KEY>`` (for example ``IDP_DATABASE__URL``), or
with ``IDP_<SECTION>__<KEY>_FILE`` naming a file that holds the value (a mounted
secret; ``IDP_KEK_FILE`` too).
A bad value raises :class:`ConfigError` naming the key, and so does an ``IDP_``
variable that names no key and is not in :data:`OTHER_IDP_VARIABLES`.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

log = logging.getLogger(__name__)

SUPPORTED_ALGS = ("ES256", "RS256", "EdDSA")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
REGISTRATION_MODES = ("token", "open", "closed")
MAIL_TLS = ("starttls", "tls", "none")
# Back-channel logout tokens (idp.sessions.backchannel) live this long.
LOGOUT_TOKEN_TTL = 120
# A scheduled key rotation more often than this would crowd the JWKS with retired keys.
MIN_ROTATE_EVERY = 60
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# What `[tracing] enabled = true` imports (the `idp[tracing]` extra).
TRACING_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")

# Every IDP_ variable that is not an IDP_<SECTION>__<KEY> setting yet is read by
# something in this repository, and what reads it. Any other IDP_ name stops startup:
# a typo must never silently fall back to a default (SPEC §5).
OTHER_IDP_VARIABLES: Mapping[str, str] = {
    "IDP_CONFIG": "idp: the configuration file to read instead of ./config.toml",
    "IDP_KEK": "idp: short name of IDP_KEYS__KEK",
    "IDP_KEK_PREVIOUS": "idp: short name of IDP_KEYS__KEK_PREVIOUS",
    "IDP_ISSUER": "examples/node/login.mjs",
    "IDP_CLIENT_ID": "examples/node/login.mjs",
    "IDP_CLIENT_SECRET": "examples/node/login.mjs",
    "IDP_CLIENT_AUTH": "examples/node/login.mjs",
    "IDP_REDIRECT_URI": "examples/node/login.mjs",
    "IDP_USERNAME": "examples/node/login.mjs",
    "IDP_PASSWORD": "examples/node/login.mjs",
    "IDP_SCOPE": "examples/node/login.mjs",
    "IDP_MAX_AGE": "examples/node/login.mjs",
    "IDP_DPOP": "examples/node/login.mjs",
    "IDP_CLIENT_JWK": "examples/node/login.mjs",
    "IDP_UPDATE_SCREENSHOTS": "tests/browser/conftest.py",
}


# Documented short names of settings (each may have its _FILE too).
SHORT_NAMES: Mapping[str, str] = {
    "IDP_KEK": "IDP_KEYS__KEK",
    "IDP_KEK_PREVIOUS": "IDP_KEYS__KEK_PREVIOUS",
}


class ConfigError(ValueError):
    """A setting is missing or has a bad value; ``key`` names it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def doc(text: str, default: Any, *, key: str | None = None, duration: bool = False) -> Any:
    """A setting: its one-line doc and default; ``key`` is its name in config.toml when
    that is not a Python name (``[mail] from``); ``duration``: an int of seconds that may
    also be written as a duration (``30d``, ``12h``, ``1d12h``)."""
    return field(default=default, metadata={"doc": text, "key": key, "duration": duration})


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(key: str, value: Any) -> int:
    """Seconds from an integer, a string of digits, or units such as ``30d``, ``1d12h``,
    ``90m`` (s, m, h, d, w)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"expected seconds or a duration such as 30d, got {value!r}")
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        elif ch in DURATION_UNITS and number:
            total += int(number) * DURATION_UNITS[ch]
            number = ""
        else:
            raise ConfigError(key, f"expected seconds or a duration such as 30d, got {value!r}")
    if number:
        raise ConfigError(key, f"expected seconds or a duration such as 30d, got {value!r}")
    return total


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("key") or f.name)


@dataclass(frozen=True)
class ServerConfig:
    issuer: str = doc(
        "Issuer URL; the base of every endpoint and the `iss` of tokens.", "http://127.0.0.1:5000"
    )
    host: str = doc("Address `idp serve` binds to.", "127.0.0.1")
    port: int = doc("Port `idp serve` listens on.", 5000)
    workers: int = doc("Worker processes of `idp serve`; 0: one per CPU it may use.", 0)
    threads: int = doc("Request threads per worker (requests that wait on storage).", 4)
    migrate_on_start: bool = doc(
        "`idp serve` applies migrations before it serves; false: it refuses a database "
        "not at head (run `idp db upgrade` once per release, as the Kubernetes Job does).",
        True,
    )
    feed_waits: int = doc(
        "Long polls of /revocations one worker holds at once, each in a thread beside the "
        "request threads (429 beyond).",
        128,
    )
    feed_waits_per_client: int = doc(
        "Long polls of /revocations one client may hold at once in one worker (429 beyond).",
        16,
    )
    instance_path: str = doc(
        "Folder for the SQLite file, the development KEK and secret.", "instance"
    )
    secret_key: str = doc(
        "Flask secret for CSRF tokens; generated into instance_path if empty.", ""
    )
    max_body_bytes: int = doc("Largest request body accepted, in bytes.", 65536)
    signup_enabled: bool = doc("Whether /signup lets anyone create an account.", False)
    trusted_proxies: int = doc("How many reverse proxies set X-Forwarded-For in front of idp.", 0)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = doc(
        "SQLAlchemy URL; SQLite by default, postgresql+psycopg:// in production.",
        "sqlite:///instance/idp.db",
    )
    echo: bool = doc("Log every SQL statement.", False)
    connect_timeout: int = doc("Seconds to wait for a new database connection.", 5)
    statement_timeout: int = doc(
        "Seconds a statement may run before PostgreSQL cancels it (0: no limit).", 30
    )
    pool_size: int = doc("Database connections each process keeps open.", 10)
    pool_overflow: int = doc("Connections a process may open beyond pool_size when busy.", 20)
    pool_timeout: int = doc("Seconds a request waits for a free pooled connection.", 10)


@dataclass(frozen=True)
class RedisConfig:
    url: str = doc(
        "redis:// URL for short-lived shared state, or redis+sentinel://host:26379,.../service "
        "for the primary Redis Sentinel names; empty uses the database.",
        "",
    )
    prefix: str = doc("Prefix of every Redis key idp writes.", "idp:")


@dataclass(frozen=True)
class TokensConfig:
    access_token_ttl: int = doc("Lifetime of access tokens in seconds (RFC 9068 JWTs).", 300)
    id_token_ttl: int = doc("Lifetime of ID tokens in seconds.", 300)
    client_credentials_ttl: int = doc("Lifetime of client_credentials access tokens.", 300)
    authorization_code_ttl: int = doc("Lifetime of authorization codes in seconds (<= 60).", 60)
    access_token_alg: str = doc("JWS algorithm of access tokens: ES256, RS256 or EdDSA.", "ES256")
    id_token_alg: str = doc("Default JWS algorithm of ID tokens (OIDC requires RS256).", "RS256")
    refresh_token_idle_ttl: int = doc(
        "A refresh family dies after this many idle seconds.", 14 * 24 * 3600
    )
    refresh_token_absolute_ttl: int = doc(
        "A refresh family dies this long after login.", 90 * 24 * 3600
    )
    refresh_reuse_grace_seconds: int = doc(
        "Seconds in which the parent of the newest refresh token may be replayed (0-60): "
        "a client whose answer was lost gets the same child back.",
        10,
    )
    reuse_kills_session: bool = doc("Refresh-token reuse also kills the browser session.", True)


@dataclass(frozen=True)
class OAuthConfig:
    pkce_required: bool = doc(
        "Require PKCE (S256) from confidential clients too; public clients always need it.", True
    )
    require_pushed_authorization_requests: bool = doc(
        "Every client must push its authorization requests to /par (RFC 9126 section 6).", False
    )
    dpop_nonce: bool = doc(
        "Require a server-provided nonce in DPoP proofs (RFC 9449 section 8): a proof without"
        " a fresh one gets use_dpop_nonce and a DPoP-Nonce header.",
        False,
    )
    registration: str = doc(
        "Dynamic client registration (RFC 7591) at /register: token (an initial access token"
        " from `idp clients initial-token` is required), open (anyone may register), or"
        " closed (no registration endpoint; clients registered before can still read, update"
        " and delete themselves, RFC 7592).",
        "token",
    )


@dataclass(frozen=True)
class SessionsConfig:
    idle_timeout: int = doc("A browser session ends after this many idle seconds.", 3600 * 8)
    absolute_timeout: int = doc("A browser session ends this long after login.", 3600 * 24 * 7)
    cookie_name: str = doc("Session cookie name; `__Host-` is prefixed on https.", "idp_session")


@dataclass(frozen=True)
class LoginConfig:
    max_failures_per_account: int = doc(
        "Logins per account from anywhere per window before the delays begin.", 10
    )
    max_failures_per_account_network: int = doc(
        "Logins per account from one network (IPv4 address or IPv6 /64) per window before"
        " the delays begin.",
        5,
    )
    max_failures_per_ip: int = doc("Failed logins per client IP per window before a lock.", 50)
    first_delay_seconds: int = doc(
        "Past a limit, an account opens for one attempt after this delay, doubled each time"
        " (up to the window).",
        30,
    )
    window_seconds: int = doc("Length of the login throttling window.", 900)


@dataclass(frozen=True)
class MfaConfig:
    issuer_label: str = doc(
        "The name authenticator apps show beside a user's TOTP entry (otpauth issuer).", "idp"
    )
    code_seconds: int = doc(
        "After a right password, how long the user has to give the second factor's code.",
        300,
    )


@dataclass(frozen=True)
class KeysConfig:
    kek: str = doc(
        "Key-encryption key (base64url, 32 bytes); better set IDP_KEYS__KEK or "
        "IDP_KEK. Empty in development: generated into instance_path.",
        "",
    )
    kek_previous: str = doc(
        "Previous KEKs, comma-separated, during a KEK rotation: they only open what they "
        "sealed until `idp keys rewrap`; better set IDP_KEK_PREVIOUS (or its _FILE).",
        "",
    )
    jwks_max_age: int = doc(
        "Most Cache-Control max-age of /jwks.json in seconds; with rotate_every, at most "
        "rotate_every (what a key's publication precedes its first signature by).",
        300,
    )
    rotate_every: int = doc(
        "Rotate the signing keys on this schedule (seconds, or a duration such as 30d); "
        "run by the janitor, once in the cluster. 0: only `idp keys rotate`.",
        0,
        duration=True,
    )


@dataclass(frozen=True)
class AdminConfig:
    port: int = doc("Serve the admin app on this internal port instead of under /admin (0).", 0)
    reauth_seconds: int = doc("Destructive admin actions need a login this recent.", 600)


@dataclass(frozen=True)
class OutboundConfig:
    allow_loopback: bool = doc(
        "Let idp call loopback URLs (back-channel logout): tests and development only.", False
    )


@dataclass(frozen=True)
class SsfConfig:
    event_ttl_seconds: int = doc(
        "A Shared Signals event not delivered (pushed or acknowledged) by then expires.",
        86400,
    )
    poll_wait_seconds: int = doc(
        "The longest a poll without returnImmediately waits for events (RFC 8936).", 25
    )


@dataclass(frozen=True)
class MailConfig:
    smtp_url: str = doc(
        "SMTP server as smtp://host:port (smtps:// for TLS from the first byte); empty:"
        " mails are written to the log instead (development: `make run` prints them).",
        "",
    )
    from_: str = doc("The From address of every mail idp sends.", "idp <idp@localhost>", key="from")
    tls: str = doc(
        "starttls (upgrade the connection, required), tls (implicit TLS, usually port 465) or"
        " none (plain: only for a local sink or relay).",
        "starttls",
    )
    username: str = doc("SMTP user name; empty: no authentication.", "")
    password: str = doc("SMTP password (better set IDP_MAIL__PASSWORD).", "")
    timeout_seconds: int = doc("Seconds to wait on the SMTP server before trying later.", 10)


@dataclass(frozen=True)
class AccountsConfig:
    reset_link_ttl_seconds: int = doc("A password reset link works this many seconds.", 1800)
    verify_link_ttl_seconds: int = doc(
        "An email verification link works this many seconds.", 3 * 24 * 3600
    )
    reset_requests_per_network: int = doc(
        "Password reset requests per network (IPv4 address or IPv6 /64) per login window.", 10
    )
    mails_per_account: int = doc(
        "Reset and verification mails one account is sent per login window (more requests"
        " get the same answer and no mail).",
        3,
    )


@dataclass(frozen=True)
class WebAuthnConfig:
    rp_name: str = doc("Name of idp that passkey prompts show (WebAuthn rp.name).", "idp")
    timeout_seconds: int = doc(
        "How long a passkey ceremony (and its single-use challenge) may take.", 300
    )


@dataclass(frozen=True)
class RetentionConfig:
    refresh_tokens_days: int = doc(
        "Refresh tokens are deleted this many days after they expired (an expired one "
        "is refused before reuse is looked for, so it can tell nothing more).",
        1,
    )
    families_days: int = doc(
        "Dead refresh families (revoked or expired) are deleted after this many days.", 30
    )
    sessions_days: int = doc(
        "Ended or expired browser sessions and their back-channel deliveries are deleted "
        "after this many days; so are mails sent or given up on.",
        30,
    )
    audit_days: int = doc(
        "Audit and security events are deleted after this many days (0: kept).", 0
    )
    janitor_every_seconds: int = doc(
        "How often a serving process may run the janitor; once per interval in the "
        "whole cluster (a lease), 0: never in the background (run `idp janitor`).",
        300,
    )


@dataclass(frozen=True)
class LogConfig:
    format: str = doc(
        "text (one readable line) or json (one object a line: ts, level, logger, msg, request_id).",
        "text",
    )
    level: str = doc("Lowest level written: DEBUG, INFO, WARNING or ERROR.", "INFO")
    access: bool = doc(
        "One INFO line per request under idp.access (method, path, status, duration).", True
    )


@dataclass(frozen=True)
class TracingConfig:
    enabled: bool = doc(
        "Send OpenTelemetry traces over OTLP/HTTP (needs `pip install 'idp[tracing]'`): a span"
        " per request and per SQL statement, without parameters, query strings or secrets.",
        False,
    )
    endpoint: str = doc(
        "The collector's OTLP/HTTP traces URL (protobuf).", "http://127.0.0.1:4318/v1/traces"
    )
    service_name: str = doc("The spans' service.name.", "idp")
    sample_ratio: float = doc(
        "Share of the traces started here that are recorded (0.0 to 1.0); a request with a"
        " W3C traceparent follows its caller's decision.",
        1.0,
    )
    headers: str = doc(
        "Headers sent to the collector, name=value pairs separated by commas (an API key:"
        " better set IDP_TRACING__HEADERS or IDP_TRACING__HEADERS_FILE).",
        "",
    )

    def header_pairs(self) -> dict[str, str]:
        """``headers`` as a mapping (values percent-decoded, as in OTEL_EXPORTER_OTLP_HEADERS);
        ConfigError when a pair is malformed. Messages never repeat a value."""
        from urllib.parse import unquote

        pairs: dict[str, str] = {}
        for n, item in enumerate(p for p in self.headers.split(",") if p.strip()):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or not name or not name.replace("-", "").isalnum():
                raise ConfigError("tracing.headers", f"pair {n + 1} is not name=value")
            pairs[name] = unquote(value.strip())
        return pairs


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    login: LoginConfig = field(default_factory=LoginConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    ssf: SsfConfig = field(default_factory=SsfConfig)
    mfa: MfaConfig = field(default_factory=MfaConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    webauthn: WebAuthnConfig = field(default_factory=WebAuthnConfig)
    log: LogConfig = field(default_factory=LogConfig)
    tracing: TracingConfig = field(default_factory=TracingConfig)

    @property
    def insecure_http(self) -> bool:
        """True when the issuer is plain http on loopback (development only)."""
        return urlsplit(self.server.issuer).scheme == "http"

    @property
    def longest_token_ttl(self) -> int:
        t = self.tokens
        return max(t.access_token_ttl, t.id_token_ttl, t.client_credentials_ttl)

    @property
    def longest_signed_ttl(self) -> int:
        """The longest lifetime of anything a signing key signs: the tokens above and
        back-channel logout tokens. (Shared Signals SETs carry no ``exp``: they are
        verified when delivered, which follows the signature at once.)"""
        return max(self.longest_token_ttl, LOGOUT_TOKEN_TTL)

    @property
    def jwks_max_age(self) -> int:
        """The JWKS ``Cache-Control`` max-age actually served: on a schedule, a key is
        published one ``rotate_every`` before it signs (the next key is created at each
        rotation and promoted at the following one), so no cache may keep the JWKS
        longer than that, or it could miss a key that signs (as Dex bounds its max-age
        by the next rotation)."""
        k = self.keys
        return min(k.jwks_max_age, k.rotate_every) if k.rotate_every else k.jwks_max_age


def _coerce(key: str, typ: Any, value: Any) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(key, f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"expected a number, got {value!r}") from None
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"expected an integer, got {value!r}") from None
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    raise ConfigError(key, "unsupported type")  # pragma: no cover


def _section(name: str, cls: type, raw: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(name, "expected a table")
    hints = get_type_hints(cls)
    names = {_key(f) for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"{name}.{key}", "unknown setting")
    values = {}
    for f in dataclasses.fields(cls):
        key = f"{name}.{_key(f)}"
        env_key = f"IDP_{name.upper()}__{_key(f).upper()}"
        coerce = (
            parse_duration
            if f.metadata.get("duration")
            else lambda k, v, t=hints[f.name]: _coerce(k, t, v)
        )
        if env_key in env:
            values[f.name] = coerce(key, env[env_key])
        elif _key(f) in raw:
            values[f.name] = coerce(key, raw[_key(f)])
    return cls(**values)


def _validate(cfg: Config) -> None:
    issuer = urlsplit(cfg.server.issuer)
    if issuer.scheme not in {"http", "https"} or not issuer.netloc:
        raise ConfigError("server.issuer", "must be an http(s) URL")
    if issuer.query or issuer.fragment:
        raise ConfigError("server.issuer", "must not have a query or fragment")
    if issuer.scheme == "http" and issuer.hostname not in LOOPBACK_HOSTS:
        raise ConfigError("server.issuer", "plain http is allowed only on loopback")
    if issuer.hostname not in LOOPBACK_HOSTS:
        # A public issuer never runs on the generated development secrets (issue 10).
        if not cfg.keys.kek:
            raise ConfigError("keys.kek", "required for a non-loopback issuer (set IDP_KEK)")
        if not cfg.server.secret_key:
            raise ConfigError(
                "server.secret_key",
                "required for a non-loopback issuer (set IDP_SERVER__SECRET_KEY)",
            )
    positive = {
        "server.port": cfg.server.port,
        "server.threads": cfg.server.threads,
        "server.feed_waits": cfg.server.feed_waits,
        "server.feed_waits_per_client": cfg.server.feed_waits_per_client,
        "server.max_body_bytes": cfg.server.max_body_bytes,
        "tokens.access_token_ttl": cfg.tokens.access_token_ttl,
        "tokens.id_token_ttl": cfg.tokens.id_token_ttl,
        "tokens.client_credentials_ttl": cfg.tokens.client_credentials_ttl,
        "tokens.authorization_code_ttl": cfg.tokens.authorization_code_ttl,
        "tokens.refresh_token_idle_ttl": cfg.tokens.refresh_token_idle_ttl,
        "tokens.refresh_token_absolute_ttl": cfg.tokens.refresh_token_absolute_ttl,
        "sessions.idle_timeout": cfg.sessions.idle_timeout,
        "sessions.absolute_timeout": cfg.sessions.absolute_timeout,
        "database.connect_timeout": cfg.database.connect_timeout,
        "database.pool_size": cfg.database.pool_size,
        "database.pool_timeout": cfg.database.pool_timeout,
        "login.max_failures_per_account": cfg.login.max_failures_per_account,
        "login.max_failures_per_account_network": cfg.login.max_failures_per_account_network,
        "login.max_failures_per_ip": cfg.login.max_failures_per_ip,
        "login.first_delay_seconds": cfg.login.first_delay_seconds,
        "login.window_seconds": cfg.login.window_seconds,
        "keys.jwks_max_age": cfg.keys.jwks_max_age,
        "admin.reauth_seconds": cfg.admin.reauth_seconds,
        "ssf.event_ttl_seconds": cfg.ssf.event_ttl_seconds,
        "ssf.poll_wait_seconds": cfg.ssf.poll_wait_seconds,
        "mail.timeout_seconds": cfg.mail.timeout_seconds,
        "accounts.reset_link_ttl_seconds": cfg.accounts.reset_link_ttl_seconds,
        "accounts.verify_link_ttl_seconds": cfg.accounts.verify_link_ttl_seconds,
        "accounts.reset_requests_per_network": cfg.accounts.reset_requests_per_network,
        "accounts.mails_per_account": cfg.accounts.mails_per_account,
        "webauthn.timeout_seconds": cfg.webauthn.timeout_seconds,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(key, f"must be a positive integer, got {value}")
    if not 0 < cfg.server.port < 65536:
        raise ConfigError("server.port", "must be between 1 and 65535")
    if not 0 <= cfg.admin.port < 65536:
        raise ConfigError("admin.port", "must be between 0 and 65535")
    if cfg.tokens.authorization_code_ttl > 60:
        raise ConfigError("tokens.authorization_code_ttl", "must be at most 60 (RFC 9700)")
    if not 0 <= cfg.tokens.refresh_reuse_grace_seconds <= 60:
        raise ConfigError("tokens.refresh_reuse_grace_seconds", "must be between 0 and 60")
    for key, alg in (
        ("tokens.access_token_alg", cfg.tokens.access_token_alg),
        ("tokens.id_token_alg", cfg.tokens.id_token_alg),
    ):
        if alg not in SUPPORTED_ALGS:
            raise ConfigError(key, f"must be one of {', '.join(SUPPORTED_ALGS)}")
    if cfg.oauth.registration not in REGISTRATION_MODES:
        raise ConfigError("oauth.registration", f"must be one of {', '.join(REGISTRATION_MODES)}")
    if cfg.database.statement_timeout < 0 or cfg.database.pool_overflow < 0:
        raise ConfigError("database", "statement_timeout and pool_overflow must not be negative")
    for key in ("refresh_tokens_days", "families_days", "sessions_days", "audit_days"):
        if getattr(cfg.retention, key) < 0:
            raise ConfigError(f"retention.{key}", "must not be negative")
    if cfg.retention.janitor_every_seconds < 0:
        raise ConfigError("retention.janitor_every_seconds", "must not be negative")
    if cfg.keys.rotate_every and cfg.keys.rotate_every < MIN_ROTATE_EVERY:
        raise ConfigError(
            "keys.rotate_every", f"must be 0 (off) or at least {MIN_ROTATE_EVERY} seconds"
        )
    if cfg.server.workers < 0:
        raise ConfigError("server.workers", "must not be negative")
    if cfg.server.trusted_proxies < 0:
        raise ConfigError("server.trusted_proxies", "must not be negative")
    if not cfg.database.url:
        raise ConfigError("database.url", "must not be empty")
    if not cfg.webauthn.rp_name.strip() or len(cfg.webauthn.rp_name) > 100:
        raise ConfigError("webauthn.rp_name", "must be a name of 1 to 100 characters")
    _validate_database_url(cfg.database.url)
    _validate_redis_url(cfg.redis.url)
    _validate_mail(cfg.mail)
    if cfg.log.format not in LOG_FORMATS:
        raise ConfigError("log.format", f"must be one of {', '.join(LOG_FORMATS)}")
    if cfg.log.level.upper() not in LOG_LEVELS:
        raise ConfigError("log.level", f"must be one of {', '.join(LOG_LEVELS)}")
    _validate_tracing(cfg.tracing)


def _validate_tracing(tracing: TracingConfig) -> None:
    if not 0.0 <= tracing.sample_ratio <= 1.0:
        raise ConfigError("tracing.sample_ratio", "must be between 0.0 and 1.0")
    endpoint = urlsplit(tracing.endpoint)
    if endpoint.scheme not in {"http", "https"} or not endpoint.hostname:
        raise ConfigError("tracing.endpoint", "must be an http(s) URL")
    if endpoint.username or endpoint.password:
        raise ConfigError("tracing.endpoint", "must not hold credentials (set [tracing] headers)")
    if not tracing.service_name.strip():
        raise ConfigError("tracing.service_name", "must not be empty")
    tracing.header_pairs()
    if tracing.enabled:
        import importlib.util

        for name in TRACING_MODULES:
            try:
                found = importlib.util.find_spec(name) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                raise ConfigError(
                    "tracing.enabled",
                    f"needs the tracing extra ({name} is not installed): "
                    "pip install 'idp[tracing]'",
                )


def _validate_mail(mail: MailConfig) -> None:
    if mail.tls not in MAIL_TLS:
        raise ConfigError("mail.tls", f"must be one of {', '.join(MAIL_TLS)}")
    if mail.smtp_url:
        parts = urlsplit(mail.smtp_url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname or port == -1:
            raise ConfigError("mail.smtp_url", "must look like smtp://host:port or smtps://host")
        if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
            raise ConfigError(
                "mail.smtp_url",
                "must be only smtp://host:port (set [mail] username and password apart)",
            )
    from email.headerregistry import Address
    from email.utils import parseaddr

    name, address = parseaddr(mail.from_)
    if "@" not in address or any(c in mail.from_ for c in "\r\n"):
        raise ConfigError("mail.from", "must be an address such as idp <idp@example.com>")
    try:
        Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError):
        raise ConfigError("mail.from", "must be an address such as idp <idp@example.com>") from None


def _validate_redis_url(raw: str) -> None:
    """An empty URL, one Redis server's, or a Sentinel URL that names its Sentinels and
    service (idp.state.redis_client). Messages never repeat the URL."""
    if not raw:
        return
    from idp.state.redis_client import SCHEMES, SENTINEL_SCHEME, SentinelUrlError, parse_sentinel

    scheme = urlsplit(raw).scheme
    if scheme not in SCHEMES:
        raise ConfigError(
            "redis.url", "must be a redis://, rediss://, unix:// or redis+sentinel:// URL"
        )
    if scheme == SENTINEL_SCHEME:
        try:
            parse_sentinel(raw)
        except SentinelUrlError as exc:
            raise ConfigError("redis.url", str(exc)) from None


def _validate_database_url(raw: str) -> None:
    """Parses the URL and loads its dialect and driver, without connecting. Messages
    never repeat the URL: it may hold a password."""
    key = "database.url"
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(
            key,
            "not a database URL (for example sqlite:///instance/idp.db or "
            "postgresql+psycopg://user@host/dbname)",
        ) from None
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            key, f"unknown database {url.drivername!r} (use sqlite or postgresql+psycopg)"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        raise ConfigError(
            key,
            f"the driver of {url.drivername!r} ({dialect.driver}) is not installed "
            "(use sqlite or postgresql+psycopg)",
        ) from None


def env_names() -> set[str]:
    """The IDP_<SECTION>__<KEY> name of every setting."""
    return {f"IDP_{key.replace('.', '__').upper()}" for key, _, _ in describe()}


def _check_env_names(env: Mapping[str, str]) -> None:
    known = env_names()
    for name in sorted(env):
        if not name.startswith("IDP_") or name in known or name in OTHER_IDP_VARIABLES:
            continue
        candidates = sorted(known | {"IDP_CONFIG", *SHORT_NAMES})
        close = difflib.get_close_matches(name.upper(), candidates, n=1)
        hint = (
            f"did you mean {close[0]}?"
            if close
            else "settings are IDP_<SECTION>__<KEY>, for example IDP_DATABASE__URL"
        )
        raise ConfigError(name, f"names no setting ({hint})")


def from_mapping(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from a nested mapping (as in config.toml) plus env overrides."""
    env = {} if env is None else env
    _check_env_names(env)
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for name in data:
        if name not in sections:
            raise ConfigError(name, "unknown section")
    hints = get_type_hints(Config)
    values = {name: _section(name, hints[name], data.get(name, {}), env) for name in sections}
    cfg = Config(**values)
    _validate(cfg)
    return cfg


FILE_VARIABLE_SUFFIX = "_FILE"


def read_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with every ``IDP_..._FILE`` variable replaced by the variable it names, set
    to the file's text without its trailing newline (how Docker and Kubernetes mount
    secrets). Setting both a variable and its ``_FILE`` is an error, and so is a file that
    cannot be read; messages never repeat what a file holds. A ``_FILE`` whose stem names
    no setting is left alone, so the unknown-name check refuses it."""
    known = env_names() | set(SHORT_NAMES)
    out = dict(env)
    for name in sorted(env):
        stem = name.removesuffix(FILE_VARIABLE_SUFFIX)
        if not name.startswith("IDP_") or stem == name or stem not in known:
            continue
        if stem in env:
            raise ConfigError(name, f"set either {stem} or {name}, not both")
        try:
            text = Path(env[name]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise ConfigError(name, f"cannot read {env[name]}: {reason}") from None
        del out[name]
        out[stem] = text.removesuffix("\n").removesuffix("\r")
    return out


def load(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read ``IDP_CONFIG`` or ./config.toml (missing file means all defaults)."""
    env = read_secret_files(dict(os.environ) if env is None else env)
    # IDP_KEK is the documented short name of the key-encryption key (and
    # IDP_KEK_PREVIOUS of the previous ones, during a KEK rotation).
    for short, full in SHORT_NAMES.items():
        if short in env and full not in env:
            env = {**env, full: env[short]}
    file = Path(path or env.get("IDP_CONFIG") or "config.toml")
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(file), f"not valid TOML: {exc}") from None
    elif path or env.get("IDP_CONFIG"):
        raise ConfigError("IDP_CONFIG", f"file {file} does not exist")
    return from_mapping(data, env)


def config_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The file :func:`load` reads: ``IDP_CONFIG``, else ./config.toml (absolute); None
    when ``IDP_CONFIG`` is unset and there is no ./config.toml (all defaults)."""
    env = os.environ if env is None else env
    if env.get("IDP_CONFIG"):
        return Path(env["IDP_CONFIG"])
    file = Path("config.toml").resolve()
    return file if file.exists() else None


def warn_insecure(cfg: Config) -> list[str]:
    """Log (and return) a warning for each insecure development default in use."""
    warnings = []
    if cfg.insecure_http:
        warnings.append("issuer is plain http: cookies lose __Host- and Secure (development only)")
    if not cfg.keys.kek:
        warnings.append(
            "no IDP_KEK set: a development key-encryption key is kept in "
            f"{cfg.server.instance_path}/ (set IDP_KEK in production)"
        )
    if cfg.database.url.startswith("sqlite"):
        warnings.append("SQLite database: fine for one machine, use PostgreSQL for several")
    if not cfg.mail.smtp_url:
        warnings.append(
            "no [mail] smtp_url: mails (reset and verification links) are written to the log"
        )
    elif cfg.mail.tls == "none" and urlsplit(cfg.mail.smtp_url).scheme == "smtp":
        host = urlsplit(cfg.mail.smtp_url).hostname or ""
        if host not in LOOPBACK_HOSTS:
            warnings.append(f"[mail] tls = none: mails to {host} travel unencrypted")
    for w in warnings:
        log.warning("insecure setting: %s", w)
    return warnings


def describe() -> list[tuple[str, str, Any]]:
    """Every (key, doc, default), for documentation and tests."""
    rows = []
    hints = get_type_hints(Config)
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(hints[section.name]):
            rows.append((f"{section.name}.{_key(f)}", f.metadata["doc"], f.default))
    return rows
