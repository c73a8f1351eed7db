"""Shared helpers for benchmark scripts: a private adb server + simulated devices, and stats.

Benchmarks print one JSON object on stdout; figures go to benchmarks/RESULTS.md by hand with
the command, date and machine. Medians and ratios are taken within one run (noisy machines).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import adbutils  # noqa: E402

from android.adb_server import start_private_adb_server  # noqa: E402
from android.sim.runner import free_console_ports, spawn_device  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize_ms(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "n": len(ms),
    }


def timed(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def machine() -> dict[str, object]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def sim_devices(
    count: int = 1, **spawn_kwargs: object
) -> Iterator[tuple[adbutils.AdbClient, list[adbutils.AdbDevice], list[int]]]:
    """``count`` simulated devices behind a private adb server; yields (client, devices, pids)."""
    adb = shutil.which("adb")
    if adb is None:
        raise SystemExit("adb not found: run `make setup` (installs Debian's adb)")
    home = Path(tempfile.mkdtemp(prefix="digiq-bench-"))
    port = start_private_adb_server(adb, dict(os.environ, HOME=str(home)))
    env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    os.environ.update(HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    procs = []
    try:
        consoles = free_console_ports(count, base=5700)
        for console in consoles:
            procs.append(spawn_device(console, run_dir=home / "sim", env=env, **spawn_kwargs))  # type: ignore[arg-type]
        client = adbutils.AdbClient(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 30
        serials = [f"emulator-{c}" for c in consoles]
        while time.monotonic() < deadline:
            states = {d.serial: d.state for d in client.list()}
            if all(states.get(s) == "device" for s in serials):
                break
            time.sleep(0.05)
        yield client, [client.device(s) for s in serials], [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        subprocess.run([adb, "-P", str(port), "kill-server"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def smart_socket_exec(server_port: int, serial: str, command: str) -> bytes:
    """Run ``exec:<command>`` through the adb server with a bare smart-socket client.

    This is the floor the adb server itself allows (no adbutils per-call overhead: adbutils
    sleeps 10 ms in every connection close and opens a second connection for server_version).
    """
    with socket.create_connection(("127.0.0.1", server_port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for request in (f"host:transport:{serial}", f"exec:{command}"):
            raw = request.encode()
            sock.sendall(b"%04x" % len(raw) + raw)
            status = sock.recv(4)
            if status != b"OKAY":
                raise RuntimeError(f"adb server refused {request!r}: {status!r}")
        buf = bytearray()
        while chunk := sock.recv(1 << 20):
            buf += chunk
    return bytes(buf)
