"""``python -m bench`` (``make bench``): every benchmark, one table, raw numbers as JSON.

    python -m bench               # the full run (under 10 minutes on 2 cores)
    python -m bench --quick       # tiny sizes: checks the harness, numbers mean nothing
    python -m bench --only write,read

Writes ``bench/results/latest.md`` and ``latest.json`` (``quick.*`` in quick mode).
A benchmark that crashes is reported as ERROR in the table; the others still run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from .common import RESULTS_DIR, Gunicorn, Section, ensure_model
from .report import machine, now, write

ALL = ("captcha", "scoring", "read", "write", "costs", "memory", "training", "extras")


def _guard(name: str, func, *args, **kwargs) -> Section:
    started = time.perf_counter()
    try:
        section = func(*args, **kwargs)
    except Exception:  # noqa: BLE001 - one broken benchmark must not hide the rest
        section = Section(name, error=traceback.format_exc())
        print(section.error, file=sys.stderr)
    section.seconds = section.seconds or time.perf_counter() - started
    print(f"[bench] {name}: {section.seconds:.1f} s", file=sys.stderr, flush=True)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--only", default=",".join(ALL),
                        help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="model to serve (default: $MODELS_DIR or ./models; trained if none)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(wanted) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    meta = {"date": now(), "mode": "quick" if args.quick else "full", "machine": machine()}
    models = str(ensure_model(args.models_dir))
    sections: list[Section] = []
    baseline: list[Gunicorn] = []

    def start_baseline(page: Path | None = None, listing: Path | None = None) -> Gunicorn:
        env = {}
        if page is not None:
            env = {"BENCH_PAGE_FILE": str(page), "BENCH_JSON_FILE": str(listing)}
        server = Gunicorn("bench.baseline_app:make_app()", env=env).start()
        baseline.append(server)
        return server

    try:
        for name in wanted:
            if name == "captcha":
                from . import captcha_throughput

                sections.append(_guard(name, captcha_throughput.run, models, quick=args.quick))
            elif name == "scoring":
                from . import scoring

                sections.append(_guard(name, scoring.run, models, quick=args.quick))
            elif name == "read":
                from . import read_path

                def read_run():
                    section, _ = read_path.run(models, start_baseline, quick=args.quick)
                    return section

                sections.append(_guard(name, read_run))
            elif name == "write":
                from . import write_path

                def write_run():
                    server = baseline[-1] if baseline else start_baseline()
                    return write_path.run(models, server, quick=args.quick)

                sections.append(_guard(name, write_run))
            elif name == "costs":
                from . import costs

                sections.append(_guard(name, costs.run, models, quick=args.quick))
            elif name == "memory":
                from . import memory

                sections.append(_guard(name, memory.run, models, quick=args.quick))
            elif name == "training":
                from . import training_bench

                sections.append(_guard(name, training_bench.run, quick=args.quick,
                                       results_dir=args.out))
            elif name == "extras":
                from . import extras

                sections.extend(extras.run(quick=args.quick, guard=_guard))
            # The baseline server is only needed by read and write; stop it after write.
            if name == "write":
                while baseline:
                    baseline.pop().stop()
    finally:
        while baseline:
            baseline.pop().stop()

    meta["seconds"] = time.perf_counter() - started
    md_path, json_path = write(sections, meta, args.out, "quick" if args.quick else "latest")
    print(md_path.read_text())
    print(f"written: {md_path} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
