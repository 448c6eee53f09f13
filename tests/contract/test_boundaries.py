"""Architecture boundaries, checked on every run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    # pyproject.toml [tool.importlinter]: sfu never imports signaling, only the bridge
    # touches aiortc, the media core and room logic are web-framework free, and
    # neither plane imports test or benchmark code.
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
