"""The ``idp`` command (SPEC §5): serve, migrate, and manage users, clients, keys, sessions."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from flask import Flask

from idp.config import Config, ConfigError
from idp.operator import Actor

log = logging.getLogger("idp.cli")


def _app(*, creates_database: bool = False) -> Flask:
    """The app from config.toml / IDP_CONFIG and the environment. Unless the command
    creates the database, a missing or unmigrated one stops it first, before anything
    (instance folder, development KEK, secret key) is written."""
    from idp import config, create_app

    cfg = config.load()
    if not creates_database:
        _require_database(cfg)
    return create_app(cfg)


def _require_database(cfg: Config) -> None:
    """Exits with status 2 when the configured database has no idp schema or an older
    one, saying where the configuration came from; with status 1 when it cannot be
    reached."""
    from idp import config

    # A read-only look: alembic's INFO lines (plugin setup on import, the migration
    # context) would bury the one line this may print.
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)
    try:
        from idp import migrate

        url = _shown_url(cfg.database.url)
        current = _revisions(cfg.database.url, url)
        if current and not migrate.is_behind(current):
            return
    finally:
        alembic_log.setLevel(level)
    file = config.config_file()
    if file is None:
        where = f"no config.toml in {os.getcwd()}, IDP_CONFIG unset"
    else:
        where = f"config from {'IDP_CONFIG=' if os.environ.get('IDP_CONFIG') else ''}{file}"
    if "IDP_DATABASE__URL" in os.environ:
        where += "; database.url from IDP_DATABASE__URL"
    if current:
        head = ",".join(sorted(migrate.head_revisions()))
        _fail(
            f"the database at {url} is at revision {','.join(sorted(current))}, this idp "
            f"needs {head} ({where}): run 'idp db upgrade' first",
            code=2,
        )
    todo = "run 'idp db upgrade' first"
    if file is None:
        todo = f"run idp from the project folder, set IDP_CONFIG, or {todo}"
    _fail(f"no idp database at {url} ({where}): {todo}", code=2)


def _revisions(url: str, shown: str) -> frozenset[str]:
    """The database's alembic revisions (empty: no idp schema); exits when unreachable."""
    from sqlalchemy.exc import SQLAlchemyError

    from idp import migrate

    try:
        return migrate.current_revisions(url)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        _fail(f"cannot open the database at {shown}: {cause[0] if cause else exc}")


def _shown_url(url: str) -> str:
    """``url`` for messages: no password, a SQLite path made absolute."""
    from sqlalchemy.engine import make_url

    from idp import migrate

    parsed = make_url(url)
    file = migrate.sqlite_file(url)
    if file is not None:
        parsed = parsed.set(database=str(file))
    return parsed.render_as_string(hide_password=True)


CLI = Actor("cli")


def _audit(s: Any, svc: Any, action: str, **fields: Any) -> None:
    """An audit event for an operator command (the actor is the command line)."""
    from idp.audit.services import record

    record(s, at=svc.clock.now(), actor="cli", action=action, **fields)


def _user_or_fail(svc: Any, username: str) -> Any:
    """The user named ``username``; exits with status 1 when there is none."""
    from idp.accounts.services import by_username

    with svc.db.read() as s:
        user = by_username(s, username)
    if user is None:
        _fail(f"no user {username!r}")
    return user


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"idp: {message}", err=True)
    sys.exit(code)


@click.group()
@click.version_option(package_name="idp", prog_name="idp", message="%(prog)s %(version)s")
def cli() -> None:
    """idp: OAuth 2.0 / OpenID Connect identity provider."""
    from idp import config, logs

    # A bad configuration stops here with exit code 2 and one line (main).
    logs.configure(config.load().log)


@cli.command()
@click.option("--host", default=None, help="Address to bind (default [server] host).")
@click.option("--port", default=None, type=int, help="Port (default [server] port).")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Worker processes (default [server] workers: one per CPU).",
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(min=1),
    help="Request threads per worker (default [server] threads).",
)
@click.option("--dev", is_flag=True, help="One process that reloads on code changes.")
def serve(
    host: str | None, port: int | None, workers: int | None, threads: int | None, dev: bool
) -> None:
    """The production server (what deploy/ runs); creates the database and first keys if
    absent ([server] migrate_on_start; without it, a database not at head stops it)."""
    from idp import serve as server

    # Before the app is built: the workers forked later count into files there, and
    # whichever answers a scrape adds them all up (idp.metrics).
    metrics_dir = None if dev else server.private_metrics_dir()
    try:
        _serve(host, port, workers, threads, dev)
    finally:
        server.remove_metrics_dir(metrics_dir)


