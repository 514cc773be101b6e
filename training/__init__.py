"""Operator-side training, evaluation and model registry (imports ``moderation``, never the reverse)."""
