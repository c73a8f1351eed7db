"""Shared fixtures: a private adb server and HOME per test, and simulated devices on free ports.

Every device test talks to the simulator the way a user's code talks to an emulator: through
Debian's real ``adb`` server on a private port, found via ANDROID_ADB_SERVER_PORT.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import adbutils
import pytest

from android.adb_server import start_private_adb_server
from android.sim.runner import SimLaunchError, free_console_ports, spawn_device

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ADB = shutil.which("adb")


@dataclass
class AdbEnv:
    """A private adb server (own port, own HOME) and the environment that points at it."""

    port: int
    home: Path
    env: dict[str, str]
    client: adbutils.AdbClient
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def adb(
        self, *args: str, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        assert ADB is not None
        return subprocess.run(
            [ADB, "-P", str(self.port), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def adb_bytes(self, *args: str, timeout: float = 30) -> bytes:
        assert ADB is not None
        return subprocess.run(
            [ADB, "-P", str(self.port), *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=True,
        ).stdout

    def wait_for(self, serial: str, timeout: float = 15.0) -> adbutils.AdbDevice:
        """Until the adb server lists ``serial`` in state 'device'."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {d.serial: d.state for d in self.client.list()}
            if states.get(serial) == "device":
                return self.client.device(serial)
            time.sleep(0.05)
        raise AssertionError(f"{serial} never came online; adb sees {self.client.list()}")

    def start_devices(self, count: int = 1, **kwargs: object) -> list[adbutils.AdbDevice]:
        """Spawn ``count`` devices on free port pairs (>= 5600) and wait until adb lists them.

        A port pair can be taken by another process between the check and the bind (tests of
        several checkouts may share this machine), so a failed start is retried elsewhere.
        """
        base = int(kwargs.pop("base", 5600))  # type: ignore[call-overload]
        serials = []
        for _ in range(count):
            for attempt in range(4):
                port = free_console_ports(1, base=base)[0]
                try:
                    proc = spawn_device(port, run_dir=self.home / "sim", env=self.env, **kwargs)  # type: ignore[arg-type]
                except SimLaunchError:
                    if attempt == 3:
                        raise
                    base = port + 2
                    continue
                self.procs.append(proc)
                serials.append(f"emulator-{port}")
                base = port + 2
                break
        return [self.wait_for(serial) for serial in serials]


@pytest.fixture
def adb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdbEnv]:
    if ADB is None:
        pytest.fail("Debian's adb is required: `make test` installs it (apt-get install adb)")
    home = tmp_path / "home"
    home.mkdir()
    base_env = dict(os.environ, HOME=str(home), DIGIQ_SIM_RUN_DIR=str(home / "sim"))
    port = start_private_adb_server(ADB, base_env)
    env = dict(base_env, ANDROID_ADB_SERVER_PORT=str(port))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    monkeypatch.setenv("DIGIQ_SIM_RUN_DIR", str(home / "sim"))
    client = adbutils.AdbClient(host="127.0.0.1", port=port)
    adb_env = AdbEnv(port=port, home=home, env=env, client=client)
    try:
        yield adb_env
    finally:
        for proc in adb_env.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in adb_env.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(
            [ADB, "-P", str(port), "kill-server"], env=env, capture_output=True, timeout=30
        )


@pytest.fixture
def sim_device(adb_env: AdbEnv) -> adbutils.AdbDevice:
    """One simulated device (minimal world, DigiRL profile) visible to the private adb server."""
    return adb_env.start_devices(1, world="minimal")[0]


@pytest.fixture
def device_factory(adb_env: AdbEnv) -> Callable[..., list[adbutils.AdbDevice]]:
    return adb_env.start_devices
