"""Training: retrain on all shipped data with cross-validation, and the streaming curve.

* CV retrain: ``python -m training train`` (what ``make train`` runs) into a private
  models folder, wall-clock time and peak RSS of the process. Baseline column: the
  same command with ``--quick`` (no hyper-parameter search), same run.
* Scaling: the streaming trainer on 10k, 100k and 1M synthetic comments, time and
  peak RSS, plotted to ``bench/results/training_scaling.png``. When the classifier
  engineer's own measurement script (``bench/bench_training.py``) is present, its
  ``run(sizes, out_dir)`` is used; otherwise ``python -m training train --streaming
  --data FILE`` is timed here, if the CLI has that option.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

from .common import PROJECT_ROOT, RESULTS_DIR, Row, Section, python

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (300, 600)
GIB = 1024**3


def timed(args: list[str], env: dict | None = None) -> dict:
    """Run a command; its wall time, peak RSS (from wait4) and exit status."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "exit": process.returncode,
        "output_tail": output.decode(errors="replace").splitlines()[-5:],
    }


def cv_retrain(quick: bool) -> tuple[dict, dict]:
    if quick:  # a retrain takes tens of seconds: not in the smoke run
        return {"skipped": "quick mode"}, {"skipped": "quick mode"}
    models = tempfile.mkdtemp(prefix="bench-models-")
    cmd = [python(), "-m", "training", "--models-dir", models, "train"]
    return timed(cmd), timed([*cmd, "--quick"])


def synthetic_file(count: int, directory: Path) -> Path:
    """``count`` labelled comments recombined from shipped texts (JSONL)."""
    from training.datasets import load_shipped

    corpus = load_shipped()
    words = {0: [], 1: []}
    for text, label in zip(corpus.texts, corpus.labels, strict=True):
        words[int(label)].extend(text.split())
    rng = random.Random(count)
    path = directory / f"synthetic-{count}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(count):
            label = 1 if rng.random() < 0.4 else 0
            pool = words[label]
            text = " ".join(rng.choice(pool) for _ in range(rng.randint(4, 30)))
            handle.write(json.dumps({"text": text, "label": label}) + "\n")
    return path


def _has_streaming_cli() -> bool:
    out = subprocess.run([python(), "-m", "training", "train", "--help"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True)
    return "--streaming" in out.stdout


def scaling(sizes: tuple[int, ...]) -> dict:
    try:
        theirs = importlib.import_module("bench.bench_training")
    except ImportError:
        theirs = None
    if theirs is not None and hasattr(theirs, "run"):
        return {"source": "bench/bench_training.py", "points": theirs.run(sizes=sizes)}
    if not _has_streaming_cli():
        return {"source": None, "points": [],
                "missing": "no streaming trainer yet (`python -m training train --streaming`)"}
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for size in sizes:
            data = synthetic_file(size, Path(tmp))
            models = Path(tmp) / f"models-{size}"
            result = timed([python(), "-m", "training", "--models-dir", str(models), "train",
                            "--streaming", "--data", str(data)])
            points.append({"n": size, **result})
            data.unlink()
    return {"source": "python -m training train --streaming", "points": points}


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [p["n"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.loglog(n, [p["seconds"] for p in points], "o-", label="measured")
    left.loglog(n, [points[0]["seconds"] * x / n[0] for x in n], "--", label="linear")
    left.set_xlabel("comments")
    left.set_ylabel("seconds")
    left.legend()
    right.semilogx(n, [p["peak_rss_mb"] for p in points], "o-")
    right.axhline(2048, color="red", linestyle=":", label="2 GiB target")
    right.set_xlabel("comments")
    right.set_ylabel("peak RSS (MB)")
    right.legend()
    fig.suptitle("streaming training: time and peak memory")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(*, quick: bool, results_dir: Path = RESULTS_DIR) -> Section:
    section = Section("training")
    started = time.perf_counter()
    cv, base = cv_retrain(quick)
    curve = scaling(QUICK_SIZES if quick else SIZES)
    section.raw = {"cv_retrain": cv, "quick_retrain": base, "scaling": curve}
    if "seconds" in cv:
        section.rows.append(Row(
            "training: retrain with CV, all shipped data", cv["seconds"], "s", "<= 30 s",
            cv["seconds"] <= 30 and cv["exit"] == 0, baseline=base["seconds"],
            ratio=cv["seconds"] / base["seconds"],
            notes=f"`python -m training train`; baseline: same with --quick (no C search); "
                  f"peak RSS {cv['peak_rss_mb']:.0f} MB",
        ))
    else:
        section.rows.append(Row("training: retrain with CV, all shipped data", None, "s",
                                "<= 30 s", None,
                                notes="skipped in --quick mode"))
    points = [p for p in curve["points"] if p.get("exit", 0) == 0]
    if len(points) >= 2:
        name = "training_scaling_quick.png" if quick else "training_scaling.png"
        plot(points, results_dir / name)
        section.raw["plot"] = name
        small, big = points[0], points[-1]
        per_doc_ratio = (big["seconds"] / big["n"]) / (small["seconds"] / small["n"])
        # Linear: the per-comment time at the largest size within 1.5x of the smallest's.
        linear = per_doc_ratio <= 1.5
        section.rows.append(Row(
            f"training: streaming time {small['n']:,} -> {big['n']:,}", big["seconds"], "s",
            "linear (per-comment time within 1.5x)", linear, baseline=small["seconds"],
            ratio=per_doc_ratio,
            notes="ratio = per-comment time largest/smallest; "
                  + ", ".join(f"{p['n']:,}: {p['seconds']:.1f} s" for p in points),
        ))
        peak_gib = big["peak_rss_mb"] / 1024
        section.rows.append(Row(
            f"training: streaming peak RSS at {big['n']:,}", big["peak_rss_mb"], "MB",
            "<= 2 GiB at 1M", peak_gib <= 2.0, baseline=small["peak_rss_mb"],
            notes=", ".join(f"{p['n']:,}: {p['peak_rss_mb']:.0f} MB" for p in points)
            + f"; plot {name}",
        ))
    else:
        why = curve.get("missing") or "streaming runs failed: see JSON"
        for figure in ("training: streaming time 10k -> 1M", "training: streaming peak RSS 1M"):
            section.rows.append(Row(figure, None, "", "linear / <= 2 GiB", None, notes=why))
    section.seconds = time.perf_counter() - started
    return section
