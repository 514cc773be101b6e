"""Jinja filters shared by every template (autoescaping stays on everywhere)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask


def isotime(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="seconds")


def humantime(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%d %B %Y, %H:%M UTC")


def init_app(app: Flask) -> None:
    app.add_template_filter(isotime)
    app.add_template_filter(humantime)
