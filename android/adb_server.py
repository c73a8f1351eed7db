"""Start a private adb server on a port nothing else holds, retrying elsewhere when one is taken.

Why: the test suite, the benchmarks and ``--devices sim:N`` each run their own adb server so that
they never touch the user's (5037) or each other's. Picking "a free port" and then starting adb on
it is a race: between the check and adb's bind, the port can be taken - in particular the kernel
hands ports of its ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768..60999 by
default) to every outgoing connection, including the adb servers' own scans of 5555..5585. A CI
run failed exactly so (``adb start-server`` exit 255 on an ephemeral port). So ports are drawn
below the ephemeral range, each is checked before use, and a failed start moves to another port.

A port already held by a listening adb server is never reused: ``adb start-server`` would
succeed there and silently share that server.
"""

from __future__ import annotations

import contextlib
import logging
import random
import subprocess
from collections.abc import Mapping
from pathlib import Path

from android.ports import port_free

__all__ = ["AdbServerStartError", "pick_server_port", "start_private_adb_server"]

log = logging.getLogger(__name__)

#: Ports drawn for private servers: above the emulator/sim ranges (5554..6200), below Linux's
#: default ephemeral range, and away from adb's own default 5037.
PRIVATE_PORT_RANGE = (20000, 32000)


class AdbServerStartError(RuntimeError):
    """``adb start-server`` failed on every port tried; the message lists each port and why."""


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def pick_server_port(rng: random.Random | None = None, tries: int = 200) -> int:
    """A port in :data:`PRIVATE_PORT_RANGE`, outside the ephemeral range, that binds right now."""
    rng = rng or random.SystemRandom()
    low, high = PRIVATE_PORT_RANGE
    eph_low, eph_high = _ephemeral_range()
    for _ in range(tries):
        port = rng.randrange(low, high)
        if eph_low <= port <= eph_high:
            continue
        if port_free(port):
            return port
    raise AdbServerStartError(f"no free port found in {low}..{high} after {tries} tries")


def start_private_adb_server(
    adb: str,
    env: Mapping[str, str],
    *,
    attempts: int = 5,
    timeout: float = 30.0,
    rng: random.Random | None = None,
) -> int:
    """Start ``adb`` as a server of its own and return its port.

    ``env`` is the environment to run adb in (its HOME keeps adb's keys apart);
    ``ANDROID_ADB_SERVER_PORT`` in it is overridden by the port chosen, which the caller then
    sets wherever clients need it. Raises :class:`AdbServerStartError` naming every port tried
    and adb's stderr for each, after ``attempts`` failed starts.
    """
    failures: list[str] = []
    for _ in range(attempts):
        port = pick_server_port(rng)
        run_env = dict(env, ANDROID_ADB_SERVER_PORT=str(port))
        try:
            result = subprocess.run(
                [adb, "-P", str(port), "start-server"],
                env=run_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            failures.append(f"port {port}: start-server timed out after {timeout:g} s")
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(
                    [adb, "-P", str(port), "kill-server"],
                    env=run_env,
                    capture_output=True,
                    timeout=10,
                )
            continue
        if result.returncode == 0:
            return port
        reason = (result.stderr or result.stdout).strip() or "(no output)"
        failures.append(f"port {port}: exit {result.returncode}: {reason}")
        log.warning("adb start-server failed on port %d (%s); trying another port", port, reason)
    raise AdbServerStartError(
        f"could not start a private adb server ({adb}) in {attempts} attempts: "
        + "; ".join(failures)
    )
