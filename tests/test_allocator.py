"""android.allocator: freed blocks stay in the heap (fewer page faults), opt-outs are honoured."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from android.allocator import DISABLE_ENV, keep_freed_memory


def _is_glibc() -> bool:
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or name is None:
        return False
    return hasattr(ctypes.CDLL(name), "gnu_get_libc_version")


glibc_only = pytest.mark.skipif(not _is_glibc(), reason="mallopt thresholds are glibc's")

# Allocates, fills and frees a 60 MB block 20 times (above glibc's largest dynamic mmap threshold,
# 32 MiB, so by default each one is a fresh mmap whose pages fault in again), then prints the
# process's minor page faults.
_CHURN = """
import json, resource, sys
from android.allocator import keep_freed_memory
applied = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = b"x" * (60 * 1024 * 1024)
    del block
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"applied": applied, "faults": after - before}))
"""


def _churn(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "DIGIQ_"))}
    clean.pop("GLIBC_TUNABLES", None)
    out = subprocess.run(
        [sys.executable, "-c", _CHURN],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


@glibc_only
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    tuned = _churn()
    default = _churn(**{DISABLE_ENV: "0"})
    assert tuned["applied"] is True
    assert default["applied"] is False
    # 20 x 60 MB = 15,360 pages per block faulted in again by default; with the thresholds
    # raised only the first block's pages fault.
    assert default["faults"] > 20 * 10_000
    assert tuned["faults"] < default["faults"] / 5


@pytest.mark.parametrize(
    "name,value",
    [
        (DISABLE_ENV, "0"),
        ("MALLOC_MMAP_THRESHOLD_", "131072"),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072"),
    ],
)
def test_the_users_choice_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert keep_freed_memory() is False


@glibc_only
def test_applies_on_glibc_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (DISABLE_ENV, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=2048")  # not malloc
    assert keep_freed_memory() is True


def test_rejects_a_threshold_below_one() -> None:
    with pytest.raises(ValueError, match="threshold_bytes"):
        keep_freed_memory(0)


def test_every_digiq_command_applies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from digiq import cli

    calls: list[int] = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    result = CliRunner().invoke(cli.main, ["tasks", "--help"])
    assert result.exit_code == 0, result.output
    assert calls == [1]
    with pytest.raises(SystemExit) as exit_info:
        monkeypatch.setattr(sys, "argv", ["digiq-train", "--help"])
        cli.train_main()
    assert exit_info.value.code == 0
    assert calls == [1, 1]


def test_the_simulated_device_process_applies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from android.sim import serve

    calls: list[int] = []
    monkeypatch.setattr(serve, "keep_freed_memory", lambda: calls.append(1) or True)
    with pytest.raises(SystemExit):
        serve.main(["--help"])
    assert calls == [1]
