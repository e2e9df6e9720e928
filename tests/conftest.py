"""Shared fixtures: run components or whole stacks under the truthful mocks."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from emlops.engine import RunResult, run_function
from emlops.mocks import AwsIdentity
from emlops.plan import Plan
from emlops.preview import preview_stack
from emlops.stackfile import find_project

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "eu-west-1"
IDENTITY = AwsIdentity(ACCOUNT, REGION)
SHIPPED_STACKS = ("dev", "staging", "prod")
REQUIRED_TAGS = ("owner", "cost-center", "data-classification")


def run_components(program: Callable[[], Any], identity: AwsIdentity = IDENTITY, stack: str = "test") -> Plan:
    """Run `program` (which creates components) under the mocks and return the plan it made."""
    return run_function(program, identity=identity, stack=stack).plan


@functools.lru_cache(maxsize=None)
def _shipped_preview(stack: str) -> RunResult:
    return preview_stack(stack, project=find_project(ROOT))


@pytest.fixture
def shipped_plan() -> Callable[[str], Plan]:
    """The plan of a shipped stack (previewed once per test session)."""
    return lambda stack: _shipped_preview(stack).plan


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch emlops project: the real program and components, stack files of the test's own."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path


def inputs_of(plan: Plan, name: str) -> dict[str, Any]:
    return plan.get(name).inputs
