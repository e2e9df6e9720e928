"""The extension guides are tests: README's "Adding a component" and policy/README.md's "Adding a rule",
followed literally on a copy of the repository.

Each guide is read in order: a ```python title="PATH"``` block is a new file, a ```diff``` block a change
applied to the file its header names (by its context lines, as `patch` does), a ```bash``` block commands
run in the copy (each must succeed), and a ```text``` block lines that the commands before it print. Then
the files the guide touched are counted: a component is its module, its field and stage in the
composition root and its test; a rule is the rule, the controls it evidences and its tests.

The copy is laid out as the wheel installs it (`emlops.components` is `components/`, `emlops.program` is
`infra/`, setuptools' package-dir in pyproject.toml) and its commands run with `python -S -P`, with this
environment's site-packages on PYTHONPATH behind the copy, so the copy's code is what runs, not the
editable install of this checkout.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.S | re.M)
TITLE = re.compile(r'title="([^"]+)"')
COPIED = ("Pulumi.yaml", "pyproject.toml", "README.md", "components", "infra", "emlops", "stacks", "tests", "policy")
OUTPUTS = re.compile(r"^[\w.-]+\.json$")  # plan files the guides' commands write at the top of the copy


def section(path: Path, heading: str) -> str:
    """The text under HEADING up to the next heading of the same or a higher level."""
    text = path.read_text(encoding="utf-8")
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n") + 1
    following = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(heading):], flags=re.M)
    return text[start:start + len(heading) + following.start()] if following else text[start:]


def copy_repository(target: Path) -> Path:
    """The project as a fresh checkout has it, with the package folders mapped into `emlops/` as installed."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy(source, target / name)
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in mapping.items():
        link = target.joinpath(*package.split("."))
        link.symlink_to(os.path.relpath(target / folder, link.parent), target_is_directory=True)
    return target


def fingerprint(root: Path) -> dict[str, str]:
    """Path -> content hash of every file of the copy (the symlinked package folders are not walked twice)."""
    files = {}
    for folder, dirs, names in os.walk(root):  # does not follow symlinks
        dirs[:] = [d for d in dirs if d not in ("__pycache__", ".pytest_cache")]
        for name in names:
            path = Path(folder) / name
            files[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def apply_diff(root: Path, diff: str) -> str:
    """Apply a unified diff to the file it names, each hunk found by its context; the file's path."""
    [path] = re.findall(r"^\+\+\+ b/(\S+)$", diff, flags=re.M)
    target = root / path
    text = target.read_text(encoding="utf-8")
    for hunk in re.split(r"^@@[^\n]*@@\n", diff, flags=re.M)[1:]:
        lines = hunk.splitlines()
        old = "".join(line[1:] + "\n" for line in lines if line[:1] in (" ", "-") or line == "")
        new = "".join(line[1:] + "\n" for line in lines if line[:1] in (" ", "+") or line == "")
        assert text.count(old) == 1, f"a hunk of the guide's diff of {path} no longer matches it:\n{old}"
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    return path


def run(root: Path, line: str) -> str:
    """Run one command of a guide in the copy, as the guide shows it; its output."""
    argv = shlex.split(line)
    prefix = [sys.executable, "-S", "-P"]
    argv = [*prefix, "-m", "emlops", *argv[1:]] if argv[0] == "emlops" else [*prefix, *argv[1:]]
    assert line.split()[0] in ("emlops", "python"), line
    site_packages = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {"PYTHONPATH": os.pathsep.join([str(root), *site_packages]), "PATH": os.environ.get("PATH", "/usr/bin"),
           "COLUMNS": "200", "HOME": str(root),
           # the session's definition cache (tests/conftest.py), not one inside the copy
           "EMLOPS_CACHE_DIR": os.environ["EMLOPS_CACHE_DIR"],
           # a guide's `python -m pytest` runs its tests in its own process (pyproject's `-n auto` would start a
           # worker per CPU, which the suite running this test already keeps busy)
           "PYTEST_XDIST_AUTO_NUM_WORKERS": "0"}
    result = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, (line, result.stdout[-6000:], result.stderr[-3000:])
    return result.stdout


def follow(root: Path, guide: str) -> set[str]:
    """Do what GUIDE says, in order; the files it created or changed by hand."""
    touched: set[str] = set()
    printed: list[str] = []
    for language, info, body in BLOCK.findall(guide):
        title = TITLE.search(info)
        if language == "python" and title:
            target = root / title.group(1)
            assert not target.exists(), f"{title.group(1)} is a new file in the guide"
            target.write_text(body, encoding="utf-8")
            touched.add(title.group(1))
        elif language == "diff":
            touched.add(apply_diff(root, body))
        elif language == "bash":
            printed = []
            for line in body.splitlines():
                command = line.split("#")[0].strip()
                if command:
                    printed += [out.strip() for out in run(root, command).splitlines()]
        elif language == "text":
            missing = [line for line in body.splitlines() if line.strip() and line.strip() not in printed]
            assert missing == [], f"the guide says the commands print these lines, they do not: {missing}"
        else:
            raise AssertionError(f"the guide has a ```{language} block the test does not know how to follow")
    return touched


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {path for path in after if before.get(path) != after[path] and not OUTPUTS.match(path)}


@pytest.mark.processes
def test_adding_a_component_touches_its_module_its_stage_and_its_test(tmp_path):
    guide = section(ROOT / "README.md", "### Adding a component")
    root = copy_repository(tmp_path)
    before = fingerprint(root)
    touched = follow(root, guide)
    code = {path for path in touched if path.endswith(".py")}
    assert code == {"components/feature_exports.py", "infra/platform.py", "tests/test_feature_exports.py"}
    # besides the code: the one key that turns it on, and the README's reference that the docs command wrote
    assert changed(before, fingerprint(root)) == code | {"stacks/Pulumi.staging.yaml", "README.md"}
    assert "`feature_exports`" in (root / "README.md").read_text()


@pytest.mark.processes
def test_adding_a_rule_touches_the_rule_and_its_tests(tmp_path):
    guide = section(ROOT / "policy" / "README.md", "## Adding a rule")
    root = copy_repository(tmp_path)
    before = fingerprint(root)
    touched = follow(root, guide)
    assert touched == {"emlops/guardrails/governance.py", "emlops/guardrails/controls.py",
                       "tests/test_policy_kms_deletion_window.py"}
    assert changed(before, fingerprint(root)) == touched


@pytest.mark.parametrize(("path", "heading"), [("README.md", "### Adding a component"),
                                               ("policy/README.md", "## Adding a rule")])
def test_each_guide_is_a_section_with_steps(path, heading):
    guide = section(ROOT / path, heading)
    kinds = [language for language, _, _ in BLOCK.findall(guide)]
    assert kinds.count("bash") >= 1 and ("diff" in kinds and "python" in kinds)