def _serve(
    host: str | None, port: int | None, workers: int | None, threads: int | None, dev: bool
) -> None:
    from idp import config, migrate
    from idp import serve as server
    from idp.config import warn_insecure

    migrates = config.load().server.migrate_on_start
    app = _app(creates_database=migrates)
    svc = app.extensions["idp"]
    cfg = svc.config
    warn_insecure(cfg)
    if migrates:
        migrate.upgrade(cfg.database.url)
    svc.keys.ensure(svc.algs_in_use())
    svc.keys.check_at_start()  # a wrong KEK stops here, not at the first token
    # Workers build their own app and connections: none may cross the fork.
    svc.db.dispose()
    host = host or cfg.server.host
    port = port or cfg.server.port
    # Logged, not printed: the server's output is one stream in [log] format.
    if dev:
        log.info("idp (development) on http://%s:%d  (issuer %s)", host, port, cfg.server.issuer)
        server.development(cfg, host, port)
        return
    count = server.worker_count(cfg, workers)
    # Each worker loads the configuration again: it sees the count it is one of
    # (idp.serve.hash_slots).
    os.environ["IDP_SERVER__WORKERS"] = str(count)
    per = threads or cfg.server.threads
    log.info(
        "idp on http://%s:%d  (issuer %s; %d worker%s x %d threads)",
        host,
        port,
        cfg.server.issuer,
        count,
        "s" * (count != 1),
        per,
    )
    if cfg.admin.port:
        log.info("admin dashboard on http://%s:%d/", host, cfg.admin.port)
    server.production(cfg, host, port, count, per)


@cli.command()
def janitor() -> None:
    """One round of expiry and pruning: expired state, codes, token records and retired
    keys; refresh tokens, dead families, ended sessions (and audit events, when set)
    after [retention]. With [keys] rotate_every, first the key rotation if it is due."""
    from idp.janitor import run

    click.echo(json.dumps(run(_app().extensions["idp"])))


@cli.group()
def audit() -> None:
    """The audit trail."""


@audit.command("export")
@click.option("--after", default="", help="Resume after this cursor (from a previous export).")
@click.option("--limit", default=1000, type=click.IntRange(1, 100_000), show_default=True)
def audit_export(after: str, limit: int) -> None:
    """Audit events oldest first, one JSON object a line; each has the `cursor` to pass
    to --after next time."""
    from idp.audit.services import export

    svc = _app().extensions["idp"]
    try:
        with svc.db.read() as s:
            events = export(s, after or None, limit)
    except ValueError:
        _fail(f"not a cursor: {after!r}", 2)
    for event in events:
        click.echo(json.dumps(event, sort_keys=True))


