"""WSGI entry point for gunicorn: ``gunicorn -c gunicorn.conf.py moderation.wsgi:app``."""

from moderation import create_app

app = create_app()
