"""/favicon.ico: the site's icon where browsers and other clients ask for it unbidden.

Pages name their icon with ``<link rel="icon">`` (templates/base.html: the SVG, and
this ICO for browsers without SVG icons); a client that reads no page (a feed
reader, a bookmark tool, a browser on a JSON answer or a download) still asks for
/favicon.ico, and every such request was a 404 in the log.
"""

from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory

bp = Blueprint("icons", __name__)

#: 30 days: a browser asks once a month, not on every page; a changed icon reaches
#: browsers within that month (its URL cannot change to say so).
ICON_MAX_AGE = 30 * 24 * 3600


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(current_app.static_folder, "favicon.ico", max_age=ICON_MAX_AGE)
