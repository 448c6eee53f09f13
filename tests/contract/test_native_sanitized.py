"""The native fan-out under AddressSanitizer: built with -fsanitize=address into a
scratch copy and driven through the same random streams as the identity tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
from sfu import fastpath
from sfu.srtp import SrtpProfile
from tests import native_lifecycle, pacing_scenarios
from tests.fanout_driver import run_both

assert fastpath.native_available()
for profile in SrtpProfile:
    for seed in range(3):
        python, native = run_both(profile, seed, steps=2000)
        assert python == native, (profile, seed)
    python, native = run_both(profile, 0, steps=2000, layers=3, vp8=True)
    assert python == native, (profile, "simulcast-vp8")
    for layers in (1, 3):
        python, native = run_both(profile, 1, steps=3000, layers=layers, vp8=True, temporal=True)
        assert python == native, (profile, layers, "temporal")
native_lifecycle.run_all()
pacing_scenarios.run_all()
print("sanitized run ok")
"""


def _libasan() -> str:
    path = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert os.path.isabs(path) and os.path.exists(path), "gcc's AddressSanitizer runtime is missing"
    return path


@pytest.mark.timeout(180)
def test_the_native_fan_out_is_clean_under_address_sanitizer(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "sfu", tmp_path / "sfu", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    shutil.copytree(
        ROOT / "tests", tmp_path / "tests", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tmp_path,
        env={**os.environ, "STAGE_SFU_NATIVE_SANITIZE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    built = list((tmp_path / "sfu").glob("_fastpath*.so"))
    assert built, build.stdout + build.stderr
    symbols = subprocess.run(["nm", "-D", str(built[0])], capture_output=True, text=True).stdout
    assert "__asan_" in symbols, "the extension was not instrumented"
    run = subprocess.run(
        [sys.executable, "-c", DRIVER],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "LD_PRELOAD": _libasan(),
            # CPython itself is not built for ASan: its allocations look leaked.
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=170,
    )
    assert "AddressSanitizer" not in run.stderr, run.stderr[-4000:]
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "sanitized run ok" in run.stdout
