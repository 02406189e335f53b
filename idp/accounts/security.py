"""/account/security: the user's second factors (SPEC §5).

A stand-in so passkeys can be added and removed before the full page (password
change, TOTP) lands; the full page includes idp/templates/_passkeys.html.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template
from werkzeug.wrappers import Response

from idp.sessions import cookie

bp = Blueprint("security", __name__)


@bp.route("/account/security")
def security() -> Response | str:
    current = cookie.current()
    if current is None:
        return redirect("/login?next=/account/security", code=303)
    return render_template("account_security.html", user=current.user)
