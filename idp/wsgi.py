"""WSGI entry point of idp's workers (``idp serve`` runs it in granian; gunicorn:
``gunicorn -c deploy/gunicorn.conf.py idp.wsgi:app``). Each worker process configures
its logging from ``[log]`` (and its tracer, with ``[tracing]`` on) before it builds the
app."""

from idp import config, configure_process, create_app

_config = config.load()
configure_process(_config)
app = create_app(_config)
