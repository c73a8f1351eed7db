"""``digiq-sim``: start, list, stop simulated devices through the real CLI and the real adb server.

Devices are started by running the CLI as its own process (``python -m digiq.sim_cli``), so
they are detached exactly as they are for a user; validation errors use click's CliRunner.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from android.sim.runner import free_console_ports, list_devices, pid_alive, stop_device
from android.sim.worlds import DEFAULT_WORLD
from digiq.sim_cli import sim

LINE = re.compile(r"^(emulator-\d+)\tadb 127\.0\.0\.1:(\d+)\tconsole (\d+)\tpid (\d+)", re.M)


def run_cli(adb_env, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "digiq.sim_cli", *args],
        env=adb_env.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


def listed(adb_env) -> list[dict[str, object]]:
    return json.loads(run_cli(adb_env, "list", "--json").stdout)


def adb_states(adb_env) -> dict[str, str]:
    rows = adb_env.adb("devices").stdout.splitlines()[1:]
    return dict(row.split("\t", 1) for row in rows if "\t" in row)


def wait_until(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(0.05)


@pytest.fixture
def run_dir(adb_env) -> Iterator[Path]:
    """The CLI's default run dir for this test ($DIGIQ_SIM_RUN_DIR); its devices die afterwards."""
    path = Path(adb_env.env["DIGIQ_SIM_RUN_DIR"])
    yield path
    for info in list_devices(path):
        stop_device(info, timeout=5)


# ---------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_start_list_kill_one_then_stop_all(adb_env, run_dir: Path) -> None:
    expected = [f"emulator-{p}" for p in free_console_ports(2, base=5610)]  # normally 5610, 5612
    out = run_cli(adb_env, "start", "--devices", "2", "--base-port", "5610", "--seed", "7").stdout
    rows = LINE.findall(out)
    assert [r[0] for r in rows] == expected
    for serial, adb_port, console_port, _pid in rows:
        assert serial == f"emulator-{console_port}" and int(adb_port) == int(console_port) + 1
    assert str(run_dir) in out

    for serial in expected:
        adb_env.wait_for(serial)
    states = adb_states(adb_env)
    assert all(states.get(s) == "device" for s in expected), states

    records = listed(adb_env)
    assert [r["serial"] for r in records] == expected
    assert [r["seed"] for r in records] == [7, 8]
    assert all(r["alive"] and r["world"] == DEFAULT_WORLD for r in records)
    assert all(r["profile"] == "digirl_pixel_api28" for r in records)
    assert [str(r["pid"]) for r in records] == [r[3] for r in rows]
    table = run_cli(adb_env, "list").stdout
    assert all(s in table for s in expected) and "SEED" in table

    # Killing one device's process leaves the other serving.
    first, second = records
    os.kill(int(first["pid"]), signal.SIGKILL)
    wait_until(lambda: not pid_alive(int(first["pid"])), what="killed device gone")
    assert adb_env.adb("-s", second["serial"], "shell", "echo", "ok").stdout.strip() == "ok"
    assert [r["serial"] for r in listed(adb_env)] == [second["serial"]]

    stopped = run_cli(adb_env, "stop", "--all")
    assert f"{second['serial']}\tstopped" in stopped.stdout
    assert not pid_alive(int(second["pid"]))
    assert listed(adb_env) == []
    assert "no simulated devices running" in run_cli(adb_env, "list").stdout
    wait_until(
        lambda: adb_states(adb_env).get(str(second["serial"])) != "device",
        what="adb forgets the stopped device",
    )


