"""WSGI entry point for gunicorn: ``gunicorn -c deploy/gunicorn.conf.py idp.wsgi:app``."""

from idp import create_app

app = create_app()
