"""Benchmarks written by other engineers, folded into the one table when present.

* ``bench/captcha_solver.py`` (CAPTCHA engineer): a trained sliding-window solver's
  exact solve rate on our image vs the ``captcha`` package's default. ``make bench``
  runs it with a reduced budget to stay inside its 10 minutes (same budget for both
  generators, so the comparison holds); ``python -m bench.captcha_solver`` is the
  full 20,000-image run.
* ``bench/fuzz_campaign.py`` (guards engineer): requests with hostile input; any 5xx
  is a bug.
"""

from __future__ import annotations

import importlib
import time

from .common import Row, Section

#: Inside `make bench` (10-minute total): about a minute on 2 cores.
SOLVER_FULL = {"train_n": 600, "test_n": 150, "tesseract_n": 0, "render_n": 50,
               "epochs": 4, "hidden": 128}
SOLVER_QUICK = {"train_n": 60, "test_n": 10, "tesseract_n": 0, "render_n": 5,
                "epochs": 2, "hidden": 32}


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def solver(quick: bool) -> Section:
    section = Section("captcha solver")
    started = time.perf_counter()
    module = _optional("bench.captcha_solver")
    if module is None:
        section.rows.append(Row("captcha: trained solver exact rate", None, "%", "<= 20%", None,
                                notes="bench/captcha_solver.py not present"))
        return section
    budget = SOLVER_QUICK if quick else SOLVER_FULL
    results = module.run(**budget)
    section.raw = results
    generators = results["generators"]
    ours = generators["ours"]["solver"]["exact_rate"] * 100
    default = generators["default"]["solver"]["exact_rate"] * 100
    section.rows.append(Row(
        "captcha: trained solver exact rate", ours, "%", "<= 20%", ours <= 20.0,
        baseline=default, ratio=ours / default if default else None,
        notes=f"reduced budget: {budget['train_n']} training images, {budget['epochs']} epochs "
              f"(full: python -m bench.captcha_solver); baseline = package default image",
    ))
    section.seconds = time.perf_counter() - started
    return section


def fuzz(quick: bool) -> Section:
    section = Section("fuzz campaign")
    started = time.perf_counter()
    module = _optional("bench.fuzz_campaign")
    if module is None or not hasattr(module, "run"):
        section.rows.append(Row("fuzz: 5xx answers", None, "count", "0", None,
                                notes="bench/fuzz_campaign.py (with run()) not present"))
        return section
    # A short, seeded campaign inside make bench; the 20k one is `python -m bench.fuzz_campaign`.
    results = module.run(requests=1_000, seed=20261127, quick=quick)
    section.raw = results if isinstance(results, dict) else {"result": repr(results)}
    found = None
    if isinstance(results, dict):
        for key in ("server_errors", "5xx", "errors_5xx", "five_xx"):
            if key in results:
                value = results[key]
                found = len(value) if isinstance(value, (list, tuple)) else int(value)
                break
    total = results.get("requests") if isinstance(results, dict) else None
    section.rows.append(Row("fuzz: 5xx answers", found, "count", "0",
                            None if found is None else found == 0,
                            notes=f"{total} hostile requests" if total else "see JSON"))
    section.seconds = time.perf_counter() - started
    return section


def run(*, quick: bool, guard) -> list[Section]:
    return [guard("captcha solver", solver, quick), guard("fuzz campaign", fuzz, quick)]
