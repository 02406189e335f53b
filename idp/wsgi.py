"""WSGI entry point of idp's workers (``idp serve`` runs it in granian; gunicorn:
``gunicorn -c deploy/gunicorn.conf.py idp.wsgi:app``). Each worker process configures
its logging from ``[log]`` before it builds the app."""

from idp import config, create_app, logs

_config = config.load()
logs.configure(_config.log)
app = create_app(_config)
