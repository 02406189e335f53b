"""``/account/security`` (minimal: the page that includes the second-factor section;
password and email changes are another change's)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template
from werkzeug.wrappers import Response

from idp.sessions import cookie

bp = Blueprint("security", __name__)


@bp.route("/account/security")
def security() -> Response:
    current = cookie.current()
    if current is None:
        return redirect("/login?next=/account/security", code=303)
    resp = Response(render_template("account_security.html", user=current.user))
    resp.headers["Cache-Control"] = "no-store"  # an enrolment shows its TOTP secret
    return resp
