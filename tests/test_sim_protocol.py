"""The simulated device through real, unpatched clients: Debian's adb, adbutils, uiautomator2, adb-shell."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from android.adb_server import start_private_adb_server
from android.sim.adb_protocol import A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_WRTE, HEADER, pack
from android.sim.runner import free_console_ports, spawn_device

from conftest import AdbEnv


def serial_port(device) -> int:
    return int(device.serial.split("-")[1])


def ground_truth(device) -> dict:
    return json.loads(device.shell("dumpsys digiq-sim"))


# ------------------------------------------------------------------ adb CLI


def test_adb_cli_lists_and_runs(adb_env: AdbEnv, sim_device) -> None:
    listing = adb_env.adb("devices", "-l").stdout
    assert f"{sim_device.serial}" in listing and "device product:sdk_gphone_x86_64" in listing
    assert adb_env.adb("-s", sim_device.serial, "shell", "echo", "hello").stdout == "hello\n"
    # shell v2 carries the exit code
    result = adb_env.adb("-s", sim_device.serial, "shell", "exit 3", check=False)
    assert result.returncode == 3
    result = adb_env.adb("-s", sim_device.serial, "shell", "nosuchcmd", check=False)
    assert result.returncode == 127 and "inaccessible or not found" in result.stderr
    assert (
        adb_env.adb("-s", sim_device.serial, "emu", "avd", "name").stdout.splitlines()[0]
        == "test_Android"
    )


def test_adb_cli_push_pull_identical_bytes(adb_env: AdbEnv, sim_device, tmp_path: Path) -> None:
    payload = os.urandom(6 * 1024 * 1024 + 123)
    src, dst = tmp_path / "big.bin", tmp_path / "back.bin"
    src.write_bytes(payload)
    adb_env.adb("-s", sim_device.serial, "push", str(src), "/sdcard/big.bin", timeout=60)
    adb_env.adb("-s", sim_device.serial, "pull", "/sdcard/big.bin", str(dst), timeout=60)
    assert dst.read_bytes() == payload
    remote_md5 = adb_env.adb(
        "-s", sim_device.serial, "shell", "md5sum", "/sdcard/big.bin"
    ).stdout.split()[0]
    assert remote_md5 == hashlib.md5(payload).hexdigest()


def test_adb_exec_out_png(adb_env: AdbEnv, sim_device) -> None:
    png = adb_env.adb_bytes("-s", sim_device.serial, "exec-out", "screencap", "-p")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (1080, 2280)


def test_adb_connect_by_address(adb_env: AdbEnv, sim_device) -> None:
    port = serial_port(sim_device) + 1
    out = adb_env.adb("connect", f"127.0.0.1:{port}").stdout
    assert "connected to 127.0.0.1" in out
    other = adb_env.wait_for(f"127.0.0.1:{port}")
    assert other.shell("getprop ro.product.model") == "Android SDK built for x86_64"


def test_device_found_by_server_port_scan(tmp_path: Path) -> None:
    """A device started BEFORE the adb server is found by the server's scan of 5555..5585."""
    from conftest import ADB

    console = free_console_ports(1, base=5570, limit=5585)[0]
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    env.pop("ANDROID_ADB_SERVER_PORT", None)
    proc = spawn_device(console, run_dir=home / "sim", env=env, announce=False)
    server_port = None
    try:
        server_port = start_private_adb_server(ADB, env)
        env["ANDROID_ADB_SERVER_PORT"] = str(server_port)
        deadline = time.monotonic() + 15
        listing = ""
        while time.monotonic() < deadline:
            listing = subprocess.run(
                [ADB, "-P", str(server_port), "devices"], env=env, capture_output=True, text=True
            ).stdout
            if f"emulator-{console}\tdevice" in listing:
                break
            time.sleep(0.1)
        assert f"emulator-{console}\tdevice" in listing
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if server_port is not None:
            subprocess.run(
                [ADB, "-P", str(server_port), "kill-server"], env=env, capture_output=True
            )


