"""Profile one gunicorn worker of the service under the benchmark's load (py-spy).

    python -m bench.profile post          # the write path (POST a comment)
    python -m bench.profile page          # the article page with 1,000 comments
    python -m bench.profile list          # the JSON list
    python -m bench.profile post --idle   # count time blocked on I/O too

Starts the bench app under gunicorn (as the benchmarks do), seeds 1,000 published
comments, drives it with the load generator, samples one worker with
``py-spy record`` and prints the hottest frames (inclusive and self). Needs the
``bench`` extra (``pip install -e '.[bench]'``); py-spy may need ptrace rights.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from moderation.articles import default_article

from . import loadgen, read_path, write_path
from .common import Gunicorn, ensure_model, scratch_dir


def top_frames(raw: Path, count: int = 30) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    out = [f"{total} samples", "--- inclusive"]
    out += [f"{100 * n / total:5.1f}% {frame[:140]}" for frame, n in inclusive.most_common(count)]
    out += ["--- self"]
    out += [f"{100 * n / total:5.1f}% {frame[:140]}" for frame, n in own.most_common(15)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("target", choices=("post", "page", "list"))
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--idle", action="store_true", help="include samples blocked on I/O")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        parser.error("py-spy is not installed: pip install -e '.[bench]'")
    models = str(ensure_model())
    slug = default_article().slug
    raw = scratch_dir("bench-profile-") / "profile.txt"
    with Gunicorn("bench.bench_app:make_app()", env={"MODELS_DIR": models}) as server:
        read_path.seed(server, slug, read_path.PUBLISHED)
        if args.target == "post":
            feed = write_path.CommentFeed(slug)
            rate_guess = 600
            lines, ripe = write_path._service_lines(
                server, feed, int(rate_guess * (args.seconds + 3)))
            write_path.wait_until(ripe)
        elif args.target == "page":
            lines = [f"GET /articles/{slug}"]
        else:
            lines = [f"GET /api/v1/articles/{slug}/comments"]
        requests = loadgen.write_requests(lines)
        result: dict = {}
        load = threading.Thread(target=lambda: result.update(loadgen.run(
            server.base_url, requests, duration=args.seconds + 3, connections=8)))
        load.start()
        time.sleep(1.5)
        worker = server.worker_pids()[0]
        command = [spy, "record", "-d", str(int(args.seconds)), "-r", "200", "-f", "raw",
                   "-o", str(raw), "--pid", str(worker)]
        if args.idle:
            command.append("--idle")
        subprocess.run(command, capture_output=True, check=True)
        load.join()
    print(f"{args.target}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
          f"p99 {result['p99_ms']:.1f} ms, statuses {result['statuses']}")
    print(top_frames(raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
