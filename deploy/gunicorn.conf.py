"""gunicorn, for those who run it instead of `idp serve` (deploy/ runs `idp serve`):

    gunicorn -c deploy/gunicorn.conf.py idp.wsgi:app

Logs go out as `idp serve`'s do: gunicorn's own lines through idp's handler in
`[log] format` (text or JSON); its access log is off, idp.access writes one line per
request with its request id.
"""

import os

# Every top-level name here is read as a gunicorn setting ("config" is one): idp's
# modules get names gunicorn has no setting for.
from idp import config as _idp_config
from idp import logs as _idp_logs

_config = _idp_config.load()

bind = f"{_config.server.host}:{_config.server.port}"  # -b on the command line wins
workers = _config.server.workers or (os.cpu_count() or 1)
worker_class = "gthread"
threads = _config.server.threads
graceful_timeout = 30
accesslog = None
logconfig_dict = _idp_logs.gunicorn_logconfig(_config.log)