# ------------------------------------------------------------------ adbutils


def test_adbutils_device_api(adb_env: AdbEnv, sim_device, tmp_path: Path) -> None:
    assert [d.serial for d in adb_env.client.device_list()] == [sim_device.serial]
    assert sim_device.shell("echo hi") == "hi"
    assert sim_device.shell2("false").returncode == 1
    assert tuple(sim_device.window_size()) == (1080, 2280)
    assert sim_device.screenshot().size == (1080, 2280)
    app = sim_device.app_current()
    assert app.package == "com.google.android.apps.nexuslauncher"

    xml = sim_device.dump_hierarchy()
    assert xml.startswith("<?xml") and "Tapped 0 times" in xml
    truth = ground_truth(sim_device)
    button = _bounds_of(xml, "counter_button")
    sim_device.click(*button)
    assert ground_truth(sim_device)["counter"] == truth["counter"] + 1

    field = _bounds_of(xml, "search_field")
    sim_device.click(*field)
    sim_device.send_keys("hello")
    assert ground_truth(sim_device)["field_text"] == "hello"
    sim_device.keyevent("BACK")  # hides the keyboard first
    assert ground_truth(sim_device)["field_focused"] is False

    sim_device.app_start("com.example.notes")
    assert sim_device.app_current().package == "com.example.notes"
    sim_device.swipe(500, 1500, 500, 500, 0.1)
    sim_device.keyevent("HOME")
    assert sim_device.app_current().package == "com.google.android.apps.nexuslauncher"

    payload = os.urandom(300_000)
    (tmp_path / "p.bin").write_bytes(payload)
    sim_device.sync.push(str(tmp_path / "p.bin"), "/data/local/tmp/p.bin")
    assert sim_device.sync.read_bytes("/data/local/tmp/p.bin") == payload
    assert sim_device.sync.stat("/data/local/tmp/p.bin").size == len(payload)
    assert "p.bin" in [f.path for f in sim_device.sync.list("/data/local/tmp")]


def _bounds_of(xml: str, resource_suffix: str) -> tuple[int, int]:
    import re
    import xml.etree.ElementTree as ET

    for node in ET.fromstring(xml).iter("node"):
        if node.get("resource-id", "").endswith(resource_suffix):
            x1, y1, x2, y2 = map(int, re.findall(r"\d+", node.get("bounds", "")))
            return (x1 + x2) // 2, (y1 + y2) // 2
    raise AssertionError(f"no node with resource id *{resource_suffix}")


def test_many_concurrent_streams(sim_device) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda i: sim_device.shell(f"echo stream{i}"), range(60)))
    assert results == [f"stream{i}" for i in range(60)]


# ------------------------------------------------------------------ uiautomator2


