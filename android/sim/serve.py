"""Entry point of one simulated-device process: ``python -m android.sim.serve --adb-port P ...``.

Each device runs in its own process so that killing one never affects the others. The process
writes ``<run-dir>/<serial>.json`` (pid, ports, profile) once its ports are open, logs to
``<run-dir>/<serial>.log`` when a run dir is given, and shuts down cleanly on SIGTERM/SIGINT or
on the console's ``kill``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from android.allocator import keep_freed_memory
from emulator_configs import DEFAULT_PROFILE, AvdProfile, load_profile, profile_from_config_ini

from .device import SimDevice
from .worlds import DEFAULT_WORLD, create_world, world_names

log = logging.getLogger("android.sim.serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m android.sim.serve", description=__doc__)
    parser.add_argument(
        "--adb-port", type=int, required=True, help="adb transport port (odd; console is one below)"
    )
    parser.add_argument(
        "--console-port", type=int, default=None, help="console port (default: adb port - 1)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--profile", default=DEFAULT_PROFILE, help="emulator_configs profile name or .ini path"
    )
    parser.add_argument(
        "--avd-config", default=None, help="an AVD config.ini to take the screen from instead"
    )
    parser.add_argument(
        "--avd-name", default=None, help="name reported by the console's 'avd name'"
    )
    parser.add_argument(
        "--world", default=DEFAULT_WORLD, help=f"simulated world: {', '.join(world_names())}"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="world seed (same seed + actions = same screens)"
    )
    parser.add_argument(
        "--wildness",
        type=float,
        default=None,
        help="0..1: how often in-the-wild perturbations (popups, spinners) appear",
    )
    parser.add_argument(
        "--world-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra world option (repeatable); values parsed as JSON when possible",
    )
    parser.add_argument(
        "--boot-delay", type=float, default=0.0, help="seconds before sys.boot_completed=1"
    )
    parser.add_argument(
        "--snapshot", default=None, help="snapshot to load once booted (if it exists)"
    )
    parser.add_argument(
        "--run-dir", default=None, help="where to write <serial>.json and <serial>.log"
    )
    parser.add_argument(
        "--no-announce", action="store_true", help="do not send host:emulator:P to adb"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def load_device_profile(args: argparse.Namespace) -> AvdProfile:
    if args.avd_config:
        return profile_from_config_ini(args.avd_config, name=args.avd_name)
    return load_profile(args.profile)


def world_options(args: argparse.Namespace) -> dict[str, object]:
    options: dict[str, object] = {}
    for item in args.world_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--world-option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    if args.wildness is not None:
        if not 0.0 <= args.wildness <= 1.0:
            raise SystemExit(f"--wildness {args.wildness}: must be within 0..1")
        options["wildness"] = args.wildness
    return options


async def serve(args: argparse.Namespace) -> int:
    profile = load_device_profile(args)
    world = create_world(args.world, profile, seed=args.seed, **world_options(args))
    device = SimDevice(
        world,
        profile,
        adb_port=args.adb_port,
        console_port=args.console_port,
        host=args.host,
        avd_name=args.avd_name,
        boot_delay=args.boot_delay,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(device.stop()))
    try:
        await device.start(announce=not args.no_announce)
    except OSError as exc:
        log.error("cannot listen on ports %d/%d: %s", device.console_port, device.adb_port, exc)
        return 2
    if args.snapshot and args.snapshot != "default_boot":
        log.info(
            "snapshot %r requested; simulated snapshots live in memory, booting fresh",
            args.snapshot,
        )
    info_path = Path(args.run_dir) / f"{device.serial}.json" if args.run_dir else None
    if info_path is not None:
        info = {
            "serial": device.serial,
            "pid": os.getpid(),
            "adb_port": device.adb_port,
            "console_port": device.console_port,
            "host": device.host,
            "profile": profile.name,
            "world": args.world,
            "seed": args.seed,
            "avd_name": device.avd_name,
            "started_at": time.time(),
        }
        tmp = info_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(info_path)
    await device.stopped.wait()
    if info_path is not None:
        info_path.unlink(missing_ok=True)
    log.info("%s stopped", device.serial)
    return 0


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()  # every frame it renders and encodes is megabytes (android/allocator.py)
    args = build_parser().parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.run_dir:
        Path(args.run_dir).mkdir(parents=True, exist_ok=True)
        handlers = [
            logging.FileHandler(
                Path(args.run_dir) / f"emulator-{(args.console_port or args.adb_port - 1)}.log"
            )
        ]
    logging.basicConfig(
        level=args.log_level.upper(),
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
