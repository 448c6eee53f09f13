"""Architecture boundaries, checked on every run."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    # pyproject.toml [tool.importlinter]: sfu never imports signaling, only the bridge
    # touches aiortc, the media core and room logic are web-framework free, the
    # control plane uses only sfu's public modules, and neither plane imports test or
    # benchmark code.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_opus_level_fallback_can_decode() -> None:
    # The media path never decodes: codec libraries are reachable from one module.
    decoders = {"av", "aiortc.codecs", "vpx", "opuslib"}
    users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "sfu").rglob("*.py")
        if any(name.split(".")[0] in decoders or name in decoders for name in _imports(path))
    }
    assert users == {"sfu/observers/opus_levels.py"}


# What the control plane may import from the media core; the rest of sfu is protected
# by the import contract "The control plane uses only the media core's public modules".
PUBLIC_SFU_MODULES = {
    "sfu",
    "sfu.worker",
    "sfu.router",
    "sfu.transport",
    "sfu.webrtc_transport",
    "sfu.pipe_transport",
    "sfu.direct_transport",
    "sfu.producer",
    "sfu.consumer",
    "sfu.events",
    "sfu.types",
    "sfu.errors",
    "sfu.options",
    "sfu.clock",
    "sfu.metrics",
    "sfu.layer_report",
    "sfu.observers",
    "sfu.observers.audio_level",
    "sfu.observers.speaking",
    "sfu.tasks",
}


def _protected_sfu_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [
        c for c in contracts if c["type"] == "protected" and c["allowed_importers"] == ["sfu"]
    ]
    return set(contract["protected_modules"])


def _sfu_modules() -> set[str]:
    modules = set()
    for path in (ROOT / "sfu").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_every_media_module_is_either_public_or_protected() -> None:
    # A new sfu module is a decision: part of the API the control plane may use, or
    # an internal that only sfu imports.
    protected = _protected_sfu_packages()
    assert not PUBLIC_SFU_MODULES & protected

    def covered(module: str) -> bool:
        return module in PUBLIC_SFU_MODULES or any(
            module == package or module.startswith(package + ".") for package in protected
        )

    assert sorted(m for m in _sfu_modules() if not covered(m)) == []
