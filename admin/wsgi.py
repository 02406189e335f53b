"""WSGI entry point of the admin app on its own port:
``IDP_ADMIN__PORT=8081 gunicorn -c deploy/gunicorn.conf.py -b 127.0.0.1:8081 admin.wsgi:app``."""

import admin
from idp import config, configure_process, create_app

_config = config.load()
configure_process(_config)
app = admin.create_app(create_app(_config))