@pytest.mark.slow
def test_start_skips_taken_ports_and_stop_by_serial(adb_env, run_dir: Path) -> None:
    taken = free_console_ports(1, base=5630)[0]
    with socket.socket() as blocker:
        # SO_REUSEADDR: the port may still hold TIME_WAIT connections of an earlier test.
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", taken + 1))  # the adb port of the first pair is busy
        blocker.listen()
        expected = free_console_ports(1, base=taken)[0]
        out = run_cli(adb_env, "start", "--base-port", str(taken), "--world", "minimal").stdout
    serial = LINE.findall(out)[0][0]
    assert expected > taken and serial == f"emulator-{expected}"
    adb_env.wait_for(serial)

    missing = run_cli(adb_env, "stop", serial, "emulator-5998", check=False)
    assert missing.returncode != 0 and "emulator-5998" in missing.stderr
    assert [r["serial"] for r in listed(adb_env)] == [serial]  # nothing stopped on a typo

    assert f"{serial}\tstopped" in run_cli(adb_env, "stop", serial).stdout
    assert listed(adb_env) == []
    again = run_cli(adb_env, "stop", serial, check=False)
    assert again.returncode != 0 and "not running" in again.stderr


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["start", "--base-port", "5611"], "5611"),
        (["start", "--devices", "0"], "0: at least one device"),
        (["start", "--profile", "no_such_profile"], "no_such_profile"),
        (["start", "--world", "no_such_world"], "no_such_world"),
        (["start", "--host", "localhost-ish"], "localhost-ish"),
        (["stop", "emulator-5996"], "emulator-5996"),
        (["stop"], "--all"),
        (["stop", "--all", "emulator-5996"], "not both"),
    ],
)
def test_bad_input_gives_clear_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(sim, args, env={"DIGIQ_SIM_RUN_DIR": str(tmp_path / "sim")})
    assert result.exit_code != 0
    assert needle in result.output
    assert list((tmp_path / "sim").glob("*.json")) == []  # nothing was started


def test_odd_base_port_error_explains_the_rule(tmp_path: Path) -> None:
    result = CliRunner().invoke(sim, ["start", "--base-port", "5555"])
    assert result.exit_code == 2
    assert "5555 is odd" in result.output and "even" in result.output


def test_list_and_stop_all_with_nothing_running(tmp_path: Path) -> None:
    env = {"DIGIQ_SIM_RUN_DIR": str(tmp_path / "sim")}
    result = CliRunner().invoke(sim, ["list", "--json"], env=env)
    assert result.exit_code == 0 and json.loads(result.output) == []
    result = CliRunner().invoke(sim, ["stop", "--all"], env=env)
    assert result.exit_code == 0 and "no simulated devices running" in result.output


def test_help_explains_every_option() -> None:
    runner = CliRunner()
    group_help = runner.invoke(sim, ["--help"])
    assert group_help.exit_code == 0 and "simulated Android devices" in group_help.output
    assert set(sim.commands) == {"start", "list", "stop", "fake-sdk"}
    for name, command in sim.commands.items():
        result = runner.invoke(sim, [name, "--help"])
        assert result.exit_code == 0, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts} has no help text"
                assert all(opt in result.output for opt in param.opts), (name, param.opts)


def test_fake_sdk_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(sim, ["fake-sdk", str(tmp_path / "sdk")])
    assert result.exit_code == 0, result.output
    emulator = tmp_path / "sdk" / "emulator" / "emulator"
    assert os.access(emulator, os.X_OK) and str(emulator) in result.output
    assert (tmp_path / "sdk" / "platform-tools" / "adb").exists()


FLEET_SCRIPT = """
import sys, time
from pathlib import Path
from digiq._runtime import SimFleet

index, folder, total = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
with SimFleet(2, folder / f"fleet-{index}") as fleet:
    serials = [fleet.factory().device.serial for _ in range(2)]
    (folder / f"ready-{index}").write_text(" ".join(serials))
    deadline = time.monotonic() + 90  # hold the devices until every fleet runs
    while len(list(folder.glob("ready-*"))) < total and time.monotonic() < deadline:
        time.sleep(0.05)
print(" ".join(serials))
"""


def test_fleets_started_together_claim_distinct_ports(adb_env, tmp_path: Path) -> None:
    # Four `--devices sim:2` commands started at once all probe from the same base port; the
    # claim lock (android.sim.runner.port_claim_lock) keeps one from binding another's pair.
    # Before it, such a start failed with "address already in use" after six collisions.
    total = 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FLEET_SCRIPT, str(i), str(tmp_path), str(total)],
            env=adb_env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(total)
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    serials = [s for out, _ in outputs for s in out.split()]
    assert len(serials) == 2 * total and len(set(serials)) == 2 * total, serials
