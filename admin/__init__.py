"""The operator dashboard and admin API: a Flask app of its own (SPEC §5).

By default it is mounted under ``/admin`` of the public app; with ``[admin] port`` set
it is served only on that (internal) port, the way Hydra splits public and admin APIs.
It shares idp's services (database, state store, keys, OAuth server).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

__all__ = ["create_app"]


def create_app(idp_app: Flask) -> Flask:
    """The admin app for ``idp_app`` (an app built by :func:`idp.create_app`)."""
    from idp import metrics, web
    from idp.admin import auth, views

    svc: Any = idp_app.extensions["idp"]
    app = Flask(__name__, static_url_path="/static")
    app.config.update(
        SECRET_KEY=idp_app.config["SECRET_KEY"],
        MAX_CONTENT_LENGTH=idp_app.config["MAX_CONTENT_LENGTH"],
        SESSION_COOKIE_NAME=idp_app.config["SESSION_COOKIE_NAME"].replace("csrf", "admin_csrf"),
        SESSION_COOKIE_SECURE=idp_app.config["SESSION_COOKIE_SECURE"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/",
        WTF_CSRF_TIME_LIMIT=None,
        IDP_HTTPS=idp_app.config["IDP_HTTPS"],
        TESTING=idp_app.config.get("TESTING", False),
    )
    app.extensions["idp"] = svc
    app.jinja_loader = None  # set below; keep admin templates apart from idp's
    from jinja2 import ChoiceLoader, PackageLoader

    app.jinja_loader = ChoiceLoader(
        [PackageLoader("idp.admin", "templates"), PackageLoader("idp", "templates")]
    )
    csrf = CSRFProtect(app)
    auth.install(app)
    views.register(app, csrf)
    web.install(app)
    metrics.install(app)
    if svc.config.admin.port:
        from idp.health import metrics_bp

        app.register_blueprint(metrics_bp)  # on the internal port only (SPEC §5)
        # Served on its own: nothing in front of it times or logs its requests (under
        # /admin idp's app does). The log middleware outermost, as in idp's app.
        from idp import logs

        app.wsgi_app = metrics.Timing(app.wsgi_app)  # type: ignore[method-assign]
        app.wsgi_app = logs.install(app.wsgi_app)  # type: ignore[method-assign,assignment]
    return app
