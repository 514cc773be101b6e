"""Benchmarks with same-run baselines: ``python -m bench`` (``make bench``).

Every figure is measured next to a baseline in the same run, so the ratio holds on
a noisy machine. ``python -m bench --quick`` runs the whole harness with tiny sizes
(the smoke test uses it); its numbers mean nothing.
"""
