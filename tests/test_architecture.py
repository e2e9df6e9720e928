"""The architecture holds: one import package, layers that point one way, no import cycles, small modules.

import-linter reads the package the way it is installed. setuptools maps the repository's folders into
`emlops` (`components/` is `emlops.components`, `infra/` is `emlops.program`), which an editable install
serves through an import hook that import-linter cannot walk; so the test lays the package out as the
wheel does (the mapping from pyproject.toml) and runs `lint-imports` on that copy with the contracts in
pyproject.toml.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MAX_MODULE_LINES = 400


def _package_dirs() -> dict[str, Path]:
    """Every package of the distribution and the folder it is installed from (setuptools' package-dir)."""
    settings = PYPROJECT["tool"]["setuptools"]
    mapping = settings.get("package-dir", {})

    def folder(package: str) -> Path:
        if package in mapping:
            return ROOT / mapping[package]
        parent, _, leaf = package.rpartition(".")
        return folder(parent) / leaf if parent else ROOT / package

    return {package: folder(package) for package in settings["packages"]}


@pytest.fixture(scope="module")
def installed_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as a wheel installs it: `emlops/...` with every mapped folder in its place."""
    root = tmp_path_factory.mktemp("layout")
    for package, source in _package_dirs().items():
        target = root.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy(module, target / module.name)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_distribution_installs_one_import_package() -> None:
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    assert {p.split(".")[0] for p in packages} == {"emlops"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {
        "emlops.components": "components", "emlops.program": "infra"}
    found = {p.parent for p in ROOT.glob("emlops/**/__init__.py")} | {ROOT / "components", ROOT / "infra"}
    assert found == set(_package_dirs().values()), "every package folder is listed in pyproject.toml"


def test_import_contracts_hold(installed_layout: Path) -> None:
    """Layers (cli -> review -> offline -> program -> components | guardrails -> catalog) and no cycles."""
    contracts = {c["id"]: c["type"] for c in PYPROJECT["tool"]["importlinter"]["contracts"]}
    assert contracts == {"layers": "layers", "acyclic": "acyclic_siblings"}
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "pyproject.toml", "--no-cache"], cwd=installed_layout, capture_output=True,
                            text=True, env={"PYTHONPATH": str(installed_layout), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_no_module_is_over_the_size_a_reader_takes_in() -> None:
    long = {str(module.relative_to(ROOT)): n for folder in set(_package_dirs().values())
            for module in folder.glob("*.py") if (n := len(module.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
