"""/favicon.ico and /favicon.svg: the site's icons, cached for a month.

Pages name their icons with ``<link rel="icon">`` (templates/base.html: the SVG, and
the ICO for browsers without SVG icons); a client that reads no page (a feed
reader, a bookmark tool, a browser on a JSON answer or a download) still asks for
/favicon.ico, and every such request was a 404 in the log.

The SVG was linked as /static/favicon.svg, under Flask's default for static files
(no max-age: a browser asks again, 304, on every page). That default stays right for
the style sheets and scripts, whose URLs carry no version, so a changed one reaches
browsers at once; an icon may take a month, so both are served here with the ICO's
caching.
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


@bp.get("/favicon.svg")
def favicon_svg():
    return send_from_directory(current_app.static_folder, "favicon.svg", max_age=ICON_MAX_AGE)
