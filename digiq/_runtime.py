"""What the device-driving commands share: simulated devices, autoraters, agents, signals.

``digiq-eval`` and ``digiq-collect`` run the same machinery (an agent and an autorater over a
pool of devices), so how ``--devices sim:N`` starts simulated devices behind a private adb
server, how ``--autorater`` and ``--agent`` options become factories, and how SIGTERM is
handled live here once rather than in each command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from android.adb_server import AdbServerStartError, start_private_adb_server
from android.device import AndroidDevice
from android.pool import DevicePool, ProvidedDevice, list_server_devices
from android.sim.runner import SimLaunchError, free_console_ports, port_claim_lock, spawn_device
from emulator_configs import DEFAULT_PROFILE
from eval.devices import DeviceSpec, DeviceSpecError, device_source, missing_serials, parse_devices

__all__ = [
    "RATER_CHOICES",
    "SimFleet",
    "agent_options",
    "autorater_factory",
    "check_devices",
    "check_serials_ready",
    "make_autorater_fn",
    "open_pool",
    "raise_interrupt",
]

log = logging.getLogger(__name__)

ADB = "adb"
_SIM_BASE_PORT = 5620
RATER_CHOICES = ("rules", "oracle", "vlm")


# ============================================================================ simulated devices
class SimFleet:
    """Simulated devices for ``--devices sim:N``, each its own process, behind an adb server.

    Uses the adb server of ``$ANDROID_ADB_SERVER_PORT`` when that is set, else starts a private
    one on a free port (and kills it at :meth:`close`) so the run neither needs nor disturbs
    the user's adb server. :meth:`factory` makes one device per call (the pool calls it for the
    initial devices and for replacements of dead ones); the first ``count`` are started in
    parallel up front.
    """

    def __init__(
        self,
        count: int,
        run_dir: Path,
        *,
        profile: str = DEFAULT_PROFILE,
        world: str = "phone",
        seed: int = 0,
        wildness: float | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.count = count
        self.run_dir = run_dir
        self.profile = profile
        self.world = world
        self.seed = seed
        self.wildness = wildness
        self.timeout = timeout
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._ready: list[str] = []
        self._next_port = _SIM_BASE_PORT
        env_port = os.environ.get("ANDROID_ADB_SERVER_PORT")
        self._own_server = not (env_port and env_port.isdigit())
        # A private server's port is chosen when it starts (see android.adb_server).
        self.adb_port = 0 if self._own_server else int(env_port or 0)
        self.env = dict(os.environ)
        if not self._own_server:
            self.env["ANDROID_ADB_SERVER_PORT"] = str(self.adb_port)

    def start(self) -> SimFleet:
        adb = shutil.which(ADB)
        if adb is None:
            raise click.ClickException(
                "simulated devices need Debian's adb on PATH (apt-get install adb, or `make setup`)"
            )
        if self._own_server:
            try:
                self.adb_port = start_private_adb_server(adb, self.env, timeout=60)
            except AdbServerStartError as exc:
                raise click.ClickException(str(exc)) from exc
            self.env["ANDROID_ADB_SERVER_PORT"] = str(self.adb_port)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        serials = [self._spawn(wait=False) for _ in range(self.count)]
        for serial in serials:
            self._wait_listed(serial)
        with self._lock:
            self._ready.extend(serials)
        return self

    def _spawn(self, *, wait: bool) -> str:
        """Start one device on a free port pair (retrying elsewhere when a port is taken:
        by another user's process; this user's processes claim ports one at a time)."""
        with self._lock:
            last: Exception | None = None
            for _ in range(6):
                try:
                    with port_claim_lock():
                        port = free_console_ports(1, base=self._next_port)[0]
                        self._next_port = port + 2
                        proc = spawn_device(
                            port,
                            profile=self.profile,
                            world=self.world,
                            seed=self.seed,
                            run_dir=self.run_dir,
                            wildness=self.wildness,
                            env=self.env,
                            timeout=self.timeout,
                        )
                except SimLaunchError as exc:
                    last = exc
                    continue
                serial = f"emulator-{port}"
                self._procs[serial] = proc
                return serial
        raise SimLaunchError(f"could not start a simulated device: {last}")

    def _wait_listed(self, serial: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if list_server_devices("127.0.0.1", self.adb_port).get(serial) == "device":
                    return
            time.sleep(0.05)
        raise SimLaunchError(f"{serial} did not come online on adb server port {self.adb_port}")

    def factory(self) -> ProvidedDevice:
        """One ready simulated device (a pre-started one first, else a new one)."""
        with self._lock:
            serial = self._ready.pop(0) if self._ready else None
        if serial is None:
            serial = self._spawn(wait=True)
            self._wait_listed(serial)
            log.warning("started %s as a replacement device", serial)
        device = AndroidDevice(serial, "127.0.0.1", self.adb_port)
        return ProvidedDevice(device, dispose=lambda: self._stop(serial))

    def _stop(self, serial: str) -> None:
        with self._lock:
            proc = self._procs.pop(serial, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def close(self) -> None:
        with self._lock:
            serials = list(self._procs)
        for serial in serials:
            self._stop(serial)
        if self._own_server and self.adb_port:
            adb = shutil.which(ADB)
            if adb is not None:
                subprocess.run(
                    [adb, "-P", str(self.adb_port), "kill-server"],
                    env=self.env,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )

    def __enter__(self) -> SimFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# ============================================================================ factories
def make_autorater_fn() -> Callable[..., Any]:
    """``eval.autoraters.registry.make_autorater``, imported when a command needs it."""
    try:
        from eval.autoraters.registry import make_autorater
    except ImportError as exc:  # the registry lands with the rules/oracle raters
        raise click.ClickException(
            f"the autorater registry (eval.autoraters.registry) is not available: {exc}"
        ) from None
    return make_autorater


def autorater_factory(name: str, options: dict[str, Any]) -> Callable[[AndroidDevice], Any]:
    """``device -> rater``. The oracle reads the device, so it gets one instance per device;
    others are device-independent and shared (the VLM judge's cache and stats are too)."""
    make_autorater = make_autorater_fn()
    if name == "oracle":
        cache: dict[int, Any] = {}
        lock = threading.Lock()

        def per_device(device: AndroidDevice) -> Any:
            with lock:
                if id(device) not in cache:
                    cache[id(device)] = make_autorater(name, device=device, **options)
                return cache[id(device)]

        return per_device
    shared = make_autorater(name, **options)
    return lambda device: shared


def agent_options(noise: float | None, agent_seed: int | None) -> dict[str, Any]:
    """``load_agent`` keyword arguments for ``--noise`` / ``--agent-seed`` (only those given,
    so an agent without them keeps its defaults)."""
    options: dict[str, Any] = {}
    if noise is not None:
        options["noise"] = noise
    if agent_seed is not None:
        options["seed"] = agent_seed
    return options


# ============================================================================ options and signals
def raise_interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler that ends a command like Ctrl-C does (its cleanup runs)."""
    raise KeyboardInterrupt(f"signal {signum}")


def check_devices(ctx: click.Context, param: click.Parameter, value: str) -> DeviceSpec:
    """The ``--devices`` click callback: the parsed spec, or a usage error naming the part."""
    try:
        return parse_devices(value)
    except DeviceSpecError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def check_serials_ready(devices: DeviceSpec) -> None:
    """Fail fast, naming them, when serials of ``--devices`` are not ready on the local adb
    server (a typo would otherwise surface later as a dead device)."""
    if not devices.serials:
        return
    try:
        missing = missing_serials(devices)
    except Exception as exc:
        raise click.ClickException(f"cannot list the local adb server's devices: {exc}") from None
    if missing:
        raise click.BadParameter(
            f"{', '.join(missing)} not ready on the local adb server (is the device running "
            "and ANDROID_ADB_SERVER_PORT pointing at its server?)",
            param_hint="--devices",
        )


def open_pool(
    stack: contextlib.ExitStack,
    devices: DeviceSpec,
    sim_run_dir: Path,
    *,
    wildness: float | None = None,
) -> DevicePool:
    """The device pool for ``--devices``, entered on ``stack``: for ``sim:N`` the simulated
    devices are started first (records and logs in ``sim_run_dir``) and stopped, with their
    private adb server, when the stack closes."""
    fleet = None
    if devices.sim:
        fleet = SimFleet(devices.sim, sim_run_dir, wildness=wildness)
        try:
            stack.enter_context(fleet)
        except SimLaunchError as exc:
            raise click.ClickException(f"simulated devices did not start: {exc}") from None
    source = device_source(devices, sim_factory=fleet.factory if fleet else None)
    return stack.enter_context(source.pool(allow_server_restart=False))
