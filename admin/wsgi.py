"""WSGI entry point of the admin app on its own port:
``IDP_ADMIN__PORT=8081 gunicorn -c deploy/gunicorn.conf.py -b 127.0.0.1:8081 idp.admin.wsgi:app``.
It exits if its KEKs cannot open the signing keys (a key rotated from the dashboard would
be sealed under a KEK the token servers lack), as ``idp serve`` does."""

from idp import admin, config, configure_process, create_app

_config = config.load()
configure_process(_config)
_idp = create_app(_config)
_idp.extensions["idp"].keys.check_at_start()
app = admin.create_app(_idp)