@cli.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Apply every migration (alembic upgrade head)."""
    from idp import migrate

    app = _app(creates_database=True)
    svc = app.extensions["idp"]
    migrate.upgrade(svc.config.database.url)
    # Publish the first keys now, so workers never race to create them on first use.
    svc.keys.ensure(svc.algs_in_use())
    click.echo("database is at head")


def _in_tx(fn: Callable[..., Any], app: Flask | None = None) -> Any:
    app = app or _app()
    svc = app.extensions["idp"]
    with app.app_context(), svc.db.transaction() as s:
        return fn(svc, s)


@cli.group()
def users() -> None:
    """People who log in."""


@users.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--email", default=None)
@click.option("--name", default=None)
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
def users_create(
    username: str, password_stdin: bool, email: str | None, name: str | None, admin: bool
) -> None:
    """Create a user (prompts for the password unless --password-stdin)."""
    from idp.accounts.services import AccountError

    if not password_stdin and not sys.stdin.isatty():
        _fail(
            "no terminal to ask for the password; pass it on standard input with --password-stdin",
            code=2,
        )
    app = _app()  # a missing database is reported before the password is typed twice
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    try:
        user = app.extensions["idp"].actions.create_user(
            CLI, username, password, email=email, name=name, admin=admin
        )
    except AccountError as exc:
        _fail(str(exc))
    click.echo(json.dumps(_user_json(user)))


def _user_json(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "name": user.name,
        "admin": user.is_admin,
        "disabled": user.disabled,
    }


@users.command("list")
@click.option("--limit", default=1000, type=click.IntRange(1, 100_000), show_default=True)
def users_list(limit: int) -> None:
    """Every user by username, one JSON object a line."""
    from sqlalchemy import select

    from idp.accounts.models import User

    svc = _app().extensions["idp"]
    with svc.db.read() as s:
        for user in s.scalars(select(User).order_by(User.username_key).limit(limit)):
            click.echo(json.dumps({**_user_json(user), "created_at": user.created_at.isoformat()}))


@users.command("update")
@click.argument("username")
@click.option("--email", default=None, help='New email address ("" removes it).')
@click.option("--name", default=None, help='New display name ("" removes it).')
@click.option("--admin/--no-admin", default=None, help="Give or take the admin role.")
def users_update(username: str, email: str | None, name: str | None, admin: bool | None) -> None:
    """Change a user's email, name or admin role (a changed email is unverified)."""
    from idp.accounts.services import KEEP, AccountError

    svc = _app().extensions["idp"]
    user = _user_or_fail(svc, username)
    fields = {
        "email": KEEP if email is None else (email or None),
        "name": KEEP if name is None else (name or None),
        "admin": KEEP if admin is None else admin,
    }
    try:
        changed = svc.actions.update_user(user.id, CLI, **fields)
    except AccountError as exc:
        _fail(str(exc))
    if changed is None:
        _fail(f"no user {username!r}")
    click.echo(json.dumps({**_user_json(_user_or_fail(svc, username)), "changed": changed}))


@users.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--reason", default="deleted by operator", show_default=True)
def users_delete(username: str, yes: bool, reason: str) -> None:
    """Delete a user for good: kills everything they hold, removes their personal data;
    the audit trail keeps a pseudonym."""
    if not yes and not sys.stdin.isatty():
        _fail("no terminal to confirm on; pass --yes to delete without asking", code=2)
    svc = _app().extensions["idp"]
    user = _user_or_fail(svc, username)
    if not yes:
        click.confirm(f"Delete {username} and all their data for good?", abort=True)
    deleted = svc.actions.delete_user(user.id, CLI, reason)
    if deleted is None:
        _fail(f"no user {username!r}")
    _drain_backchannel(svc)
    click.echo(
        json.dumps(
            {
                "user": username,
                "deleted": True,
                "pseudonym": deleted.pseudonym,
                "sessions_killed": deleted.sessions_killed,
            }
        )
    )


@cli.group()
def clients() -> None:
    """Relying apps."""


