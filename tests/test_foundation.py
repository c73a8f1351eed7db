"""The project installs as one distribution with the packages and commands the design names."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digiq.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["digiq", "digiq-collect", "digiq-train", "digiq-eval", "digiq-sim"]


@pytest.mark.parametrize(
    "package", ["digiq", "android", "android.sim", "trajectories", "eval", "emulator_configs"]
)
def test_packages_import(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__doc__, f"{package} needs a docstring saying what it is for"


def test_profiles_are_package_data() -> None:
    from emulator_configs import DEFAULT_PROFILE, list_profiles, load_profile

    assert {"digirl_pixel_api28", "pixel6_api33"} <= set(list_profiles())
    digirl = load_profile(DEFAULT_PROFILE)
    assert (digirl.width, digirl.height, digirl.density, digirl.api_level) == (1080, 2280, 440, 28)
    assert "hw.lcd.density=440\n" in digirl.config_ini()


def test_unknown_profile_is_a_clear_error() -> None:
    from emulator_configs import ProfileError, load_profile

    with pytest.raises(ProfileError, match="no_such_phone"):
        load_profile("no_such_phone")


def test_digiq_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "sim" in result.output


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_scripts_exist_and_help(script: str) -> None:
    path = Path(sys.executable).parent / script
    exe = str(path) if path.exists() else shutil.which(script)
    assert exe, f"console script {script} is not installed"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_the_command_line_starts_without_importing_torch() -> None:
    # `digiq --help` and every alias import digiq.cli; torch costs about 1.4 s to import, so
    # the learner's modules are imported only when a training command runs.
    code = "import sys, digiq.cli; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
