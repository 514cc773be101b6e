"""Training and scoring measurements of the classifier (standalone or from ``bench``).

    python -m bench.bench_training                 # all: retrain, scoring, streaming 10k..1M
    python -m bench.bench_training --sizes 10000 100000 --skip-retrain

Prints one JSON dict. ``run(sizes)`` is the streaming curve the ``bench`` package
calls: one point per size with wall seconds, peak RSS (MB) and exit status, each
measured in its own process (``python -m training train --streaming``), so peak
RSS is that of a fresh trainer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _timed(args: list[str]) -> dict:
    """Wall time, peak RSS (wait4) and exit status of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "exit": os.waitstatus_to_exitcode(status),
        "output_tail": output.decode(errors="replace").splitlines()[-3:],
    }


def synthetic_corpus(count: int, path: Path, seed: int = 0) -> Path:
    """``count`` labelled comments recombined from the shipped texts' words (JSONL)."""
    from training.datasets import load_shipped

    corpus = load_shipped()
    words: dict[int, list[str]] = {0: [], 1: []}
    for text, label in zip(corpus.texts, corpus.labels, strict=True):
        words[label].extend(text.split())
    rng = random.Random(seed + count)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(count):
            label = 1 if rng.random() < 0.3 else 0
            pool = words[label]
            text = " ".join(rng.choice(pool) for _ in range(rng.randint(4, 30)))
            handle.write(json.dumps({"text": text, "label": label}) + "\n")
    return path


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), out_dir: Path | None = None,
        chunk_size: int = 20_000) -> list[dict]:
    """Streaming training time and peak RSS per corpus size."""
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        for size in sizes:
            data = synthetic_corpus(size, Path(tmp) / f"synthetic-{size}.jsonl")
            models = Path(tmp) / f"models-{size}"
            result = _timed([sys.executable, "-m", "training", "--models-dir", str(models),
                             "train", "--streaming", "--data", str(data),
                             "--chunk-size", str(chunk_size)])
            points.append({"n": size, **result})
            data.unlink()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "streaming.json").write_text(json.dumps(points, indent=2))
    return points


def retrain() -> dict:
    """``python -m training train --no-report`` (training incl. CV) and the full command."""
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        base = [sys.executable, "-m", "training", "--models-dir", f"{tmp}/models",
                "--reports-dir", f"{tmp}/reports", "train"]
        return {
            "train_with_cv_no_report": _timed([*base, "--no-report"]),
            "train_quick_no_report": _timed([*base, "--quick", "--no-report"]),
            "train_with_report": _timed(base),
        }


def scoring(n: int = 2000, repeats: int = 3) -> dict:
    """Per-document cost: the serving path one at a time vs scikit-learn batched."""
    from moderation.scoring import load_scorer
    from moderation.text import clear_cache
    from training.datasets import load_shipped
    from training.train import train_first_model

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        train_first_model(Path(tmp))
        scorer = load_scorer(tmp)
        scorer.pipeline  # noqa: B018 - score_batch's scikit-learn objects, read before tmp goes
    texts = load_shipped().texts[:n]
    best = {"single_probability": float("inf"), "single_score_explained": float("inf"),
            "batched": float("inf"), "sklearn_single_predict": float("inf")}
    for _ in range(repeats):
        for name, fn in (
            ("batched", lambda: scorer.score_batch(texts)),
            ("single_probability", lambda: [scorer.probability(t) for t in texts]),
            ("single_score_explained", lambda: [scorer.score(t) for t in texts]),
            ("sklearn_single_predict", lambda: [scorer.score_batch([t]) for t in texts[:300]]),
        ):
            clear_cache()  # every path pays for normalization
            started = time.perf_counter()
            fn()
            count = 300 if name == "sklearn_single_predict" else len(texts)
            best[name] = min(best[name], (time.perf_counter() - started) / count)
    out = {f"{k}_ms_per_doc": round(v * 1e3, 4) for k, v in best.items()}
    out["single_over_batched"] = round(best["single_probability"] / best["batched"], 2)
    out["explained_over_batched"] = round(best["single_score_explained"] / best["batched"], 2)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--skip-retrain", action="store_true")
    parser.add_argument("--skip-scoring", action="store_true")
    args = parser.parse_args(argv)
    results: dict = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    if not args.skip_scoring:
        results["scoring"] = scoring()
    if not args.skip_retrain:
        results["retrain"] = retrain()
    if args.sizes:
        results["streaming"] = run(tuple(args.sizes))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
