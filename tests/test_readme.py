"""The README's commands and examples run, so they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from emlops.cli.docs import END, START, render_readme
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
PREVIEW_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -c requirements.lock -e . && .venv/bin/emlops preview dev"
TEST_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -c requirements.lock -e '.[test]' && "
                ".venv/bin/python -m pytest")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def venv_command(command: str) -> list[str]:
    """The part of a README command after the install, pointed at this interpreter's environment."""
    last = command.split(" && ")[-1].split()
    return [str(Path(sys.executable).parent / Path(last[0]).name), *last[1:]]


def test_readme_shows_the_two_commands():
    bash = [block.strip() for block in code_blocks("bash")]
    assert PREVIEW_COMMAND in bash
    assert TEST_COMMAND in bash


def test_ci_runs_the_readme_test_command():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert lines[-1] == TEST_COMMAND


@pytest.mark.processes
def test_readme_preview_command_prints_the_dev_tree():
    result = subprocess.run(venv_command(PREVIEW_COMMAND), cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("emlops / dev: 182 resources\n└── emlops-dev  pulumi:pulumi:Stack\n")
    assert "dev  emlops:index:MlPlatform" in result.stdout
    assert "dev-data-key  aws:kms/key:Key" in result.stdout


def test_readme_error_example_is_what_the_cli_prints(project_copy):
    stack = project_copy / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("      owner: ml-platform@example.com\n", ""))
    result = subprocess.run([sys.executable, "-m", "emlops", "preview", "dev"], cwd=project_copy,
                            capture_output=True, text=True, timeout=120)
    [example] = [b for b in code_blocks("text") if b.startswith("$ emlops preview dev\n")]
    assert result.returncode == 2
    assert result.stderr == example.split("\n", 1)[1]


def test_config_reference_is_up_to_date():
    assert render_readme(README) == README, "run: .venv/bin/python -m emlops.cli.docs"


def test_lock_file_was_made_by_the_readme_command():
    [command] = re.findall(r"`(uv pip compile [^`]+)`", README)
    assert (ROOT / "requirements.lock").read_text().splitlines()[1].lstrip("# ") == command


def test_readme_deploy_commands_name_shipped_stacks_and_the_pulumi_project_matches():
    import yaml

    selected = re.findall(r"pulumi stack (?:select|init) (\w+)", README)
    assert selected and all((ROOT / "stacks" / f"Pulumi.{stack}.yaml").is_file() for stack in selected)
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "emlops" and project["main"] == "infra/" and project["stackConfigDir"] == "stacks"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert (ROOT / "requirements.txt").read_text().splitlines()[-2:] == ["-c requirements.lock", "-e ."]


BENCHMARK_ROWS = {
    "warm": [r"staging preview, in-process: +\d+ ms for \d+ resources \(\d+ registrations",
             r"ratio staging / flat: +\d+\.\d\d",
             r"flat pulumi_aws, \d+ registrations: \d+ ms; ratio \d+\.\d\d",
             r"replay of the \d+ registrations' plans \(.*\): \d+ ms; ratio \d+\.\d\d",
             r"generated prod stack, +1 models: +\d+ resources, in-process \d+\.\d\d s .* ratio \d+\.\d\d; "
             r"replay \d+\.\d\d s, ratio \d+\.\d\d"],
    "cold": [r"cold `emlops preview shared -q`: +\d+\.\d\d s, peak \d+ MB \(empty cache\); \d+\.\d\d s, peak \d+ MB",
             r"cold `emlops preview bench -q`: +\d+\.\d\d s, peak \d+ MB \(1 models, \d+ resources\)",
             r"cold flat program, same count: +\d+\.\d\d s, peak \d+ MB",
             r"cold replay of the generated plan: +\d+\.\d\d s, peak \d+ MB"],
    "workflow": [r"PR workflow head step \(preview --all \+ check --plan x1\): \d+\.\d\d s \(empty cache\); "
                 r"\d+\.\d\d s"],
}


