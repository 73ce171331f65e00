"""ferkit's layers hold: import-linter's contracts in pyproject.toml pass (the layers, and private modules
imported only inside their own package), and the layers name every package."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from _paths import REPO

SRC = REPO / "src" / "ferkit"


def _contract_layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    names = []
    for layer in contract["layers"]:
        names += [n.strip() for n in layer.replace(":", "|").split("|")]
    return names


def test_lint_imports_keeps_the_layers_contract():
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail(f"{exe}: import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([str(exe), "--config", str(REPO / "pyproject.toml"), "--no-cache"], check=False, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 kept, 0 broken" in out.stdout


def test_the_contract_names_every_package_once():
    """A new package cannot escape the layers: every module and package under src/ferkit is a layer."""
    on_disk = {f"ferkit.{p.stem}" for p in SRC.glob("*.py") if p.stem != "__init__"}
    on_disk |= {f"ferkit.{p.parent.name}" for p in SRC.glob("*/__init__.py")}
    named = _contract_layers()
    assert len(named) == len(set(named)), f"named twice: {sorted(n for n in named if named.count(n) > 1)}"
    assert set(named) == on_disk, f"not in the contract: {sorted(on_disk - set(named))}; " \
                                  f"gone from src: {sorted(set(named) - on_disk)}"


def _lint_a_copy_with(tmp_path: Path, module: str, source: str) -> subprocess.CompletedProcess:
    """lint-imports with pyproject.toml's contracts on a copy of the package holding one more module."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(SRC, copy / "ferkit", ignore=shutil.ignore_patterns("weights", "static", "__pycache__", "*.onnx"))
    (copy / Path(*module.split("."))).with_suffix(".py").write_text(source)
    exe = Path(sys.executable).with_name("lint-imports")
    env = {"PYTHONPATH": str(copy), "PATH": str(exe.parent)}
    return subprocess.run([str(exe), "--config", str(REPO / "pyproject.toml"), "--no-cache"], check=False, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)


def test_the_contract_catches_an_upward_import(tmp_path):
    """The same contract on a copy of the package in which a core module imports a front end fails,
    naming the import (so the test above can fail)."""
    out = _lint_a_copy_with(tmp_path, "ferkit.detect._upward", "from ferkit.cli import main  # noqa\n")
    assert out.returncode != 0
    assert "ferkit.detect._upward -> ferkit.cli" in out.stdout


def test_the_contract_catches_another_package_s_private_module(tmp_path):
    """A module importing another package's private module (here ferkit.models._shipped, also in the
    ``from ferkit.models import _shipped`` form) breaks the private-modules contract, and only that one;
    a package's own private modules stay importable inside it."""
    out = _lint_a_copy_with(tmp_path, "ferkit.evaluate.peek", "from ferkit.models._shipped import WEIGHTS_DIR  # noqa\n"
                                                             "from ferkit.models import _onnx  # noqa\n")
    assert out.returncode != 0
    assert "ferkit.evaluate.peek -> ferkit.models._shipped" in out.stdout
    assert "ferkit.evaluate.peek -> ferkit.models._onnx" in out.stdout
    assert "private modules stay inside their package BROKEN" in out.stdout
    assert "Contracts: 1 kept, 1 broken." in out.stdout, out.stdout[-2000:]
    out = _lint_a_copy_with(tmp_path / "own", "ferkit.models.peek",
                            "from ferkit.models._shipped import WEIGHTS_DIR  # noqa\n")
    assert out.returncode == 0 and "Contracts: 2 kept, 0 broken." in out.stdout, out.stdout[-2000:]


def test_ruff_check_passes():
    """``ruff check`` (the rules and the isort settings in pyproject.toml [tool.ruff]) passes on the repository,
    as .ci/run requires."""
    from importlib.util import find_spec

    if find_spec("ruff") is None:
        pytest.fail("ruff is not installed (pip install -e '.[dev]')")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(REPO)],
                         check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
