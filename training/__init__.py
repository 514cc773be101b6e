"""Operator-side training, evaluation and model registry.

Imports ``moderation``; ``moderation`` never imports this package.
"""
