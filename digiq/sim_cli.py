"""``digiq-sim``: start, list and stop simulated Android devices, and lay out a fake SDK.

Each device is its own detached process (``python -m android.sim.serve``) so that a crash or
a ``kill -9`` of one never takes the others down, and so the devices outlive this command like
emulators outlive the shell that launched them. The processes record themselves in a run
directory (``<run-dir>/emulator-<port>.json`` plus ``.log``); ``list`` and ``stop`` read it.
Ports follow the emulator's ``-port`` rule: console on an even port C, adb on C+1, devices two
apart, so the adb server names them ``emulator-C`` exactly as it names real emulators.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import logging
import subprocess
from pathlib import Path

import click

from android.sim.launcher import install_fake_sdk
from android.sim.runner import (
    DEFAULT_BASE_PORT,
    SimDeviceInfo,
    SimLaunchError,
    default_run_dir,
    free_console_ports,
    list_devices,
    port_claim_lock,
    spawn_device,
    stop_device,
)
from android.sim.worlds import DEFAULT_WORLD, world_names
from emulator_configs import DEFAULT_PROFILE, ProfileError, list_profiles, load_profile

log = logging.getLogger(__name__)

MAX_PORT = 65535


def _run_dir_option(func):  # type: ignore[no-untyped-def]
    return click.option(
        "--run-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder holding the devices' pid records and logs "
        "(default: $DIGIQ_SIM_RUN_DIR or ~/.digiq/sim).",
    )(func)


@click.group(name="sim")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
def sim(verbose: bool) -> None:
    """Run simulated Android devices (adb, emulator console and uiautomator2 compatible)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


