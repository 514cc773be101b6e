"""The load generator, in its own process: wrk when installed, else a small asyncio client.

Both read the same request file (one request a line: ``METHOD PATH [JSON]``) and
report the same numbers: requests, seconds, requests/s, latency percentiles, HTTP
statuses and socket errors. wrk (C, one thread) is preferred because it costs the
server almost no CPU; the Python fallback keeps ``make bench`` working where wrk is
not installed, at the price of more client CPU (the table says which one ran).

Both clients open one TCP connection per request and say ``Connection: close``, the
service and its baseline alike (gunicorn's workers would keep a connection alive for
a few seconds; a reader's first page view pays for the connection too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

LUA = Path(__file__).with_name("loadgen.lua")


_requests_dir: Path | None = None


def write_requests(lines: list[str]) -> Path:
    """The request file for :func:`run`, kept until this process exits."""
    global _requests_dir
    if _requests_dir is None:
        from bench.common import scratch_dir

        _requests_dir = scratch_dir("bench-requests-")
    handle = tempfile.NamedTemporaryFile(
        "w", dir=_requests_dir, suffix=".txt", delete=False, encoding="utf-8"
    )
    with handle:
        for line in lines:
            if "\n" in line:
                raise ValueError("a request line may not contain a newline")
            handle.write(line + "\n")
    return Path(handle.name)


def tool() -> str:
    forced = os.environ.get("BENCH_LOADGEN")
    if forced:
        return forced
    return "wrk" if shutil.which("wrk") else "python"


def run(
    base_url: str,
    request_file: Path,
    *,
    duration: float,
    connections: int,
    delay_ms: float = 0.0,
) -> dict:
    """Send the requests for ``duration`` seconds over ``connections`` connections."""
    which = tool()
    if which == "wrk":
        result = _run_wrk(base_url, request_file, duration, connections, delay_ms)
    else:
        result = _run_python(base_url, request_file, duration, connections, delay_ms)
    result["tool"] = which
    result["connections"] = connections
    result["delay_ms"] = delay_ms
    result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    return result


def _run_wrk(base_url, request_file, duration, connections, delay_ms) -> dict:
    script = LUA.read_text()
    if delay_ms > 0:
        script = script.replace(
            "--DELAY--", f"function delay()\n  return {delay_ms:.3f}\nend"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
             "--timeout", "10s", "-s", handle.name, base_url, "--",
             str(request_file), str(delay_ms), "1"],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    raw = json.loads(line[len("WRKJSON "):])
    return {
        "requests": raw["requests"],
        "seconds": raw["duration_us"] / 1e6,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "statuses": {int(k): v for k, v in raw["statuses"].items()},
        "socket_errors": raw["socket_errors"] + raw["timeouts"],
        "wrapped": raw["wrapped"],
    }


def _run_python(base_url, request_file, duration, connections, delay_ms) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", base_url, str(request_file),
         "--duration", str(duration), "--connections", str(connections),
         "--delay-ms", str(delay_ms)],
        capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    raw = json.loads(out)
    # JSON object keys are strings: the statuses come back as {"201": n}, and every
    # reader of a run (as of wrk's, above) counts them by int.
    raw["statuses"] = {int(k): v for k, v in raw["statuses"].items()}
    return raw


# --- the asyncio fallback client (runs as `python -m bench.loadgen`) ---------------


def _encode(line: str, host: str) -> bytes:
    parts = line.split(" ", 2)
    method, path = parts[0], parts[1]
    body = parts[2].encode() if len(parts) > 2 and parts[2] else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def _one(host: str, port: int, payload: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # Connection: close -> the body ends with the connection
        return int(status_line.split()[1])
    finally:
        writer.close()


async def _client(args) -> dict:
    url = urlsplit(args.base_url)
    host, port = url.hostname, url.port or 80
    lines = Path(args.request_file).read_text(encoding="utf-8").splitlines()
    payloads = [_encode(line, f"{host}:{port}") for line in lines]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    wrapped = 0
    position = 0
    deadline = time.perf_counter() + args.duration

    async def worker() -> None:
        nonlocal position, errors, wrapped
        while time.perf_counter() < deadline:
            if position >= len(payloads):
                position = 0
                wrapped += 1
            payload = payloads[position]
            position += 1
            started = time.perf_counter()
            try:
                status = await _one(host, port, payload)
            except OSError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if args.delay_ms > 0:
                await asyncio.sleep(args.delay_ms / 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    seconds = time.perf_counter() - started
    from bench.common import percentile

    ms = [value * 1000 for value in latencies]
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
        "statuses": statuses,
        "socket_errors": errors,
        "wrapped": wrapped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("request_file")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    print(json.dumps(asyncio.run(_client(parser.parse_args()))))


if __name__ == "__main__":
    main()
