"""Lifecycle of one Android emulator process: preflight, launch, boot wait, snapshots, kill.

The launch follows the DigiRL/Digi-Q setup (headless, explicit ports, ``-no-snapshot-save``,
``-snapshot default_boot``) with the parts parallel instances need: ``-read-only`` so several
instances may boot one AVD, ports checked before starting (console on an even port P, adb on
P+1, P in 5554..5682 as the emulator requires), the emulator's output kept in
``<log_dir>/emulator-P.log`` and quoted in every error, and a boot wait that polls the adb
server for ``emulator-P`` and then ``sys.boot_completed`` until a deadline (never a fixed
sleep). The process gets its own session (``start_new_session``) so :meth:`Emulator.kill`
can end the emulator together with the QEMU children it starts, and so a Ctrl-C in the
launching terminal does not kill every emulator at once.

KVM. A real x86 emulator without KVM is unusably slow, so :meth:`Emulator.preflight` checks
``/dev/kvm`` and says how to fix it. The check is skipped for the simulator's drop-in
``emulator`` script (:func:`is_simulated_emulator`: the script runs ``android.sim.launcher``),
which needs no virtualisation; ``launch(check_kvm=True/False)`` overrides that decision.

Snapshots and ``kill`` go through the emulator console (:mod:`android.console_client`), which
is how android_env resets episodes: ``avd snapshot load`` restores the whole device in well
under the time a reboot takes; :attr:`Emulator.last_reset_s` keeps the measured latency.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .avd import emulator_binary, find_avd, validate_avd_name
from .console_client import EmulatorConsoleClient, check_snapshot_name
from .device import AndroidDevice
from .errors import (
    AdbServerUnreachableError,
    DeviceError,
    DeviceTimeoutError,
)
from .ports import port_free

__all__ = [
    "BootReport",
    "Emulator",
    "EmulatorBootTimeoutError",
    "EmulatorError",
    "EmulatorExitedError",
    "EmulatorPortInUseError",
    "KvmUnavailableError",
    "check_kvm",
    "is_simulated_emulator",
    "port_owner",
    "validate_console_port",
]

log = logging.getLogger(__name__)

MIN_CONSOLE_PORT = 5554
MAX_CONSOLE_PORT = 5682
DEFAULT_BOOT_TIMEOUT = 300.0
SIM_LAUNCHER_MARKER = b"android.sim.launcher"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_SERVER_DOWN_GRACE_S = 10.0  # a dead adb server during the boot wait: give up after this long


class EmulatorError(DeviceError):
    """The emulator could not be launched, or misbehaved; ``device`` is ``emulator-P``."""


class EmulatorPortInUseError(EmulatorError):
    """The console or adb port is taken (by another emulator or any other process)."""


class KvmUnavailableError(EmulatorError):
    """/dev/kvm is missing or not accessible; the message says how to fix it."""


class EmulatorExitedError(EmulatorError):
    """The emulator process ended while we waited for it; ``log_tail`` is the end of its log."""

    def __init__(self, device: str, returncode: int | None, log_tail: str, during: str) -> None:
        super().__init__(
            device,
            f"emulator process exited with status {returncode} during {during}; "
            f"last lines of its log:\n{log_tail}",
        )
        self.returncode = returncode
        self.log_tail = log_tail


class EmulatorBootTimeoutError(DeviceTimeoutError):
    """Boot did not complete in time; ``stage`` says how far it got, ``log_tail`` the log end."""

    def __init__(
        self, device: str, timeout: float, stage: str, log_tail: str, last_error: str | None
    ) -> None:
        super().__init__(device, "boot", timeout)
        detail = f"; last error: {last_error}" if last_error else ""
        self.args = (f"{self.args[0]} ({stage}{detail}); last lines of its log:\n{log_tail}",)
        self.stage = stage
        self.log_tail = log_tail
        self.last_error = last_error


@dataclass(frozen=True)
class BootReport:
    """How a boot wait went: seconds from the wait's start until adb listed the device and
    until ``sys.boot_completed`` read 1, and what the first read returned (``""`` or ``"0"``
    on a device that was still booting, ``"1"`` when it had booted before we looked)."""

    serial: str
    appeared_after_s: float
    booted_after_s: float
    first_boot_completed: str
    boot_completed_polls: int


# ---------------------------------------------------------------------- preflight helpers
def check_kvm(path: str | Path = "/dev/kvm") -> None:
    """Raise :class:`KvmUnavailableError` unless ``path`` (the KVM device) is usable."""
    kvm = Path(path)
    sim_hint = (
        "or use the simulated devices instead, which need no virtualisation: `digiq sim start`"
    )
    if not kvm.exists():
        raise KvmUnavailableError(
            str(kvm),
            f"{kvm} does not exist, so the x86 emulator cannot use hardware acceleration. Fix: "
            "enable virtualisation (Intel VT-x / AMD-V) in the BIOS, or nested virtualisation "
            "for a VM or cloud instance; load the module (`sudo modprobe kvm_intel` or "
            "`sudo modprobe kvm_amd`); check with `emulator -accel-check`; once it exists, add "
            "your user to the kvm group (`sudo usermod -aG kvm $USER`); " + sim_hint,
        )
    if not os.access(kvm, os.R_OK | os.W_OK):
        raise KvmUnavailableError(
            str(kvm),
            f"{kvm} exists but this user cannot open it for reading and writing. Fix: "
            "`sudo usermod -aG kvm $USER` and log in again (or `sudo chmod 666 /dev/kvm` on a "
            "single-user machine), in a container pass `--device /dev/kvm`; " + sim_hint,
        )


_check_kvm_device = check_kvm  # launch()/preflight() take a parameter of the same name


def is_simulated_emulator(binary: str | Path) -> bool:
    """True when ``binary`` is the simulator's drop-in script (it runs ``android.sim.launcher``).

    A real emulator is an ELF binary, which never contains that text in its first bytes.
    """
    try:
        with open(binary, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return not head.startswith(b"\x7fELF") and SIM_LAUNCHER_MARKER in head


def validate_console_port(port: int) -> int:
    """``port`` if it is an even console port in 5554..5682 (adb then uses port+1)."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"emulator console port must be an int, got {port!r}")
    if port % 2 or not MIN_CONSOLE_PORT <= port <= MAX_CONSOLE_PORT:
        raise ValueError(
            f"emulator console port {port} is invalid: it must be even and within "
            f"{MIN_CONSOLE_PORT}..{MAX_CONSOLE_PORT} (the console uses P, adb uses P+1)"
        )
    return port


