"""Jinja filters shared by every template (autoescaping stays on everywhere)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Flask


def isotime(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="seconds")


def humantime(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%d %B %Y, %H:%M UTC")


def clocktime(epoch: float) -> str:
    """The time of day alone, for what ends within the hour (a claim's lease): 14:05 UTC."""
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%H:%M UTC")


#: Three or more line breaks (blank lines that may hold spaces) in a row.
_BLANK_RUN = re.compile(r"\n(?:[ \t\r\f\v]*\n){2,}")


def paragraphs(text: str) -> str:
    """A comment as readers see it: at most one blank line in a row, none at either end.

    Stored as typed (moderators see that); under an article a run of empty lines
    would push a screen of blank space into everyone's list.
    """
    return _BLANK_RUN.sub("\n\n", str(text).replace("\r\n", "\n")).strip("\n")


def init_app(app: Flask) -> None:
    app.add_template_filter(isotime)
    app.add_template_filter(humantime)
    app.add_template_filter(clocktime)
    app.add_template_filter(paragraphs)
