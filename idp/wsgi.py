"""WSGI entry point of idp's workers (``idp serve`` runs it in granian; gunicorn:
``gunicorn -c deploy/gunicorn.conf.py idp.wsgi:app``). Each worker process configures
its logging from ``[log]`` (and its tracer, with ``[tracing]`` on) before it builds the
app, and exits if its KEKs cannot open the signing keys (as ``idp serve`` does)."""

from idp import config, configure_process, create_app

_config = config.load()
configure_process(_config)
app = create_app(_config)
app.extensions["idp"].keys.check_at_start()
