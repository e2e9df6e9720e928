"""Shared fixtures: run components or whole stacks under the truthful mocks."""

from __future__ import annotations

import atexit
import functools
import gc
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from emlops.offline.engine import RunResult, run_function
from emlops.offline.mocks import AwsIdentity
from emlops.catalog.requests import to_api_request, validate_request
from emlops.offline.plan import Plan, PlanResource
from emlops.offline.preview import preview_stack
from emlops.program.stackfile import find_project

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "eu-west-1"
IDENTITY = AwsIdentity(ACCOUNT, REGION)
SHIPPED_STACKS = ("shared", "dev", "staging", "prod")
REQUIRED_TAGS = ("owner", "cost-center", "data-classification")
ORGANIZATION_TRAIL = "arn:aws:cloudtrail:us-east-1:777777777777:trail/acme-organization-trail"

# The suite's processes write bytecode even where PYTHONDONTWRITEBYTECODE is set (as on the machines this
# project's CI runs on): without it each test worker rewrites and compiles every test module, and each of the
# ~60 commands the tests start compiles the emlops modules it imports, every run. (__pycache__ is ignored by git.)
sys.dont_write_bytecode = False

# Previews in this session (and the CLI processes its tests start) keep the pipeline definitions the SDK
# built in a directory of their own, never in the user's ~/.cache/emlops.
os.environ["EMLOPS_CACHE_DIR"] = tempfile.mkdtemp(prefix="emlops-test-cache-")
atexit.register(shutil.rmtree, os.environ["EMLOPS_CACHE_DIR"], ignore_errors=True)


def run_components(program: Callable[[], Any], identity: AwsIdentity = IDENTITY, stack: str = "test") -> Plan:
    """Run `program` (which creates components) under the mocks and return the plan it made."""
    return run_function(program, identity=identity, stack=stack).plan


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each worker starts with its share of the tests marked `processes` (seconds each), the others after them.

    pytest-xdist's `worksteal` hands each worker a contiguous part of the collection at the start, and an idle
    worker steals from the end of the busiest one's part. In collection order the long tests sat near the end
    (test_readme, test_workflows): one of them often ran last, alone, on one core. Here each worker's part
    begins with every n-th long test, so they run first, side by side, and the short ones even out the end.
    Every worker computes the same order (xdist requires it)."""
    heavy = [item for item in items if item.get_closest_marker("processes")]
    light = [item for item in items if not item.get_closest_marker("processes")]
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    order: list[pytest.Item] = []
    remaining = len(items)
    for worker in range(workers):
        size = remaining // (workers - worker)  # what worksteal sends this worker at the start
        share = heavy[worker::workers]
        take = max(0, size - len(share))
        order += share + light[:take]
        light = light[take:]
        remaining -= size
    items[:] = order + light


def pytest_collection_finish(session: pytest.Session) -> None:
    _set_aside_what_lives_on()


@pytest.fixture(autouse=True)
def _definitions_kept_before_new_processes(request: pytest.FixtureRequest) -> None:
    """Before a test that starts emlops in new processes (run first, see above): this worker's previews of the
    shipped stacks, which it makes for its other tests anyway, so that their pipeline definitions and framework
    images are in the session's cache directory and those processes read them instead of each importing the
    SageMaker SDK (~2.5 s of CPU a process). Tests of an empty cache use a directory of their own."""
    if request.node.get_closest_marker("processes"):
        for stack in SHIPPED_STACKS:
            shipped_preview(stack)


@pytest.fixture(autouse=True)
def _set_aside_after_each_test():
    yield
    _set_aside_what_lives_on()


def _set_aside_what_lives_on() -> None:
    """Collect the garbage, then move what is still alive (imported modules, cached previews, fixtures of a wider
    scope) to the collector's permanent generation, which its collections do not scan. A test process holds
    millions of such objects (pulumi-aws, the SageMaker SDK, pandas...), and each full collection rescanned them
    all: about a sixth of the suite's CPU time. What a test makes is collected as before."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader_per_session():
    """Every botocore session the tests make (each `emlops retrain/approve`, each boto3 client of a moto test)
    shares one data loader, so each service model's JSON is decoded once per test process instead of once per
    session (~0.1 s for SageMaker's). What emlops's retraining build does for its own sessions
    (components/retraining_definition.py): the loader only reads files that ship with botocore and caches what
    it decodes, so sharing it changes nothing but the time. Patched in botocore.loaders too, so that the build's
    own patch, which restores the function it imported from there, restores this one."""
    import botocore.loaders
    import botocore.session

    original = botocore.loaders.create_loader
    loaders: dict[Any, Any] = {}

    def shared_loader(search_path_string: Optional[str] = None):
        if search_path_string not in loaders:
            loaders[search_path_string] = original(search_path_string)
        return loaders[search_path_string]

    botocore.loaders.create_loader = botocore.session.create_loader = shared_loader
    yield
    botocore.loaders.create_loader = botocore.session.create_loader = original


@functools.lru_cache(maxsize=None)
def shipped_preview(stack: str) -> RunResult:
    """The preview of a shipped stack, made once per test process; read it, never change it."""
    return preview_stack(stack, project=find_project(ROOT))


@pytest.fixture
def shipped_plan() -> Callable[[str], Plan]:
    """The plan of a shipped stack (previewed once per test process)."""
    return lambda stack: shipped_preview(stack).plan


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection or name look-up in the test fails it."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network call: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sqlite MLflow store with MLflow's schema and nothing else, made once per test process."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-empty") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments()
    client.search_registered_models()
    return path


