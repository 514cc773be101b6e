"""The read path with ours and the baseline alternating, for a loaded machine.

    python -m bench.read_ab [rounds] [seconds]

``python -m bench --only read`` measures ours, then the baseline: when other jobs
come and go between the two, the ratio moves by 2x. Here both servers run at once
(ours seeded with the same 1,000 comments, the baseline serving the bytes ours
answered) and short wrk runs alternate ours-page, base-page, ours-list, base-list
for ``rounds`` rounds; the best round of each is compared. A tool for comparing
commits (run it from each checkout), not part of ``make bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from moderation.articles import default_article

from . import loadgen, read_path
from .common import Gunicorn, ensure_model


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 4
    seconds = float(argv[1]) if len(argv) > 1 else 3.0
    slug = default_article().slug
    paths = {"page": f"/articles/{slug}", "list": f"/api/v1/articles/{slug}/comments"}
    models = str(ensure_model())
    with Gunicorn("bench.bench_app:make_app()", env={"MODELS_DIR": models}) as ours:
        read_path.seed(ours, slug, read_path.PUBLISHED)
        ours.warm(list(paths.values()), rounds=4)
        files = {}
        for name, path in paths.items():
            files[name] = Path(ours.var_dir) / f"{name}.body"
            files[name].write_bytes(read_path.fetch(ours.base_url + path))
        env = {"BENCH_PAGE_FILE": str(files["page"]), "BENCH_JSON_FILE": str(files["list"])}
        with Gunicorn("bench.baseline_app:make_app()", env=env) as base:
            targets = {
                ("ours", "page"): (ours, paths["page"]), ("base", "page"): (base, "/page"),
                ("ours", "list"): (ours, paths["list"]), ("base", "list"): (base, "/json"),
            }
            seen: dict[tuple[str, str], list[float]] = {key: [] for key in targets}
            for _ in range(rounds):
                for key, (server, path) in targets.items():
                    result = loadgen.run(server.base_url, loadgen.write_requests([f"GET {path}"]),
                                         duration=seconds, connections=read_path.CONNECTIONS)
                    errors = result["socket_errors"] + sum(
                        count for status, count in result["statuses"].items() if status != 200)
                    if errors:
                        raise SystemExit(f"{key}: {errors} errors: {result['statuses']}")
                    seen[key].append(result["rps"])
    for name in paths:
        mine, theirs = seen[("ours", name)], seen[("base", name)]
        print(f"{name}: ours {max(mine):.0f} req/s, baseline {max(theirs):.0f} req/s, "
              f"ratio {max(mine) / max(theirs):.2f} (rounds: ours {[round(x) for x in mine]}, "
              f"baseline {[round(x) for x in theirs]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
