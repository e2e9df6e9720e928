"""Malformed stack files, one defect each, through `emlops preview`: exactly one line on stderr, exit 2, the file
and the key named, and no plan written. Reading (repeated keys, aliases, encodings, files that are not files),
one-line messages, tags, strict types and the account rule."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from tests.conftest import edit_stack

runner = CliRunner()
DEV = "stacks/Pulumi.dev.yaml"
AT = f"{DEV}: emlops:platform"
ALLOWED_TOP = ("environment, production, account_id, region, deploy_role_arn, tags, permission_boundary_arn, kms, "
               "storage, network, registry, feature_groups, training, models, personas, guardrails, alerts")
TAG_CHARACTERS = "letters, digits, spaces and _ . : / = + - @"


def preview_fails(project: Path, stack: str = "dev", *args: str) -> str:
    """The one stderr line of `emlops preview STACK --json plan.json` in `project`, which must fail with exit 2,
    print nothing on stdout and write no plan."""
    plan = project / "plan.json"
    result = runner.invoke(app, ["preview", stack, "--json", str(plan), *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert not plan.exists()
    assert result.stderr.endswith("\n") and len(result.stderr.splitlines()) == 1, repr(result.stderr)
    return result.stderr[:-1]


def append_to_stack(project: Path, stack: str, data: bytes) -> None:
    with open(project / "stacks" / f"Pulumi.{stack}.yaml", "ab") as handle:
        handle.write(data)


# (old text of stacks/Pulumi.dev.yaml, new text, the one line) -- one defect each
DEV_CASES = {
    # one line whatever a key or value holds
    "unknown key with a newline": (
        "    kms:\n", '    "kms\\nextra": 1\n    kms:\n',
        f"{AT}.'kms\\nextra': unknown key; allowed keys: {ALLOWED_TOP}"),
    "unknown key with a terminal escape": (
        "    kms:\n", '    "\\e[2Jkms": 1\n    kms:\n',
        f"{AT}.'\\x1b[2Jkms': unknown key; did you mean 'kms'? allowed keys: {ALLOWED_TOP}"),
    "unknown config key with a line separator": (
        "config:\n", 'config:\n  "emlops:x\\Ly": 1\n',
        f"{DEV}: emlops:x\\u2028y: unknown key; allowed keys: emlops:platform, emlops:mlflowBackendStoreUri"),
}


@pytest.mark.parametrize("old, new, expected", DEV_CASES.values(), ids=DEV_CASES.keys())
def test_a_malformed_dev_stack_is_one_line_and_no_plan(project_copy, monkeypatch, old, new, expected):
    edit_stack(project_copy, "dev", old, new)
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == expected


