"""Private adb servers: ports outside the ephemeral range, retried elsewhere when a start fails."""

from __future__ import annotations

import os
import random
import socket
import stat
import subprocess
from pathlib import Path

import adbutils
import pytest

from android.adb_server import (
    PRIVATE_PORT_RANGE,
    AdbServerStartError,
    _ephemeral_range,
    pick_server_port,
    start_private_adb_server,
)

from conftest import ADB


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_picked_ports_avoid_the_ephemeral_range_and_bind() -> None:
    low, high = _ephemeral_range()
    rng = random.Random(3)
    for _ in range(50):
        port = pick_server_port(rng)
        assert PRIVATE_PORT_RANGE[0] <= port < PRIVATE_PORT_RANGE[1]
        assert not low <= port <= high
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_held_by_a_listener_is_never_picked() -> None:
    held = pick_server_port(random.Random(5))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", held))
        listener.listen()
        # The same seed draws ``held`` first; it must be skipped, not handed to adb.
        assert pick_server_port(random.Random(5)) != held


def test_start_private_adb_server_starts_a_real_server(tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path))
    port = start_private_adb_server(ADB, env)
    try:
        assert adbutils.AdbClient(host="127.0.0.1", port=port).server_version() > 0
    finally:
        subprocess.run([ADB, "-P", str(port), "kill-server"], env=env, capture_output=True)


def test_a_failed_start_moves_to_another_port(tmp_path: Path) -> None:
    """The CI failure: start-server exits 255 on the first port; the next port must be used."""
    marker = tmp_path / "failed-once"
    flaky = _script(
        tmp_path / "adb",
        f'if [ ! -e "{marker}" ]; then touch "{marker}"; '
        'echo "cannot bind listener: Address already in use" >&2; exit 255; fi\n'
        f'exec "{ADB}" "$@"\n',
    )
    env = dict(os.environ, HOME=str(tmp_path))
    rng = random.Random(11)
    first = pick_server_port(random.Random(11))
    port = start_private_adb_server(flaky, env, rng=rng)
    try:
        assert marker.exists() and port != first
        assert adbutils.AdbClient(host="127.0.0.1", port=port).server_version() > 0
    finally:
        subprocess.run([ADB, "-P", str(port), "kill-server"], env=env, capture_output=True)


def test_every_failure_is_reported_with_its_port_and_stderr(tmp_path: Path) -> None:
    broken = _script(tmp_path / "adb", 'echo "daemon not running; bind failed" >&2; exit 255\n')
    with pytest.raises(AdbServerStartError) as caught:
        start_private_adb_server(broken, dict(os.environ), attempts=3)
    message = str(caught.value)
    assert message.count("exit 255: daemon not running; bind failed") == 3
    assert message.count("port ") == 3 and "in 3 attempts" in message