# ---------------------------------------------------------------------- validation
def _check_profile(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        load_profile(value)
    except ProfileError:
        raise click.BadParameter(
            f"unknown profile {value!r}; bundled profiles: {', '.join(list_profiles())} "
            "(or give a profile .ini path)",
            ctx=ctx,
            param=param,
        ) from None
    return value


def _check_world(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value not in world_names():
        raise click.BadParameter(
            f"unknown world {value!r}; known worlds: {', '.join(world_names())}",
            ctx=ctx,
            param=param,
        )
    return value


def _check_base_port(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value % 2:
        raise click.BadParameter(
            f"{value} is odd; the base port is a console port and must be even "
            "(adb uses the next, odd, port), like the emulator's -port",
            ctx=ctx,
            param=param,
        )
    if not 1024 <= value <= MAX_PORT - 1:
        raise click.BadParameter(
            f"{value} is not an even port in 1024..{MAX_PORT - 1}", ctx=ctx, param=param
        )
    return value


def _check_devices(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value < 1:
        raise click.BadParameter(f"{value}: at least one device is needed", ctx=ctx, param=param)
    return value


def _check_host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address", ctx=ctx, param=param) from None
    if not address.is_loopback:
        click.echo(
            f"warning: devices listen on {value}, reachable from outside this machine; "
            "they have no authentication",
            err=True,
        )
    return value


# ---------------------------------------------------------------------- start
@sim.command()
@click.option(
    "--devices",
    "-n",
    type=int,
    default=1,
    show_default=True,
    callback=_check_devices,
    help="How many devices to start; device i gets console port C_i and adb port C_i+1.",
)
@click.option(
    "--base-port",
    type=int,
    default=DEFAULT_BASE_PORT,
    show_default=True,
    callback=_check_base_port,
    help="First console port (even, like the emulator's -port); pairs already in use "
    "are skipped, devices are 2 ports apart.",
)
@click.option(
    "--profile",
    default=DEFAULT_PROFILE,
    show_default=True,
    callback=_check_profile,
    help=f"Hardware profile (screen size, density, API level): one of "
    f"{', '.join(list_profiles())}, or a profile .ini path.",
)
@click.option(
    "--world",
    default=DEFAULT_WORLD,
    show_default=True,
    callback=_check_world,
    help=f"Simulated world (apps and screens): one of {', '.join(world_names())}.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="World seed of the first device; device i gets SEED+i (same seed and actions "
    "give the same screens).",
)
@click.option(
    "--boot-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds after start before sys.boot_completed turns 1 (exercises boot waits).",
)
@_run_dir_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=_check_host,
    help="Interface the devices listen on; keep loopback unless you mean otherwise.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each device to listen before giving up.",
)
def start(
    devices: int,
    base_port: int,
    profile: str,
    world: str,
    seed: int,
    boot_delay: float,
    run_dir: Path | None,
    host: str,
    timeout: float,
) -> None:
    """Start N simulated devices, each its own detached process, and print their serials."""
    run_dir = (run_dir or default_run_dir()).absolute()
    # The ports are claimed under the machine-wide lock (android.sim.runner.port_claim_lock)
    # until every device listens, so a concurrent `digiq-eval --devices sim:N` cannot take them.
    with port_claim_lock():
        try:
            ports = free_console_ports(devices, base=base_port, limit=MAX_PORT)
        except SimLaunchError as exc:
            raise click.ClickException(str(exc)) from None
        started: list[subprocess.Popen[bytes]] = []
        for i, port in enumerate(ports):
            try:
                proc = spawn_device(
                    port,
                    profile=profile,
                    world=world,
                    seed=seed + i,
                    run_dir=run_dir,
                    boot_delay=boot_delay,
                    host=host,
                    timeout=timeout,
                )
            except SimLaunchError as exc:
                # All or nothing: a half-started fleet would surprise scripts that asked for N.
                for other in started:
                    other.terminate()
                for other in started:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        other.wait(timeout=10)
                raise click.ClickException(
                    f"device {i} (console port {port}) failed: {exc}"
                ) from None
            started.append(proc)
            click.echo(
                f"emulator-{port}\tadb {host}:{port + 1}\tconsole {port}\tpid {proc.pid}\t"
                f"seed {seed + i}"
            )
    click.echo(f"run dir: {run_dir} (logs: {run_dir}/emulator-<port>.log)")
    click.echo(f"stop with: digiq-sim stop --all --run-dir {run_dir}")


# ---------------------------------------------------------------------- list
def _record(info: SimDeviceInfo) -> dict[str, object]:
    return {**dataclasses.asdict(info), "alive": info.alive}


@sim.command(name="list")
@_run_dir_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON array of device records instead of a table.",
)
def list_cmd(run_dir: Path | None, as_json: bool) -> None:
    """List the running simulated devices (serial, pid, ports, profile, world, seed, alive)."""
    run_dir = run_dir or default_run_dir()
    records = [_record(info) for info in list_devices(run_dir)]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo(f"no simulated devices running (run dir {run_dir})")
        return
    header = ("SERIAL", "PID", "ADB", "CONSOLE", "PROFILE", "WORLD", "SEED", "ALIVE")
    rows = [header] + [
        (
            str(r["serial"]),
            str(r["pid"]),
            f"{r['host']}:{r['adb_port']}",
            str(r["console_port"]),
            str(r["profile"]),
            str(r["world"]),
            str(r["seed"]),
            "yes" if r["alive"] else "no",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# ---------------------------------------------------------------------- stop
def _is_sim_process(pid: int) -> bool:
    """Whether ``pid`` still runs a simulated device (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc to ask: trust the record
    return b"android.sim" in cmdline


@sim.command()
@click.argument("serials", nargs=-1, metavar="[SERIAL ...]")
@click.option("--all", "stop_all", is_flag=True, help="Stop every device in the run dir.")
@_run_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait after SIGTERM before sending SIGKILL.",
)
def stop(serials: tuple[str, ...], stop_all: bool, run_dir: Path | None, timeout: float) -> None:
    """Stop devices by serial (e.g. emulator-5554) or --all: SIGTERM, then SIGKILL after a timeout.

    Exits non-zero when a serial is not running or a process could not be stopped.
    """
    if serials and stop_all:
        raise click.UsageError("give serials or --all, not both")
    if not serials and not stop_all:
        raise click.UsageError("name the devices to stop (e.g. emulator-5554) or pass --all")
    run_dir = run_dir or default_run_dir()
    running = {info.serial: info for info in list_devices(run_dir)}
    if stop_all:
        targets = list(running.values())
        if not targets:
            click.echo(f"no simulated devices running (run dir {run_dir})")
            return
    else:
        missing = [s for s in dict.fromkeys(serials) if s not in running]
        if missing:
            known = ", ".join(sorted(running)) or "none"
            raise click.BadParameter(
                f"{', '.join(missing)} not running in run dir {run_dir} (running: {known})",
                param_hint="SERIAL",
            )
        targets = [running[s] for s in dict.fromkeys(serials)]
    failed: list[str] = []
    for info in targets:
        record = run_dir / f"{info.serial}.json"
        if not _is_sim_process(info.pid):
            log.warning(
                "%s: pid %d is not a simulated device any more; dropping its record",
                info.serial,
                info.pid,
            )
            record.unlink(missing_ok=True)
            click.echo(f"{info.serial}\talready gone (stale record removed)")
            continue
        if stop_device(info, timeout=timeout):
            record.unlink(missing_ok=True)
            click.echo(f"{info.serial}\tstopped (pid {info.pid})")
        else:
            failed.append(info.serial)
            click.echo(f"{info.serial}\tcould not be stopped (pid {info.pid})", err=True)
    if failed:
        raise click.ClickException(f"could not stop {', '.join(failed)}")


# ---------------------------------------------------------------------- fake SDK
@sim.command(name="fake-sdk")
@click.argument("sdk_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def fake_sdk(sdk_dir: Path) -> None:
    """Lay out an Android SDK in DIR whose emulator/emulator runs a simulated device.

    DIR/emulator/emulator accepts the real emulator's flags (-avd NAME -port N ...);
    DIR/platform-tools/adb links to the adb on PATH. Point ANDROID_SDK_ROOT at DIR.
    """
    try:
        emulator = install_fake_sdk(sdk_dir)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot create a fake SDK in {sdk_dir}: {exc}") from None
    click.echo(f"emulator: {emulator}")
    click.echo(f"export ANDROID_SDK_ROOT={emulator.parent.parent}")


if __name__ == "__main__":
    sim()
