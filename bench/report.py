"""The one Markdown table, and the JSON with every raw number."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from .common import PROJECT_ROOT, Section


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies over all cores since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; without guest time


def cpu_busy_share(seconds: float = 2.0) -> float | None:
    """Share of all cores' time that other processes used over ``seconds`` (we sleep).

    Measured, not the load average: that lags by minutes, so the install step that
    `make bench` runs first on a fresh clone would read as a busy machine.
    """
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    if before is None or after is None or after[1] <= before[1]:
        return None
    idle, total = after[0] - before[0], after[1] - before[1]
    return 1.0 - idle / total


def machine() -> dict:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
        "cpu_busy_at_start": cpu_busy_share(),
        "commit": commit,
    }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "n/a"}[passed]


#: Share of the machine's CPU time used by other processes, just before the run,
#: above which they were competing with it (a quarter: half a core of two).
BUSY_CPU_SHARE = 0.25


def busy_warning(machine_info: dict) -> list[str]:
    """A warning paragraph when the machine was busy as the run started, else nothing.

    The throughput rows run the service, the baseline, Redis and the load generator
    on the same cores; a process outside the benchmark takes its share from each
    round differently, and on a saturated machine the ratios drift towards 1x.
    """
    cores = machine_info.get("cores") or 1
    busy = machine_info.get("cpu_busy_at_start")
    if busy is None or busy <= BUSY_CPU_SHARE:
        return []
    return [f"**Warning: the machine was busy when this run started (other processes "
            f"used {busy:.0%} of its {cores} cores in the 2 s before it). They shared "
            f"the CPU, so the throughput ratios are not reliable; rerun on a quiet "
            f"machine.**", ""]


def markdown(sections: list[Section], meta: dict) -> str:
    lines = [
        f"Benchmarks of {meta['date']} on {meta['machine']['cores']} cores, "
        f"{meta['machine']['memory_gib']} GiB ({meta['machine']['cpu'] or 'unknown CPU'}), "
        f"commit {meta['machine']['commit'] or '?'}, mode {meta['mode']}, "
        f"{meta['seconds']:.0f} s in all.",
        "",
        *busy_warning(meta["machine"]),
        "| figure | ours | baseline | ratio | target | result | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for section in sections:
        if section.error:
            lines.append(f"| {section.name} | — | — | — | — | **ERROR** | "
                         f"{section.error.splitlines()[-1][:200]} |")
        for row in section.rows:
            ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x"
            notes = row.notes.replace("|", "/")
            lines.append(
                f"| {row.figure} | {_fmt(row.ours, row.unit)} | {_fmt(row.baseline, row.unit)} "
                f"| {ratio} | {row.target} | {_verdict(row.passed)} | {notes} |"
            )
    notes = [note for section in sections for note in section.notes]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def _clean(value):
    """JSON-safe: NaN/inf become null, tuples lists, int keys strings."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write(sections: list[Section], meta: dict, out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(sections, meta)
    data = {
        **meta,
        "table": table,
        "sections": [
            {"name": s.name, "seconds": round(s.seconds, 1), "error": s.error,
             "rows": [r.as_dict() for r in s.rows], "notes": s.notes, "raw": s.raw}
            for s in sections
        ],
    }
    md_path = out_dir / f"{stem}.md"
    json_path = out_dir / f"{stem}.json"
    md_path.write_text(table)
    json_path.write_text(json.dumps(_clean(data), indent=2) + "\n")
    return md_path, json_path


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