@pytest.fixture(scope="session")
def new_mlflow_store(empty_mlflow_store: Path) -> Callable[[Path], str]:
    """A fresh local MLflow store in a folder, its URI: a copy of the empty one, so that each registry fixture
    skips MLflow's schema migrations (~1.4 s) but is a real store of its own."""

    def make(folder: Path) -> str:
        shutil.copy(empty_mlflow_store, folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"
    return make


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch emlops project: the real program and components, stack files of the test's own."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path


def extended_project(root: Path, change: str) -> Path:
    """A scratch project (as `project_copy`) whose program is the real one with `change` (lines of Python) at the end
    of its entry point `main`, after the platform is built: where a user's own resources go."""
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", root / "stacks")
    (root / "infra").mkdir()
    program, entry = (ROOT / "infra" / "__main__.py").read_text().split("\n\n\npulumi.run(main)\n")
    assert entry == ""
    (root / "infra" / "__main__.py").write_text(program + textwrap.indent("\n" + change, "    ") + "\n\npulumi.run(main)\n")
    return root


BASE_SETTINGS: dict[str, Any] = {
    "environment": "dev", "account_id": ACCOUNT, "region": REGION,
    "tags": {"owner": "ml-team", "cost-center": "cc-42", "data-classification": "internal"},
}


def run_platform(settings: dict[str, Any], name: Optional[str] = None, identity: AwsIdentity = IDENTITY,
                 **context: Any) -> Plan:
    """Run the composition root (`MlPlatform`) for `settings`, an `emlops:platform` section (missing
    required keys come from BASE_SETTINGS), with its models (and batch transforms' models) resolved offline;
    return the plan.
    `context` adds PlatformContext fields (e.g. mlflow_backend_store_uri)."""
    from emlops.offline.resolver import OfflineResolver
    from emlops.program.platform import PlatformConfig
    from emlops.program.platform import MlPlatform, PlatformContext
    from emlops.program.serving import score, serve

    # production stacks are audited: by default here by the organisation's trail (a look-up, no resource)
    audit = {"audit": {"organization_trail": {"trail_arn": ORGANIZATION_TRAIL}}} if settings.get("production") else {}

    def program() -> None:
        config = PlatformConfig.model_validate({**BASE_SETTINGS, **audit, **settings})
        models = [serve(config, OfflineResolver(), index, model, "stacks/Pulumi.test.yaml")
                  for index, model in enumerate(config.models)]
        batch = [score(config, OfflineResolver(), index, entry, "stacks/Pulumi.test.yaml")
                 for index, entry in enumerate(config.batch_transforms)]
        MlPlatform(name or config.environment, config, PlatformContext(models=models, batch_transforms=batch,
                                                                       **context))
    return run_components(program, identity=identity)


def inputs_of(plan: Plan, name: str) -> dict[str, Any]:
    return plan.get(name).inputs


# -- helpers the component tests share ----------------------------------------------------------------

ROLE_POLICY_TYPE = "aws:iam/rolePolicy:RolePolicy"


def policy_statements(plan: Plan, name: str) -> list[dict[str, Any]]:
    """The statements of the inline policy `name` (a RolePolicy), checking the document's version."""
    document = json.loads(plan.get(name, ROLE_POLICY_TYPE).inputs["policy"])
    assert document["Version"] == "2012-10-17"
    return document["Statement"]


def concern_statements(plan: Plan, name: str) -> list[dict[str, Any]]:
    """The statements of one concern (`<role>-<concern>`, e.g. `churn-execution-logs`) of the role's single
    inline policy `<role>-permissions`, picked by the concern's Sid (`Logs`, `Logs2`, ...; Sids dropped)."""
    role, concern = name.rsplit("-execution-", 1)
    sid = "".join(part.capitalize() for part in concern.split("-"))
    document = policy_statements(plan, f"{role}-execution-permissions")
    picked = [s for s in document if re.fullmatch(rf"{sid}\d*", s["Sid"])]
    assert picked, f"no statements for {concern!r} in {role}-execution-permissions"
    return [{key: value for key, value in s.items() if key != "Sid"} for s in picked]


def concerns(plan: Plan, role: str) -> list[str]:
    """The Sids of a role's single inline policy, in order."""
    return [s["Sid"] for s in policy_statements(plan, f"{role}-permissions")]


def allow(actions: list[str], resources: list[str], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return {**statement, "Condition": condition} if condition else statement


def auto_name(resource: PlanResource, prop: str = "name") -> str:
    """The resource's auto-name (`<logical name>-<7 hex>`), checked."""
    name = resource.inputs[prop]
    assert re.fullmatch(rf"{resource.name}-[0-9a-f]{{7}}", name)
    return name


def api_problems(resource: PlanResource) -> list[str]:
    """What botocore's create API says of the resource's inputs ([] when the request is valid)."""
    return validate_request(to_api_request(resource.type, resource.inputs))


def edit_stack(project: Path, stack: str, old: str, new: str) -> None:
    """Replace OLD (which must occur exactly once) in a project copy's stack file."""
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def preview_error(project: Path, stack: str) -> str:
    """The one-line error (exit code 2) of previewing STACK in a project copy."""
    from emlops.offline.preview import PreviewError, preview_stack

    with pytest.raises(PreviewError) as caught:
        preview_stack(stack, start=project)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    return str(caught.value)
