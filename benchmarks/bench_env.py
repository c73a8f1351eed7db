"""Benchmark AndroidEnv.step / reset against the floor and a DigiRL-style step; prints JSON.

Starts its own private adb server (free port, temporary HOME) and one simulated device on the
DigiRL profile (1080x2280) via android.sim.runner, exactly as the test fixtures do, so it never
touches other adb servers or devices. Every timed step taps the counter button, so the screen
really changes (and the simulator really re-renders) on each one.

Measured (milliseconds, p50/p95):
* env_step: AndroidEnv.step (action + settle + screenshot + UI tree + activity).
* floor: the least a step can cost: a tap plus one raw ``screencap`` read to the end, no
  decoding, over the same smart-socket transport the device layer uses.
* floor_adbutils: the same through plain adbutils (``shell("input tap")`` +
  ``shell("screencap", encoding=None)``), what a naive implementation would pay.
* digirl_step: the DigiRL way: tap, fixed 5 s sleep, PNG screenshot (a few iterations only).
* reset: AndroidEnv.reset (snapshot load through the console + settled observation).
* screenshot_raw / screenshot_png: AndroidDevice.screenshot_raw() vs screenshot_png(), both
  decoded to RGB, on a screen that just changed.

Usage: .venv/bin/python benchmarks/bench_env.py [--steps 40] [--digirl-iters 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from android.actions import Action  # noqa: E402
from android.adb_server import start_private_adb_server  # noqa: E402
from android.device import AndroidDevice  # noqa: E402
from android.env import AndroidEnv  # noqa: E402
from android.sim.runner import SimLaunchError, free_console_ports, spawn_device  # noqa: E402

PROFILE = "digirl_pixel_api28"


def _stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    p95_index = min(len(ms) - 1, max(0, round(0.95 * (len(ms) - 1))))
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[p95_index], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "n": len(ms),
    }


def _time(fn: Callable[[], Any], n: int, before: Callable[[], Any] | None = None) -> list[float]:
    samples = []
    for _ in range(n):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed env steps / floor iterations")
    parser.add_argument("--adbutils-iters", type=int, default=8, help="adbutils floor iterations")
    parser.add_argument("--digirl-iters", type=int, default=3, help="DigiRL-style steps (5 s each)")
    parser.add_argument("--resets", type=int, default=20)
    args = parser.parse_args()

    adb = shutil.which("adb")
    if adb is None:
        print(json.dumps({"error": "adb not found on PATH (apt-get install adb)"}))
        return 1
    home = Path(tempfile.mkdtemp(prefix="bench_env_"))
    port = start_private_adb_server(adb, dict(os.environ, HOME=str(home)))
    env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    env["DIGIQ_SIM_RUN_DIR"] = str(home / "sim")
    os.environ.update(HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    proc = None
    try:
        base = 5700
        for attempt in range(4):  # a free port pair can be taken before the device binds it
            console_port = free_console_ports(1, base=base)[0]
            try:
                proc = spawn_device(console_port, profile=PROFILE, run_dir=home / "sim", env=env)
                break
            except SimLaunchError:
                if attempt == 3:
                    raise
                base = console_port + 2
        serial = f"emulator-{console_port}"
        device = AndroidDevice(serial, adb_port=port)
        deadline = time.monotonic() + 30
        while not device.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{serial} never came online")
            time.sleep(0.05)
        results = run(device, adb_port=port, args=args)
        print(json.dumps(results, indent=2))
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        subprocess.run([adb, "-P", str(port), "kill-server"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    return 0


def run(device: AndroidDevice, adb_port: int, args: argparse.Namespace) -> dict[str, Any]:
    import adbutils

    env = AndroidEnv(device, max_steps=10_000)
    obs, _ = env.reset()
    button = obs.find(resource_id="counter_button")
    assert button is not None, "the minimal world's counter button is missing"
    x, y = button.center
    width, height = obs.screen_size
    tap = Action.tap(y / height, x / width)

    # Warm up every path once (imports, caches, first render).
    env.step(tap)
    device.tap(x, y)
    device.exec_out(["screencap"])
    device.screenshot_png()

    steps: list[float] = []
    parts: dict[str, list[float]] = {}
    for _ in range(args.steps):
        start = time.perf_counter()
        _, _, _, truncated, info = env.step(tap)
        steps.append(time.perf_counter() - start)
        assert not truncated, info.get("error")
        for key, value in info["timings"].items():
            parts.setdefault(key, []).append(value)

    def floor() -> None:
        device.tap(x, y)
        device.exec_out(["screencap"])

    floor_samples = _time(floor, args.steps)

    client = adbutils.AdbClient(host="127.0.0.1", port=adb_port)
    adb_dev = client.device(device.serial)

    def floor_adbutils() -> None:
        adb_dev.shell(f"input tap {x} {y}")
        adb_dev.shell("screencap", encoding=None)

    adbutils_samples = _time(floor_adbutils, args.adbutils_iters)

    def digirl_step() -> None:
        adb_dev.shell(f"input tap {x} {y}")
        time.sleep(5.0)
        adb_dev.shell("screencap -p", encoding=None)

    digirl_samples = _time(digirl_step, args.digirl_iters)

    reset_samples = _time(lambda: env.reset(), args.resets)

    def change() -> None:
        device.tap(x, y)

    raw_samples = _time(device.screenshot_raw, args.steps, before=change)
    png_samples = _time(device.screenshot_png, args.steps, before=change)
    raw_static = _time(device.screenshot_raw, args.steps)
    png_static = _time(device.screenshot_png, args.steps)
    env.close()

    step_stats = _stats(steps)
    floor_stats = _stats(floor_samples)
    reset_stats = _stats(reset_samples)
    ratio = step_stats["p50_ms"] / floor_stats["p50_ms"]
    return {
        "benchmark": "bench_env",
        "profile": PROFILE,
        "screen": [width, height],
        "cpu_count": os.cpu_count(),
        "env_step": step_stats,
        "env_step_parts_p50_ms": {
            k: round(statistics.median(v) * 1000, 2) for k, v in parts.items()
        },
        "floor": floor_stats,
        "floor_adbutils": _stats(adbutils_samples),
        "digirl_step": _stats(digirl_samples),
        "reset": reset_stats,
        "screenshot_after_change": {"raw": _stats(raw_samples), "png": _stats(png_samples)},
        "screenshot_static": {"raw": _stats(raw_static), "png": _stats(png_static)},
        "step_over_floor_p50": round(ratio, 3),
        "targets": {
            "step_le_1.5x_floor": ratio <= 1.5,
            "reset_le_300ms": reset_stats["p50_ms"] <= 300,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