@clients.command("create")
@click.argument("client_id")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeatable.")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE).")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
)
@click.option("--scope", default="openid profile email offline_access", show_default=True)
@click.option(
    "--claim",
    "claims",
    multiple=True,
    help="NAME=VALUE private claim; VALUE user:ATTR copies a user attribute. Repeatable.",
)
@click.option("--backchannel-logout-uri", default=None)
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
@click.option("--name", default=None, help="Name shown on the consent screen.")
@click.option("--first-party", is_flag=True, help="Skip the consent screen.")
@click.option("--admin-client", is_flag=True, help="May obtain the idp:admin scope.")
@click.option("--id-token-alg", default=None, type=click.Choice(["RS256", "ES256", "EdDSA"]))
@click.option(
    "--dpop-bound", is_flag=True, help="Every token request must carry a DPoP proof (RFC 9449)."
)
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt"]),
    default=None,
    help="How a confidential client authenticates (default client_secret_basic).",
)
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON file with the client's public key set (private_key_jwt, signed requests).",
)
@click.option("--jwks-uri", default=None, help="Where the client publishes its public keys.")
@click.option(
    "--require-par", is_flag=True, help="Authorization requests only through PAR (RFC 9126)."
)
@click.option(
    "--require-mfa",
    is_flag=True,
    help="Logins for this client need a second factor (acr 2; default_acr_values).",
)
@click.option(
    "--require-verified-email",
    is_flag=True,
    help="Users must have verified their email address to sign in to this client.",
)
def clients_create(
    client_id: str,
    redirect_uris: tuple[str, ...],
    public: bool,
    grants: tuple[str, ...],
    scope: str,
    claims: tuple[str, ...],
    backchannel_logout_uri: str | None,
    post_logout: tuple[str, ...],
    name: str | None,
    first_party: bool,
    admin_client: bool,
    id_token_alg: str | None,
    dpop_bound: bool,
    auth_method: str | None,
    jwks_file: str | None,
    jwks_uri: str | None,
    require_par: bool,
    require_mfa: bool,
    require_verified_email: bool,
) -> None:
    """Register a client; prints one JSON object with its secret (shown once)."""
    from idp.clients.services import ClientError, create_client, metadata, parse_claims

    jwks = None
    if jwks_file:
        try:
            jwks = json.loads(Path(jwks_file).read_text())
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"--jwks: not a JSON file ({exc})") from None

    def run(svc: Any, s: Any) -> Any:
        client, secret = create_client(
            s,
            svc.clock,
            client_id,
            allow_loopback=svc.config.outbound.allow_loopback,
            redirect_uris=list(redirect_uris),
            public=public,
            grant_types=list(grants) or None,
            scope=scope,
            claims=parse_claims(list(claims)),
            name=name,
            first_party=first_party,
            admin_client=admin_client,
            id_token_alg=id_token_alg,
            backchannel_logout_uri=backchannel_logout_uri,
            post_logout_redirect_uris=list(post_logout),
            dpop_bound_access_tokens=dpop_bound,
            token_endpoint_auth_method="none" if public else auth_method,
            jwks=jwks,
            jwks_uri=jwks_uri,
            require_pushed_authorization_requests=require_par,
            require_mfa=require_mfa,
            require_verified_email=require_verified_email,
        )
        _audit(s, svc, "client.create", target=client_id)
        out = metadata(client)
        if secret:
            out["client_secret"] = secret
        return out, client.id_token_signed_response_alg

    try:
        out, alg = _in_tx(run)
    except ClientError as exc:
        _fail(str(exc))
    if alg:
        _app().extensions["idp"].keys.ensure([alg])
    click.echo(json.dumps(out))


@clients.command("initial-token")
@click.option(
    "--ttl",
    default=3600,
    show_default=True,
    type=click.IntRange(1, 365 * 24 * 3600),
    help="Seconds until the token expires.",
)
@click.option(
    "--reusable", is_flag=True, help="Good for any number of registrations until it expires."
)
def clients_initial_token(ttl: int, reusable: bool) -> None:
    """Print an initial access token for dynamic client registration (RFC 7591), alone
    on stdout. It registers one client (unless --reusable) before it expires: send it as
    `Authorization: Bearer TOKEN` with POST /register. Only its hash is kept."""
    svc = _app().extensions["idp"]
    mode = svc.config.oauth.registration
    if mode != "token":
        # Still issued: the setting may be about to change. But say it does nothing now.
        click.echo(f"idp: note: [oauth] registration is {mode!r}: no token is asked for", err=True)
    click.echo(svc.registrations.issue_initial_token(ttl, reusable, CLI.name))


@cli.group()
def keys() -> None:
    """Signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Promote the next key of each algorithm; the old one stays published until its
    tokens expire."""

    svc = _app().extensions["idp"]
    kids = svc.actions.rotate_keys(CLI, "rotated from the command line")
    click.echo(json.dumps({"active": kids}))


@keys.command("list")
def keys_list() -> None:
    """Every key with its state and times: created, activated, retired, removed after,
    and with [keys] rotate_every the scheduled ones (a next key's activates_at, an
    active key's retires_at); kek_id names the KEK that seals it."""
    app = _app()
    svc = app.extensions["idp"]
    for k in svc.keys.described():
        click.echo(
            json.dumps(
                {
                    name: value.isoformat() if isinstance(value, dt.datetime) else value
                    for name, value in k.items()
                }
            )
        )