def port_owner(port: int) -> str | None:
    """Best effort ``"pid N (command)"`` of the process listening on TCP ``port`` (Linux /proc;
    only processes this user may inspect), else None."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if (
                    len(fields) > 9
                    and fields[3] == "0A"
                    and int(fields[1].rsplit(":", 1)[1], 16) == port
                ):
                    inodes.add(fields[9])
    targets = {f"socket:[{inode}]" for inode in inodes if inode != "0"}
    if not targets:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                        command = cmdline.decode("utf-8", errors="replace")[:200] or "?"
                        return f"pid {proc.name} ({command})"
    return None


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            data = handle.read()
    except OSError:
        return f"(no log at {path})"
    text = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) if text else "(log is empty)"


# ---------------------------------------------------------------------- the emulator
class Emulator:
    """One emulator instance of AVD ``avd_name`` on console port ``port`` (adb on port+1).

    ``sdk_root``: the SDK (default $ANDROID_SDK_ROOT, then $ANDROID_HOME). ``snapshot``: the
    snapshot to boot from and reset to (None: cold boot). ``extra_args``: more emulator flags
    (passed as separate arguments, never through a shell). ``env``: variables added to the
    emulator's environment (and used for SDK/AVD lookup). ``adb_server``: the adb server the
    emulator registers with and that we poll, ``(host, None)`` meaning
    $ANDROID_ADB_SERVER_PORT or 5037. The environment is captured at construction. Not
    thread-safe: one owner at a time.
    """

    def __init__(
        self,
        avd_name: str,
        port: int = MIN_CONSOLE_PORT,
        sdk_root: str | Path | None = None,
        headless: bool = True,
        read_only: bool = True,
        snapshot: str | None = "default_boot",
        extra_args: Sequence[str] = (),
        log_dir: str | Path | None = None,
        boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
        adb_server: tuple[str, int | None] = ("127.0.0.1", None),
        *,
        env: Mapping[str, str] | None = None,
        gpu: str | None = None,
        kvm_device: str | Path = "/dev/kvm",
    ) -> None:
        self.avd_name = validate_avd_name(avd_name)
        self.port = validate_console_port(port)
        if snapshot is not None:
            check_snapshot_name(snapshot)
        if isinstance(extra_args, str) or not all(
            isinstance(a, str) and "\0" not in a for a in extra_args
        ):
            raise ValueError(f"extra_args must be a sequence of strings, got {extra_args!r}")
        if not (isinstance(boot_timeout, (int, float)) and boot_timeout > 0):
            raise ValueError(
                f"boot_timeout must be a positive number of seconds, got {boot_timeout!r}"
            )
        self.env: dict[str, str] = dict(os.environ)
        self.env.update(env or {})
        host, server_port = adb_server
        if server_port is None:
            raw = self.env.get("ANDROID_ADB_SERVER_PORT") or "5037"
            try:
                server_port = int(raw)
            except ValueError:
                raise ValueError(f"ANDROID_ADB_SERVER_PORT={raw!r} is not a port number") from None
        if (
            isinstance(server_port, bool)
            or not isinstance(server_port, int)
            or not 0 < server_port < 65536
        ):
            raise ValueError(f"adb server port must be in 1..65535, got {server_port!r}")
        self.adb_host = host
        self.adb_server_port = server_port
        if host in _LOCAL_HOSTS:
            # The emulator announces itself to the adb server on this port.
            self.env["ANDROID_ADB_SERVER_PORT"] = str(server_port)
        self.sdk_root = sdk_root
        self.headless = headless
        self.read_only = read_only
        self.snapshot = snapshot
        self.extra_args = tuple(extra_args)
        self.gpu = gpu or ("swiftshader_indirect" if headless else "auto")
        home = self.env.get("HOME") or str(Path.home())
        self.log_dir = (
            Path(log_dir) if log_dir is not None else Path(home) / ".digiq" / "emulator-logs"
        )
        self.boot_timeout = float(boot_timeout)
        self.kvm_device = Path(kvm_device)
        self.last_reset_s: float | None = None
        self.last_boot: BootReport | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: EmulatorConsoleClient | None = None

    def __repr__(self) -> str:
        state = f"pid {self._proc.pid}" if self.is_running() and self._proc else "stopped"
        return f"Emulator({self.avd_name!r}, {self.serial}, {state})"

    # ------------------------------------------------------------------ identity
    @property
    def serial(self) -> str:
        """``emulator-P``: how the adb server names this instance."""
        return f"emulator-{self.port}"

    @property
    def adb_port(self) -> int:
        return self.port + 1

    @property
    def adb_server_address(self) -> str:
        return f"{self.adb_host}:{self.adb_server_port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"emulator-{self.port}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def device(self, timeout: float = 30.0) -> AndroidDevice:
        """An :class:`AndroidDevice` for this instance through its adb server."""
        return AndroidDevice(self.serial, self.adb_host, self.adb_server_port, timeout)

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the emulator's log of the latest launch."""
        return _tail(self.log_path, lines)

    # ------------------------------------------------------------------ launch
    def command_line(self, binary: str | Path | None = None) -> list[str]:
        """The emulator argv :meth:`launch` runs."""
        exe = str(binary) if binary is not None else str(emulator_binary(self.sdk_root, self.env))
        cmd = [exe, "-avd", self.avd_name, "-port", str(self.port)]
        if self.headless:
            cmd += ["-no-window", "-no-audio", "-no-boot-anim"]
        cmd.append("-no-snapshot-save")
        if self.read_only:
            cmd.append("-read-only")
        if self.snapshot:
            cmd += ["-snapshot", self.snapshot]
        cmd += ["-gpu", self.gpu, "-skip-adb-auth", *self.extra_args]
        return cmd

    def preflight(self, check_kvm: bool | None = None) -> Path:
        """Check everything a launch needs; returns the emulator binary.

        SDK and AVD exist, KVM is usable (``check_kvm`` None: unless the binary is the
        simulator's), and the console and adb ports are free. Raises with what to fix.
        """
        binary = emulator_binary(self.sdk_root, self.env)
        find_avd(self.avd_name, self.env)
        if check_kvm is None:
            check_kvm = not is_simulated_emulator(binary)
        if check_kvm:
            try:
                _check_kvm_device(self.kvm_device)
            except KvmUnavailableError as exc:
                raise KvmUnavailableError(self.serial, exc.message) from None
        for port, role in ((self.port, "console"), (self.adb_port, "adb")):
            if not port_free(port):
                owner = port_owner(port)
                by = f" by {owner}" if owner else " (by a process this user cannot inspect)"
                raise EmulatorPortInUseError(
                    self.serial,
                    f"{role} port {port} is already in use{by}; pick another even port "
                    f"(console P, adb P+1) or stop what holds it",
                )
        return binary

    def launch(self, check_kvm: bool | None = None) -> None:
        """Start the emulator process (returns at once; :meth:`wait_for_boot` waits).

        ``check_kvm``: None checks KVM unless the binary is the simulator (see module doc).
        """
        if self.is_running():
            raise EmulatorError(self.serial, f"already running (pid {self.pid})")
        if self._proc is not None:
            self._reap()
        binary = self.preflight(check_kvm)
        cmd = self.command_line(binary)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log.info("%s: launching %s (log %s)", self.serial, " ".join(cmd), self.log_path)
        with open(self.log_path, "wb") as out:
            out.write(f"# {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise EmulatorError(self.serial, f"cannot run {binary}: {exc}") from exc
        self.last_boot = None

    def start(self, timeout: float | None = None, check_kvm: bool | None = None) -> BootReport:
        """:meth:`launch` then :meth:`wait_for_boot`; kills the process if the boot fails."""
        self.launch(check_kvm)
        try:
            return self.wait_for_boot(timeout)
        except BaseException:
            self.kill()
            raise

    def wait_for_boot(self, timeout: float | None = None) -> BootReport:
        """Poll until adb lists ``emulator-P`` and ``sys.boot_completed`` is ``1``.

        Raises :class:`EmulatorExitedError` as soon as the process ends, and
        :class:`EmulatorBootTimeoutError` (both with the log tail) at the deadline.
        """
        if self._proc is None:
            raise EmulatorError(self.serial, "wait_for_boot() before launch()")
        limit = self.boot_timeout if timeout is None else float(timeout)
        start = time.monotonic()
        deadline = start + limit
        device = self.device(timeout=5.0)
        appeared: float | None = None
        first_value: str | None = None
        polls = 0
        last_error: str | None = None
        server_down_since: float | None = None
        interval = 0.05
        while True:
            if self._exited():
                returncode = self._reap()
                raise EmulatorExitedError(self.serial, returncode, self.logs(30), "the boot wait")
            now = time.monotonic()
            if now >= deadline:
                stage = (
                    f"adb never listed {self.serial} in state 'device'"
                    if appeared is None
                    else f"sys.boot_completed was never 1 ({polls} polls)"
                )
                raise EmulatorBootTimeoutError(self.serial, limit, stage, self.logs(30), last_error)
            call_timeout = max(0.05, min(5.0, deadline - now))
            try:
                if appeared is None:
                    state = device.state(timeout=call_timeout)
                    if state == "device":
                        appeared = time.monotonic()
                        log.info("%s: listed by adb after %.2fs", self.serial, appeared - start)
                    else:
                        last_error = f"adb state {state!r}"
                if appeared is not None:
                    result = device.shell(
                        ["getprop", "sys.boot_completed"], timeout=call_timeout, check=False
                    )
                    value = result.text.strip()
                    polls += 1
                    if first_value is None:
                        first_value = value
                    if value == "1":
                        booted = time.monotonic()
                        report = BootReport(
                            self.serial, appeared - start, booted - start, first_value, polls
                        )
                        self.last_boot = report
                        log.info("%s: boot completed after %.2fs", self.serial, booted - start)
                        return report
                server_down_since = None
            except AdbServerUnreachableError as exc:
                last_error = str(exc)
                server_down_since = server_down_since or now
                if now - server_down_since > _SERVER_DOWN_GRACE_S:
                    raise
            except DeviceError as exc:  # not listed yet, offline, or reconnecting
                last_error = str(exc)
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
            interval = min(interval * 1.5, 0.5)

    # ------------------------------------------------------------------ console
    def console(self) -> EmulatorConsoleClient:
        """The (kept-open) console session, authenticated with the emulator's HOME token."""
        if self._console is None:
            home = Path(self.env.get("HOME") or str(Path.home()))
            self._console = EmulatorConsoleClient(
                self.port,
                "127.0.0.1",
                token_path=home / ".emulator_console_auth_token",
                name=self.serial,
            )
        return self._console

    def snapshot_save(self, name: str) -> None:
        """Save the running state as snapshot ``name`` (``avd snapshot save``)."""
        self.console().snapshot_save(name)

    def snapshot_load(
        self, name: str | None = None, *, wait_ready: bool = True, timeout: float = 60.0
    ) -> float:
        """Restore snapshot ``name`` (default: the boot snapshot); returns the seconds it took.

        With ``wait_ready`` the time includes waiting until the device answers adb again (an
        emulator's adb link can drop for a moment after a load); :attr:`last_reset_s` keeps it.
        """
        name = name or self.snapshot or "default_boot"
        start = time.monotonic()
        self.console().snapshot_load(name)
        if wait_ready:
            device = self.device(timeout=5.0)
            deadline = start + timeout
            while not device.is_alive(timeout=max(0.05, min(2.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    raise DeviceTimeoutError(
                        self.serial, f"adb after snapshot load {name!r}", timeout
                    )
                time.sleep(0.05)
        self.last_reset_s = time.monotonic() - start
        log.info("%s: snapshot %r loaded in %.3fs", self.serial, name, self.last_reset_s)
        return self.last_reset_s

    def snapshot_list(self) -> list[str]:
        """Snapshot names the emulator reports (``avd snapshot list``)."""
        names = []
        for line in self.console().snapshot_list():
            words = line.split()
            if not words or words[0] == "ID":
                continue
            # A real emulator prints "ID TAG VM-SIZE DATE VM-CLOCK" rows (ID is "--" or a
            # number) under an "ID TAG ..." header; the simulator prints bare names.
            if len(words) > 1 and (words[0] == "--" or words[0].isdigit()):
                names.append(words[1])
            else:
                names.append(words[0])
        return names

    def snapshot_delete(self, name: str) -> None:
        self.console().snapshot_delete(name)

    # ------------------------------------------------------------------ stopping
    def is_running(self) -> bool:
        """True while the emulator process has not exited."""
        return self._proc is not None and not self._exited()

    def _exited(self) -> bool:
        """Whether the process ended, without reaping it (so its process group id stays ours
        until :meth:`_reap` has killed any children left in the group)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped elsewhere (Popen.poll)
            proc.poll()
            return True
        return info is not None

    def _reap(self) -> int | None:
        """Kill what is left of the process group, collect the exit status, close the console."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if self._console is not None:
            self._console.close()
            self._console = None
        return proc.returncode

    def _wait_exit(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self._exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def kill(self, timeout: float = 10.0) -> str:
        """Stop the emulator: console ``kill``, then SIGTERM, then SIGKILL to its process group.

        Idempotent. Returns how it ended: ``"not running"``, ``"console"``, ``"sigterm"``,
        ``"sigkill"`` or ``"already exited"``.
        """
        proc = self._proc
        if proc is None:
            return "not running"
        if proc.returncode is not None:
            self._reap()
            return "not running"
        how = "already exited"
        if not self._exited():
            how = "console"
            try:
                self.console().command("kill", timeout=max(0.5, timeout / 2))
            except (DeviceError, OSError) as exc:
                log.info("%s: console kill failed (%s); signalling", self.serial, exc)
            if not self._wait_exit(timeout / 2):
                how = "sigterm"
                log.warning("%s: still running after console kill; SIGTERM", self.serial)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
                if not self._wait_exit(timeout / 2):
                    how = "sigkill"
                    log.warning("%s: still running after SIGTERM; SIGKILL", self.serial)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    self._wait_exit(5.0)
        returncode = self._reap()
        log.info("%s: stopped (%s, exit status %s)", self.serial, how, returncode)
        return how

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Emulator:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
