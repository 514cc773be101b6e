"""What every benchmark shares: result rows, processes, RSS, percentiles.

Nothing here times anything; the benchmark modules do.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One line of the table: a figure, ours next to its baseline, and the target."""

    figure: str
    ours: float | None
    unit: str
    target: str
    passed: bool | None  # None: not measured (see notes)
    baseline: float | None = None
    ratio: float | None = None
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Section:
    """One benchmark's rows, its raw numbers, and how it was set up."""

    name: str
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def shortfall(ours: float, baseline: float, why: str, target: float = 0.5) -> str:
    """How far a throughput ratio falls short of ``target`` (empty when it is met)."""
    if not baseline or ours >= target * baseline:
        return ""
    return (f"SHORT by {target - ours / baseline:.2f}x ({target * baseline:,.0f} req/s needed, "
            f"{ours:,.0f} reached); why: the '{why}' row; ")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def smaps_rollup(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private clean + dirty) of a live process in bytes.

    RSS counts every resident page, shared or not; PSS divides each shared page by
    the number of processes mapping it; USS is what the process alone holds (what
    ending it would give back).
    """
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            fields[name.strip()] = int(parts[0]) * 1024
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def scratch_dir(prefix: str) -> Path:
    """A private temporary directory, removed when this process exits.

    Benchmarks and the tests that start gunicorn make many of these (a gunicorn var
    dir holds tens of MB of Redis data); left behind, repeated runs filled /tmp.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def python() -> str:
    return sys.executable


class Gunicorn:
    """``gunicorn -c gunicorn.conf.py <app>`` as ``make run`` starts it, on a free port.

    Same config file (2 gevent workers, embedded Redis started by the master's
    ``on_starting`` hook), but a private var dir so benchmark data never lands in
    the operator's ``var/``. The access log goes to a file instead of the terminal.
    """

    def __init__(self, app_spec: str, *, env: dict[str, str] | None = None, workers: int = 2):
        self.app_spec = app_spec
        self.port = free_port()
        self.var_dir = scratch_dir("bench-var-")
        self.log_path = self.var_dir / "gunicorn.log"
        self.env = {
            **os.environ,
            "MODERATION_VAR_DIR": str(self.var_dir),
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
            **(env or {}),
        }
        self.env.pop("REDIS_URL", None)  # the embedded Redis, as `make run` does
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_socket(self) -> Path:
        return self.var_dir / "redis" / "redis.sock"

    def redis(self):
        import redis

        return redis.Redis(unix_socket_path=str(self.redis_socket), decode_responses=True)

    def start(self, probe_path: str = "/", timeout: float = 90.0) -> Gunicorn:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [python(), "-m", "gunicorn", "-c", str(PROJECT_ROOT / "gunicorn.conf.py"),
             self.app_spec],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + probe_path, timeout=5) as answer:
                    answer.read()
                if len(self.worker_pids()) >= int(self.env["WEB_CONCURRENCY"]):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        try:
            kids = children(self.process.pid)
        except OSError:
            return []
        return [pid for pid in kids if "gunicorn" in cmdline(pid)]

    def warm(self, paths: list[str], rounds: int = 4) -> None:
        """A few requests per worker so imports and lazy loads are done before timing."""
        for _ in range(rounds * max(1, len(self.worker_pids()))):
            for path in paths:
                try:
                    with urllib.request.urlopen(self.base_url + path, timeout=10) as answer:
                        answer.read()
                except OSError:
                    pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # the master stops workers and its Redis
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.var_dir, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a unix socket (for in-process benchmarks)."""
    from moderation.embedded_redis import EmbeddedRedis

    directory = scratch_dir("bench-redis-")
    server = EmbeddedRedis(directory)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def ensure_model(models_dir: Path | None = None) -> Path:
    """The models directory the service will load; trains a first model if there is none.

    Runs in a subprocess (like ``make model``) so the training imports and memory do
    not stay in the benchmark process.
    """
    models = Path(models_dir or os.environ.get("MODELS_DIR", PROJECT_ROOT / "models"))
    code = "import sys; from training.train import ensure_model; ensure_model(sys.argv[1])"
    subprocess.run([python(), "-c", code, str(models)], cwd=PROJECT_ROOT, check=True)
    return models
