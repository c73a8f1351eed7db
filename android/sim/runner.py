"""Start, find and stop simulated-device processes (what ``digiq-sim`` and the tests use).

Ports are counted like the Android emulator's ``-port``: the console on an even port C and
adb on C+1, devices two apart (5554/5555, 5556/5557, ...). Each device is its own process;
its pid file (``<serial>.json``) and log live in a run directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from android.ports import port_free

log = logging.getLogger(__name__)

DEFAULT_BASE_PORT = 5554


class SimLaunchError(RuntimeError):
    """A simulated device did not come up; the message includes the end of its log."""


@dataclass(frozen=True)
class SimDeviceInfo:
    serial: str
    pid: int
    adb_port: int
    console_port: int
    host: str
    profile: str
    world: str
    seed: int
    avd_name: str

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid)


def default_run_dir() -> Path:
    env = os.environ.get("DIGIQ_SIM_RUN_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("HOME", str(Path.home()))) / ".digiq" / "sim"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


def free_console_ports(
    count: int, base: int = DEFAULT_BASE_PORT, limit: int | None = None
) -> list[int]:
    """``count`` even console ports >= base whose console and adb ports are both free.

    ``limit`` is the highest port considered (default: base + 512).
    """
    limit = base + 512 if limit is None else limit
    if base % 2:
        raise ValueError(f"base port {base} must be even (console port; adb is base+1)")
    ports: list[int] = []
    port = base
    while len(ports) < count and port + 1 <= limit:
        if port_free(port) and port_free(port + 1):
            ports.append(port)
        port += 2
    if len(ports) < count:
        raise SimLaunchError(
            f"only {len(ports)} free port pairs in {base}..{limit}, {count} wanted"
        )
    return ports


def port_lock_path() -> Path:
    """The file whose lock :func:`port_claim_lock` takes (one per user, in the temp dir)."""
    return Path(tempfile.gettempdir()) / f"digiq-sim-ports-{os.getuid()}.lock"


@contextlib.contextmanager
def port_claim_lock() -> Iterator[None]:
    """Hold the machine-wide lock of "find a free port pair, start a device on it".

    Between :func:`free_console_ports` seeing a pair free and the new device binding it (a
    second or so of interpreter start-up) another process could pick the same pair: four
    ``digiq-eval --devices sim:2`` started together all probe from the same base port, and
    their retries collided again until one of them gave up. Held around the probe and
    :func:`spawn_device` (which returns once the device listens), the lock makes the claim
    atomic between this user's processes; an ``flock`` is released by the kernel if its
    holder dies, so a crash cannot leave it taken.
    """
    with open(port_lock_path(), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def list_devices(run_dir: Path | None = None) -> list[SimDeviceInfo]:
    """Devices recorded in the run dir (stale records of dead processes are removed)."""
    run_dir = run_dir or default_run_dir()
    found: list[SimDeviceInfo] = []
    for path in sorted(run_dir.glob("emulator-*.json")):
        try:
            raw = json.loads(path.read_text())
            info = SimDeviceInfo(**{k: raw[k] for k in SimDeviceInfo.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable device record %s: %s", path, exc)
            continue
        if not info.alive:
            path.unlink(missing_ok=True)
            continue
        found.append(info)
    return found


def spawn_device(
    console_port: int,
    *,
    profile: str = "digirl_pixel_api28",
    world: str | None = None,
    seed: int = 0,
    run_dir: Path | None = None,
    boot_delay: float = 0.0,
    avd_name: str | None = None,
    avd_config: str | None = None,
    announce: bool = True,
    host: str = "127.0.0.1",
    wildness: float | None = None,
    world_options: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
    timeout: float = 30.0,
) -> subprocess.Popen[bytes]:
    """Start one device process on console port C / adb port C+1; wait until it listens."""
    run_dir = run_dir or default_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    serial = f"emulator-{console_port}"
    info_path = run_dir / f"{serial}.json"
    info_path.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "android.sim.serve",
        "--adb-port",
        str(console_port + 1),
        "--console-port",
        str(console_port),
        "--host",
        host,
        "--profile",
        profile,
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
        "--boot-delay",
        str(boot_delay),
    ]
    if world:
        cmd += ["--world", world]
    if avd_name:
        cmd += ["--avd-name", avd_name]
    if avd_config:
        cmd += ["--avd-config", avd_config]
    if not announce:
        cmd.append("--no-announce")
    if wildness is not None:
        cmd += ["--wildness", str(wildness)]
    for key, value in (world_options or {}).items():
        cmd += ["--world-option", f"{key}={json.dumps(value)}"]
    proc_env = dict(os.environ if env is None else env)
    proc = subprocess.Popen(
        cmd,
        env=proc_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if wait:
        deadline = time.monotonic() + timeout
        while not info_path.exists():
            if proc.poll() is not None:
                raise SimLaunchError(
                    f"{serial} exited with {proc.returncode}: {log_tail(run_dir, serial)}"
                )
            if time.monotonic() > deadline:
                proc.kill()
                raise SimLaunchError(
                    f"{serial} did not start within {timeout:.0f}s: {log_tail(run_dir, serial)}"
                )
            time.sleep(0.02)
    return proc


def log_tail(run_dir: Path, serial: str, lines: int = 15) -> str:
    path = run_dir / f"{serial}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def stop_device(info: SimDeviceInfo, timeout: float = 10.0) -> bool:
    """SIGTERM, wait, then SIGKILL. True when the process is gone."""
    if not info.alive:
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not info.alive:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGKILL)
    time.sleep(0.1)
    return not info.alive