@pytest.mark.processes
@pytest.mark.parametrize("rows", sorted(BENCHMARK_ROWS))
def test_readme_benchmark_command_runs(rows):
    """The README's benchmark command at the smallest size, one group of rows at a time (so the groups can run
    side by side): each prints every line of its rows."""
    # the smallest size: one run, one generated model, the warm rows of staging (it reads the shared stack, as
    # prod does), and the cold rows and the workflow over the smallest stack, shared (the definition cache's empty
    # and filled runs are test_built_cache.py's and test_build_worker.py's; here, that every line prints)
    size = {"warm": ["--stack", "staging"], "cold": ["--stack", "shared"], "workflow": ["--stacks", "shared"]}[rows]
    result = subprocess.run([sys.executable, "benchmarks/preview.py", "--repeat", "1", "--models", "1",
                             "--rows", rows, *size], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert [row for row in BENCHMARK_ROWS[rows] if not re.search(row, result.stdout)] == [], result.stdout
    assert len(result.stdout.splitlines()) == {"warm": 6, "cold": 4, "workflow": 1}[rows], result.stdout


def test_every_benchmark_row_group_is_smoke_tested():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "benchmarks" / "preview.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.ROWS) == set(BENCHMARK_ROWS)


def test_readme_batch_transform_example_is_the_shipped_prod_entry():
    import yaml

    from emlops.program.config_models import BatchTransformConfig

    [example] = [yaml.safe_load(block)["batch_transforms"] for block in code_blocks("yaml")
                 if "batch_transforms:" in block]
    shipped = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["emlops:platform"]
    assert [BatchTransformConfig.model_validate(entry) for entry in example] == [
        BatchTransformConfig.model_validate({**entry, "monitoring": {
            key: value for key, value in entry["monitoring"].items() if key != "drift_features"}})
        for entry in shipped["batch_transforms"]]


def test_readme_model_example_is_a_valid_model():
    import yaml

    from emlops.program.config_models import ModelConfig

    examples = [block for block in code_blocks("yaml") if "models:" in block and "shadow:" not in block]
    parsed = [ModelConfig.model_validate(model) for example in examples for model in yaml.safe_load(example)["models"]]
    [churn] = [model for model in parsed if model.name == "churn"]
    assert (churn.name, churn.source.mlflow, churn.deployment.strategy) == ("churn", "models:/churn@champion", "canary")
    modes = {model.name: (model.serving, model.mode, model.large_model) for model in parsed}
    assert (modes["doc-scoring"], modes["tenants"], modes["assistant"]) == (
        ("async", "single_model", False), ("realtime", "multi_model", False), ("realtime", "single_model", True))
    [fraud] = [model for model in parsed if model.name == "fraud"]
    assert (fraud.environment, fraud.secret_environment) == ({"LOG_LEVEL": "info"}, {"DB_PASSWORD": "fraudDbPassword"})


def shadow_example() -> dict[str, dict]:
    """The README's shadow-test example: its models by name."""
    import yaml

    [block] = [block for block in code_blocks("yaml") if "shadow:" in block]
    return {model["name"]: model for model in yaml.safe_load(block)["models"]}


def test_readme_shadow_examples_are_valid_models_of_both_challenger_kinds():
    from emlops.program.config_models import ModelConfig

    models = {name: ModelConfig.model_validate(model) for name, model in shadow_example().items()}
    assert [(m.source.model_package_group, m.shadow.challenger.model_package_group, m.shadow.traffic_percent)
            for m in models.values() if m.source.model_package_group] == [("churn", "churn", 50)]
    assert [(m.source.mlflow, m.shadow.challenger.mlflow) for m in models.values() if m.source.mlflow] == [
        ("models:/upsell@champion", "models:/upsell@challenger")]


def test_readme_promote_commands_run_as_shown(project_copy, monkeypatch):
    """The 'emlops promote' lines, in order, on prod with the README's churn shadow test, in moto's shared registry
    account: the dry run changes nothing, the promotion approves the pending package."""
    import contextlib
    import shlex

    import typer
    import yaml
    from typer.testing import CliRunner

    from emlops.cli.operations import Runtime, register
    from tests.test_operations import REGISTRY_ACCOUNT, create_packages, moto_in, status_of

    path = project_copy / "stacks" / "Pulumi.prod.yaml"
    stack = yaml.safe_load(path.read_text())
    [churn] = [m for m in stack["config"]["emlops:platform"]["models"] if m["name"] == "churn"]
    churn["shadow"] = shadow_example()["churn"]["shadow"]
    path.write_text(yaml.safe_dump(stack))
    app = typer.Typer()
    register(app, Runtime(interactive=lambda: True))  # the reader at a terminal, answering yes
    [block] = [b for b in code_blocks("bash") if "emlops promote" in b]
    commands = [shlex.split(line.split("#")[0]) for line in block.strip().splitlines() if line.startswith("emlops ")]
    assert [command[:3] for command in commands] == [["emlops", "promote", "prod"]] * 2
    with contextlib.contextmanager(moto_in)(monkeypatch, project_copy, REGISTRY_ACCOUNT):
        create_packages("Approved", "PendingManualApproval")
        statuses = []
        for command in commands:
            result = CliRunner().invoke(app, command[1:], input="y\n")
            assert result.exit_code == 0, (command, result.output)
            statuses.append([status_of(version)[0] for version in (1, 2)])
    assert statuses == [["Approved", "PendingManualApproval"], ["Approved", "Approved"]]


def test_readme_secret_command_names_a_config_key_the_stack_files_accept():
    """Each `pulumi config set --secret` sets a key a stack file accepts: its own, or one a model's
    `secret_environment` in the README's examples names."""
    import yaml

    from emlops.program.stackfile import ALLOWED_CONFIG_KEYS

    named = [f"emlops:{key}" for block in code_blocks("yaml") if "secret_environment:" in block
             for model in yaml.safe_load(block)["models"] for key in model["secret_environment"].values()]
    # (the config reference quotes the settings' descriptions, `emlops:<key>` placeholders included)
    reference = README[README.index(START):README.index(END)]
    keys = re.findall(r"pulumi config set --secret (\S+)", README.replace(reference, ""))
    assert keys and named and all(key in (*ALLOWED_CONFIG_KEYS, *named) for key in keys)


def test_every_emlops_command_the_readme_shows_exists():
    from typer.main import get_command

    from emlops.cli import app

    commands = set(get_command(app).commands)
    commands_shown = "\n".join(code_blocks("bash") + code_blocks("text"))
    shown = set(re.findall(r"(?:^|&& |\$ )(?:\.venv/bin/)?emlops ([a-z-]+)", commands_shown, flags=re.M))
    shown |= set(re.findall(r"`emlops ([a-z-]+)[ `]", README))
    assert shown and shown <= commands, shown - commands


def test_readme_review_commands_run_as_shown(project_copy, monkeypatch):
    """Every line of the 'check, diff, graph' block and the policy-pack config line, in order."""
    import shlex
    import shutil

    from typer.testing import CliRunner

    from emlops.cli import app

    [block] = [b for b in code_blocks("bash") if "emlops pr-comment" in b]
    [pack_line] = [line for line in README.splitlines() if line.startswith("emlops check prod --pack-config")]
    monkeypatch.chdir(project_copy)
    runner = CliRunner()
    for line in [pack_line, *block.strip().splitlines()]:
        command = shlex.split(line.split("#")[0])
        assert command[0] == "emlops", line
        if command[1] == "diff":
            shutil.copy("head.json", "base.json")  # "make base.json the same way on main"
        if command[1] == "pr-comment":
            for side in ("base", "head"):
                Path(side).mkdir()
                shutil.copy(f"{side}.json", f"{side}/dev.json")
        result = runner.invoke(app, command[1:])
        assert result.exit_code == 0, (line, result.output)
    assert Path("comment.md").read_text().startswith("<!-- emlops-pr-preview -->")
    assert '"schema": "emlops.check/v1"' in Path("prod.check.json").read_text()
    assert Path("prod-policy.json").is_file()