@pytest.mark.slow
def test_uiautomator2_end_to_end(adb_env: AdbEnv, sim_device) -> None:
    import uiautomator2 as u2

    d = u2.connect(sim_device)
    try:
        info = d.info
        assert (info["displayWidth"], info["displayHeight"]) == (1080, 2280)
        assert info["currentPackageName"] == "com.google.android.apps.nexuslauncher"
        assert "Tapped 0 times" in d.dump_hierarchy()
        d(text="Tapped 0 times").click()
        assert d(text="Tapped 1 times").exists
        button = d(resourceId="com.google.android.apps.nexuslauncher:id/counter_button").info[
            "bounds"
        ]
        d.click((button["left"] + button["right"]) // 2, (button["top"] + button["bottom"]) // 2)
        assert ground_truth(sim_device)["counter"] == 2
        assert d.screenshot().size == (1080, 2280)
        d(resourceId="com.google.android.apps.nexuslauncher:id/search_field").click()
        d.send_keys("naïve café")  # non-ASCII goes through the clipboard paste
        assert ground_truth(sim_device)["field_text"] == "naïve café"
        d.press("back")
        d(description="Notes").click()
        assert sim_device.app_current().package == "com.example.notes"
        d.press("home")
        assert sim_device.app_current().package == "com.google.android.apps.nexuslauncher"
        with pytest.raises(u2.UiObjectNotFoundError):
            d(text="No such widget").click(timeout=0.3)
    finally:
        d.stop_uiautomator()
    # The server stops when its launching shell stream closes: tcp:9008 is refused again.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sim_device.create_connection("tcp", 9008).close()
        except Exception:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("uiautomator2 server still reachable after stop")


# ------------------------------------------------------------------ adb-shell (direct to the device port)


def test_adb_shell_library_direct(sim_device) -> None:
    from adb_shell.adb_device import AdbDeviceTcp

    port = serial_port(sim_device) + 1
    dev = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=10)
    assert dev.connect(rsa_keys=None, auth_timeout_s=2)
    try:
        assert dev.shell("echo direct").strip() == "direct"
        dev.push(io.BytesIO(b"x" * 200_000), "/sdcard/direct.bin")
        buf = io.BytesIO()
        dev.pull("/sdcard/direct.bin", buf)
        assert buf.getvalue() == b"x" * 200_000
    finally:
        dev.close()


# ------------------------------------------------------------------ console and snapshots


def console_session(port: int, home: Path, *commands: str) -> list[str]:
    token = (home / ".emulator_console_auth_token").read_text().strip()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rwb")

        def read_reply() -> str:
            lines = []
            while True:
                line = f.readline().decode()
                if not line:
                    return "".join(lines)
                lines.append(line)
                if line.startswith("OK") or line.startswith("KO"):
                    return "".join(lines)

        read_reply()  # banner
        replies = []
        for cmd in (f"auth {token}", *commands):
            f.write(cmd.encode() + b"\r\n")
            f.flush()
            replies.append(read_reply())
        return replies[1:]


def test_console_snapshot_save_and_load(adb_env: AdbEnv, sim_device) -> None:
    port = serial_port(sim_device)
    xml = sim_device.dump_hierarchy()
    assert console_session(port, adb_env.home, "avd snapshot save before")[0].strip() == "OK"
    sim_device.click(*_bounds_of(xml, "counter_button"))
    sim_device.app_start("com.example.notes")
    sim_device.shell("echo gone > /sdcard/later.txt")
    assert ground_truth(sim_device)["counter"] == 1
    replies = console_session(
        port,
        adb_env.home,
        "avd snapshot list",
        "avd snapshot load before",
        "avd snapshot load nosuch",
        "avd status",
        "ping",
    )
    assert "before" in replies[0] and "default_boot" in replies[0]
    assert replies[1].strip() == "OK"
    assert replies[2].startswith("KO")
    assert "running" in replies[3] and "alive" in replies[4]
    truth = ground_truth(sim_device)
    assert truth["counter"] == 0 and truth["package"] == "com.google.android.apps.nexuslauncher"
    assert sim_device.shell("ls /sdcard/later.txt; echo $?").splitlines()[-1] == "1"
    # through the adb CLI too
    sim_device.click(*_bounds_of(xml, "counter_button"))
    adb_env.adb("-s", sim_device.serial, "emu", "avd", "snapshot", "load", "default_boot")
    assert ground_truth(sim_device)["counter"] == 0


def test_console_rejects_bad_token_and_garbage(adb_env: AdbEnv, sim_device) -> None:
    port = serial_port(sim_device)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rwb")
        assert b"Authentication required" in f.readline()
        while not f.readline().startswith(b"OK"):
            pass
        f.write(b"avd name\r\n")
        f.flush()
        assert f.readline().startswith(b"KO")
        f.write(b"auth wrong-token\r\n")
        f.flush()
        assert f.readline().startswith(b"KO")
        f.write(b"\xff\xfe" * 5000 + b"\r\n")  # an absurd line: the console closes this session
        f.flush()
    assert console_session(port, adb_env.home, "avd name")[0].startswith("test_Android")


