"""Blueprints of the admin app: HTML pages and the JSON API."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect


def register(app: Flask, csrf: CSRFProtect) -> None:
    from idp.admin import api
    from idp.admin.views import clients, common, events, keys, pages, signals, users

    common.install(app)
    for blueprint in (pages.bp, users.bp, clients.bp, keys.bp, signals.bp, events.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(api.bp, url_prefix="/api")
    csrf.exempt(api.bp)