@keys.command("rewrap")
def keys_rewrap() -> None:
    """Re-encrypt every private signing key and TOTP secret under the current KEK ([keys]
    kek), opening each with the KEK that sealed it ([keys] kek_previous), in one
    transaction; prints what it did. Step 3 of a KEK rotation (docs/operations.md)."""
    from idp.keys.crypto import KekMissing

    svc = _app().extensions["idp"]
    try:
        result = svc.actions.rewrap_keys(CLI)
    except KekMissing as exc:
        _fail(f"nothing re-encrypted: {exc}")
    click.echo(json.dumps(result, sort_keys=True))


@cli.group()
def sessions() -> None:
    """Browser sessions."""


@sessions.command("list")
@click.option("--user", "username", default=None, help="Only this user's sessions.")
@click.option("--all", "include_ended", is_flag=True, help="Include ended sessions.")
@click.option("--limit", default=100, show_default=True)
def sessions_list(username: str | None, include_ended: bool, limit: int) -> None:
    """Live sessions, newest first, one JSON object a line."""
    from sqlalchemy import select

    from idp.sessions.models import BrowserSession

    app = _app()
    svc = app.extensions["idp"]
    user = _user_or_fail(svc, username) if username else None
    now = svc.clock.now()
    with svc.db.read() as s:
        stmt = select(BrowserSession).order_by(BrowserSession.created_at.desc()).limit(limit)
        if user is not None:
            stmt = stmt.where(BrowserSession.user_id == user.id)
        if not include_ended:
            stmt = stmt.where(BrowserSession.live(now, svc.config.sessions.idle_timeout))
        for row in s.scalars(stmt):
            click.echo(
                json.dumps(
                    {
                        "sid": row.id,
                        "user": row.user.username,
                        "ip": row.ip,
                        "user_agent": row.user_agent,
                        "created_at": row.created_at.isoformat(),
                        "last_seen_at": row.last_seen_at.isoformat(),
                        "expires_at": row.expires_at.isoformat(),
                        "ended_at": row.ended_at and row.ended_at.isoformat(),
                    }
                )
            )


@sessions.command("kill")
@click.argument("sid")
@click.option("--reason", default="killed by operator", show_default=True)
def sessions_kill(sid: str, reason: str) -> None:
    """End a session everywhere: its refresh families, its tokens, back-channel logout."""
    from idp.sessions.kill import AlreadyEnded

    svc = _app().extensions["idp"]
    result = svc.actions.kill_session(sid, CLI, reason)
    if result is None:
        _fail(f"no session {sid!r}")
    if isinstance(result, AlreadyEnded):
        _fail(f"session {sid!r} already ended (reason: {result.session.end_reason})")
    _drain_backchannel(svc)
    click.echo(json.dumps({"sid": sid, "killed": True, "reason": reason}))


def _drain_backchannel(svc: Any) -> None:
    # The command exits at once: make one delivery attempt here instead of in a thread
    # (back-channel logouts, then Shared Signals pushes; the server retries the rest).
    svc.notifier.deliver_due()
    svc.pusher.deliver_due()


@cli.group()
def ssf() -> None:
    """Shared Signals streams (receivers create them; operators watch and pause them)."""


@ssf.command("streams")
def ssf_streams() -> None:
    """One JSON line per stream: receiver, delivery, status, events owed, last delivery."""
    from sqlalchemy import func, select

    from idp.ssf.models import SsfEvent, SsfStream

    svc = _app().extensions["idp"]
    with svc.db.read() as s:
        owed = dict(
            s.execute(
                select(SsfEvent.stream_id, func.count())
                .where(SsfEvent.status == "pending")
                .group_by(SsfEvent.stream_id)
            ).all()
        )
        for stream in s.scalars(select(SsfStream).order_by(SsfStream.created_at)):
            click.echo(
                json.dumps(
                    {
                        "stream_id": stream.id,
                        "receiver": stream.client_id,
                        "method": stream.method,
                        "endpoint_url": stream.endpoint_url,
                        "status": stream.status,
                        "owed": owed.get(stream.id, 0),
                        "last_delivery_at": stream.last_delivery_at.isoformat()
                        if stream.last_delivery_at
                        else None,
                        "last_error": stream.last_error,
                    }
                )
            )


