"""Blueprints: thin views that parse requests, call domain modules, shape responses."""