def test_console_kill_stops_only_that_device(adb_env: AdbEnv, device_factory) -> None:
    first, second = device_factory(2)
    reply = console_session(serial_port(first), adb_env.home, "kill")[0]
    assert "bye bye" in reply
    record = adb_env.home / "sim" / f"{first.serial}.json"
    deadline = time.monotonic() + 10
    while record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not record.exists()
    assert second.shell("echo still here") == "still here"


def test_sigkill_of_one_device_leaves_the_others(adb_env: AdbEnv, device_factory) -> None:
    devices = device_factory(3)
    victim = devices[1]
    pid = json.loads((adb_env.home / "sim" / f"{victim.serial}.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    for other in (devices[0], devices[2]):
        assert other.shell("echo alive") == "alive"


# ------------------------------------------------------------------ malformed input


def raw_connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    # An old-version host (like adb-shell): payload checksums must be filled in.
    sock.sendall(pack(A_CNXN, 0x01000000, 256 * 1024, b"host::features=shell_v2"))
    header = _recv_exact(sock, 24)
    cmd, _a0, _a1, length, _c, _m = HEADER.unpack(header)
    assert cmd == A_CNXN
    banner = _recv_exact(sock, length)
    assert b"features=shell_v2" in banner and b"ro.product.model=" in banner
    return sock


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def _read_msg(sock: socket.socket) -> tuple[int, int, int, bytes]:
    cmd, a0, a1, length, check, magic = HEADER.unpack(_recv_exact(sock, 24))
    data = _recv_exact(sock, length)
    assert magic == cmd ^ 0xFFFFFFFF and check == sum(data) & 0xFFFFFFFF
    return cmd, a0, a1, data


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 24,  # not ADB at all
        struct.pack("<6I", A_WRTE, 1, 1, 10, 0, 0x12345678),  # bad magic
        struct.pack(
            "<6I", A_WRTE, 1, 1, 50 * 1024 * 1024, 0, A_WRTE ^ 0xFFFFFFFF
        ),  # oversized payload
        struct.pack("<6I", 0x44434241, 1, 1, 0, 0, 0x44434241 ^ 0xFFFFFFFF),  # unknown command
    ],
    ids=["http", "bad-magic", "oversized", "unknown-command"],
)
def test_garbage_closes_only_that_connection(sim_device, garbage: bytes) -> None:
    port = serial_port(sim_device) + 1
    sock = raw_connect(port)
    sock.sendall(garbage)
    assert _closed_by_peer(sock)
    sock.close()
    # garbage before any handshake, and a truncated header
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"\x01\x02\x03")
        raw.shutdown(socket.SHUT_WR)
        assert _closed_by_peer(raw)
    assert sim_device.shell("echo fine") == "fine"


def test_unknown_service_refused_and_streams_work_raw(sim_device) -> None:
    port = serial_port(sim_device) + 1
    with raw_connect(port) as sock:
        sock.sendall(pack(A_OPEN, 7, 0, b"frobnicate:now\0"))
        cmd, a0, a1, _ = _read_msg(sock)
        assert (cmd, a0, a1) == (A_CLSE, 0, 7)  # refused without OKAY
        sock.sendall(pack(A_OPEN, 8, 0, b"tcp:9008\0"))  # nothing listens yet
        assert _read_msg(sock)[:3] == (A_CLSE, 0, 8)
        sock.sendall(pack(A_OPEN, 9, 0, b"shell:echo raw\0"))
        cmd, local, remote, _ = _read_msg(sock)
        assert (cmd, remote) == (A_OKAY, 9)
        cmd, _, _, data = _read_msg(sock)
        assert cmd == A_WRTE and data == b"raw\n"
        sock.sendall(pack(A_OKAY, 9, local))
        assert _read_msg(sock)[0] == A_CLSE
    assert sim_device.shell("echo fine") == "fine"