@ssf.command("status")
@click.argument("stream_id")
@click.argument("status", type=click.Choice(["enabled", "paused", "disabled"]))
@click.option("--reason", default="set by operator", show_default=True)
def ssf_status(stream_id: str, status: str, reason: str) -> None:
    """Pause (events are kept), disable (owed events are dropped) or enable a stream."""
    svc = _app().extensions["idp"]
    if not svc.actions.set_stream_status(stream_id, status, CLI, reason):
        _fail(f"no stream {stream_id!r}")
    svc.pusher.deliver_due()
    click.echo(json.dumps({"stream_id": stream_id, "status": status, "reason": reason}))


@cli.group()
def tokens() -> None:
    """Tokens."""


@tokens.command("revoke-user")
@click.argument("username")
@click.option("--reason", default="all tokens of the user revoked", show_default=True)
def tokens_revoke_user(username: str, reason: str) -> None:
    """Kill every session and refresh family of a user."""
    svc = _app().extensions["idp"]
    user = _user_or_fail(svc, username)
    killed = svc.actions.revoke_user(user.id, CLI, reason)
    _drain_backchannel(svc)
    click.echo(json.dumps({"user": username, "sessions_killed": killed}))


@users.command("disable")
@click.argument("username")
@click.option("--reason", default="disabled by operator", show_default=True)
def users_disable(username: str, reason: str) -> None:
    """Disable a user; kills everything they hold."""
    _set_disabled(username, True, reason)


@users.command("enable")
@click.argument("username")
@click.option("--reason", default="enabled by operator", show_default=True)
def users_enable(username: str, reason: str) -> None:
    """Enable a disabled user."""
    _set_disabled(username, False, reason)


@users.command("mfa-reset")
@click.argument("username")
@click.option("--reason", default="second factors reset by operator", show_default=True)
def users_mfa_reset(username: str, reason: str) -> None:
    """Remove a user's second factors and recovery codes (a lost phone): their next
    login asks for the password only. Audited; emits CAEP credential-change."""
    svc = _app().extensions["idp"]
    user = _user_or_fail(svc, username)
    removed = svc.actions.reset_factors(user.id, CLI, reason)
    _drain_backchannel(svc)
    click.echo(json.dumps({"user": username, "factors_removed": removed}))


def _set_disabled(username: str, disabled: bool, reason: str) -> None:
    svc = _app().extensions["idp"]
    user = _user_or_fail(svc, username)
    svc.actions.set_disabled(user.id, disabled, CLI, reason)
    _drain_backchannel(svc)
    click.echo(json.dumps({"user": username, "disabled": disabled}))


@clients.command("list")
def clients_list() -> None:
    """Every client's metadata, one JSON object a line."""
    from sqlalchemy import select

    from idp.clients.models import Client
    from idp.clients.services import metadata

    svc = _app().extensions["idp"]
    with svc.db.read() as s:
        for client in s.scalars(select(Client).order_by(Client.client_id)):
            click.echo(json.dumps(metadata(client)))


@clients.command("rotate-secret")
@click.argument("client_id")
def clients_rotate_secret(client_id: str) -> None:
    """A new client secret (printed once); the old one stops working at once."""
    from idp.clients.models import Client
    from idp.clients.services import ClientError, rotate_secret

    def run(svc: Any, s: Any) -> Any:
        client = s.get(Client, client_id)
        if client is None:
            raise ClientError(f"no client {client_id!r}")
        secret = rotate_secret(s, client)
        _audit(s, svc, "client.rotate_secret", target=client_id)
        return secret

    try:
        secret = _in_tx(run)
    except ClientError as exc:
        _fail(str(exc))
    click.echo(json.dumps({"client_id": client_id, "client_secret": secret}))


@clients.command("revoke-tokens")
@click.argument("client_id")
@click.option("--reason", default="all tokens of the client revoked", show_default=True)
def clients_revoke_tokens(client_id: str, reason: str) -> None:
    """Revoke every refresh family and live access token of a client."""
    svc = _app().extensions["idp"]
    families = svc.actions.revoke_client(client_id, CLI, reason)
    if families is None:
        _fail(f"no client {client_id!r}")
    click.echo(json.dumps({"client_id": client_id, "families_revoked": families}))


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="idp", standalone_mode=True)
    except ConfigError as exc:
        _fail(f"configuration error: {exc}", code=2)


if __name__ == "__main__":
    main()
