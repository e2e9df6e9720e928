"""The `emlops` command: preview output, plan files, exit codes and one-line errors."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from emlops.cli.docs import config_reference
from emlops.offline.plan import Plan
from emlops.offline.preview import PreviewError, preview_stack
from emlops.program.platform import PlatformConfig, json_schema
from emlops.program.stackfile import find_project
from tests.conftest import ROOT, extended_project

# every key of emlops:platform, as an unknown key's message lists them (a new section joins the list)
TOP_LEVEL_KEYS = ", ".join(PlatformConfig.model_fields)

runner = CliRunner()


def break_dev_stack(project: Path, old: str, new: str) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed command in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "emlops", *args], cwd=project, capture_output=True,
                          text=True, timeout=120)


def test_preview_prints_the_tree_counts_and_outputs(monkeypatch, shipped_plan):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["preview", "prod"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"emlops / prod: {len(shipped_plan('prod').resources)} resources" in out
    assert "prod-artifacts  emlops:index:SecureBucket" in out
    assert "prod-artifacts-bucket  aws:s3/bucket:Bucket → prod-artifacts-bucket-" in out
    assert "(protect, retain)" in out
    assert "Resources by type" in out and "aws:s3/bucketPolicy:BucketPolicy" in out
    assert "Outputs" in out and "modelBuilderRoleArn" in out and "arn:aws:iam::333333333333:role/" in out


def test_preview_shows_an_unknown_output_as_the_plan_spells_it(monkeypatch, shipped_plan):
    """dev serves MLflow's champion; offline its artifact is unknown, and the printed outputs say so exactly
    as plan.json does (not as rich markup)."""
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["preview", "dev"], env={"COLUMNS": "2000"})
    assert result.exit_code == 0, result.output
    unknown = shipped_plan("dev").outputs["endpoints"]["churn"]["modelArtifactUri"]
    assert unknown == "[unknown: models:/churn@champion]"
    assert f'"modelArtifactUri": "{unknown}"' in result.stdout


def test_preview_json_writes_the_same_plan_as_the_engine(tmp_path, monkeypatch, shipped_plan):
    monkeypatch.chdir(ROOT)
    target = tmp_path / "p.json"
    result = runner.invoke(app, ["preview", "prod", "--json", str(target), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert target.read_text() == shipped_plan("prod").dumps()
    assert Plan.load(target).stack == "prod"


@pytest.mark.parametrize("old, new, expected", [
    ("    region: eu-west-1", "    regoin: eu-west-1",
     "stacks/Pulumi.dev.yaml: emlops:platform.regoin: unknown key; did you mean 'region'? allowed keys: "
     + TOP_LEVEL_KEYS),
    ("      owner: ml-platform@example.com\n", "",
     "stacks/Pulumi.dev.yaml: emlops:platform.tags.owner: field required"),
    ('account_id: "111111111111"', 'account_id: "11111111111x"',
     "stacks/Pulumi.dev.yaml: emlops:platform.account_id: must be a 12-digit AWS account id, "
     "e.g. '123456789012', got '11111111111x'"),
    ("deletion_window_days: 7", "deletion_window_days: seven",
     "stacks/Pulumi.dev.yaml: emlops:platform.kms.deletion_window_days: must be a whole number, got 'seven'"),
])
def test_invalid_stack_exits_2_with_one_line_and_no_plan(project_copy, old, new, expected):
    break_dev_stack(project_copy, old, new)
    result = run_cli(project_copy, "preview", "dev", "--json", "plan.json")
    assert result.returncode == 2
    assert result.stderr == expected + "\n"
    assert result.stdout == ""
    assert not (project_copy / "plan.json").exists()


def test_unknown_stack_lists_the_stacks(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["preview", "qa"])
    assert result.exit_code == 2
    assert result.stderr == "stacks/Pulumi.qa.yaml: no such stack file; stacks in this project: dev, prod, shared, staging\n"


def test_config_schema_prints_the_json_schema():
    result = runner.invoke(app, ["config-schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema()


def test_config_schema_markdown_is_the_readme_reference():
    result = runner.invoke(app, ["config-schema", "--format", "markdown"])
    assert result.exit_code == 0
    assert result.stdout == config_reference()


def test_the_reference_lists_the_keys_of_each_entry_of_a_list():
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in config_reference().splitlines()}
    assert rows["`batch_transforms`"].startswith("| `batch_transforms` | array | no |")
    assert rows["`batch_transforms[].instance_type`"] == (
        "| `batch_transforms[].instance_type` | string | no | `\"ml.m5.xlarge\"` | Instance type of the transform job "
        "(botocore's `TransformInstanceType`). Default: ml.m5.xlarge. |")
    assert rows["`batch_transforms[].monitoring.baseline.statistics_s3_uri`"].split(" | ")[2] == "yes"
    # lists within entries too (a model's variants), and what a list of strings is stays one row
    assert "`models[].variants[].instance_type`" in rows and "`batch_transforms[].monitoring.drift_features`" in rows
    assert not [key for key in rows if key.startswith("`batch_transforms[].monitoring.drift_features[]")]


def test_config_schema_rejects_unknown_formats():
    result = runner.invoke(app, ["config-schema", "--format", "yaml"])
    assert result.exit_code == 2
    assert result.stderr == "--format: 'yaml' is not supported; allowed: json, markdown\n"


def test_a_gap_in_the_mocks_is_reported_in_one_line_with_exit_1(monkeypatch, mocker):
    from emlops.offline.mocks import MockGap

    monkeypatch.chdir(ROOT)
    mocker.patch("emlops.offline.preview.run_program", side_effect=MockGap("the offline preview has no answer for X"))
    result = runner.invoke(app, ["preview", "dev"])
    assert result.exit_code == 1
    assert result.stderr == "emlops preview dev: the offline preview has no answer for X\n"


def test_a_component_argument_error_names_the_stack_file(monkeypatch, mocker):
    monkeypatch.chdir(ROOT)
    mocker.patch("emlops.offline.preview.run_program",
                 side_effect=ValueError("min_instances (3) is larger than max_instances (2)"))
    result = runner.invoke(app, ["preview", "dev"])
    assert result.exit_code == 2
    assert result.stderr == "stacks/Pulumi.dev.yaml: min_instances (3) is larger than max_instances (2)\n"


def test_a_program_that_fails_while_registering_leaves_only_its_one_line_error(tmp_path, caplog):
    """The program's own stack reference to a stack the preview has not previewed, met while the platform's
    registrations are under way: the preview ends with its one-line error, and none of the run's tasks is left
    pending for asyncio to write to stderr ("Task was destroyed but it is pending!") when it is collected."""
    extended_project(tmp_path, 'pulumi.export("other", pulumi.StackReference("organization/emlops/elsewhere")'
                               '.require_output("bucket"))')

    with pytest.raises(PreviewError) as failed:
        preview_stack("dev", project=find_project(tmp_path))
    gc.collect()
    assert (failed.value.exit_code, str(failed.value)) == (1, (
        "emlops preview dev: the program references stack 'organization/emlops/elsewhere', whose outputs the "
        "offline preview does not have (previewed first: none); name it in registry.shared_stack"))
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []


def test_an_internal_error_is_one_line_unless_debugging(monkeypatch, mocker):
    monkeypatch.chdir(ROOT)
    mocker.patch("emlops.offline.preview.run_program", side_effect=KeyError("boom"))
    result = runner.invoke(app, ["preview", "dev"])
    assert result.exit_code == 1
    assert result.stderr == ("emlops: internal error while previewing dev: KeyError: 'boom' "
                             "(rerun with --debug for the traceback)\n")
    debug = runner.invoke(app, ["preview", "dev", "--debug"])
    assert "Traceback" in debug.stderr


# -- every stack at once, and progress ---------------------------------------------------------------------

@pytest.mark.processes
def test_preview_all_writes_every_stacks_plan_each_from_its_own_process(project_copy, shipped_plan, tmp_path):
    plans = tmp_path / "plans"
    result = run_cli(project_copy, "preview", "--all", "--json-dir", str(plans))
    assert (result.returncode, result.stderr) == (0, "")
    counts = {stack: len(shipped_plan(stack).resources) for stack in ("dev", "prod", "shared", "staging")}
    assert result.stdout.splitlines() == [f"{stack}: {count} resources -> {plans / f'{stack}.json'}"
                                          for stack, count in counts.items()]
    for stack in counts:
        assert (plans / f"{stack}.json").read_text() == shipped_plan(stack).dumps()


def test_preview_all_reports_a_broken_stack_and_still_previews_the_others(project_copy, tmp_path):
    # the other: shared (previewing every shipped stack is the test above's)
    for stack in ("dev", "prod"):
        (project_copy / "stacks" / f"Pulumi.{stack}.yaml").unlink()
    path = project_copy / "stacks" / "Pulumi.staging.yaml"
    path.write_text(path.read_text().replace("    region: eu-west-1\n", "    regoin: eu-west-1\n"))
    plans = tmp_path / "plans"
    result = run_cli(project_copy, "preview", "--all", "--json-dir", str(plans), "-q")
    assert (result.returncode, result.stdout) == (2, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("stacks/Pulumi.staging.yaml: emlops:platform.regoin: unknown key; did you mean 'region'?")
    assert sorted(p.name for p in plans.iterdir()) == ["shared.json"]


def test_preview_all_starts_the_biggest_stack_files_first_and_prints_in_the_stacks_order(monkeypatch, mocker):
    """The longest previews start first, so the last to start are short and the cores finish together."""
    from emlops.cli import preview_all

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(preview_all.os, "cpu_count", lambda: 1)  # one at a time: they start in the order given
    started: list[str] = []

    def preview(command, **kwargs):
        started.append(command[command.index("preview") + 1])
        return subprocess.CompletedProcess(command, 0, "", "")

    mocker.patch.object(preview_all.subprocess, "run", side_effect=preview)
    echoed = mocker.patch.object(preview_all.typer, "echo")
    assert preview_all.preview_all(None, None, quiet=False) == 0
    sizes = {stack: (ROOT / "stacks" / f"Pulumi.{stack}.yaml").stat().st_size for stack in started}
    assert started == sorted(sizes, key=lambda stack: -sizes[stack]) and started[0] == "prod"
    assert [call.args[0] for call in echoed.call_args_list] == [
        f"{stack}: previewed" for stack in ("dev", "prod", "shared", "staging")]


@pytest.mark.parametrize(("args", "message"), [
    (["preview"], "give a STACK (stacks/Pulumi.<stack>.yaml) or --all"),
    (["preview", "dev", "--all"], "--all previews every stack: give no STACK, and --json-dir DIR instead of --json"),
    (["preview", "--all", "--json", "x.json"],
     "--all previews every stack: give no STACK, and --json-dir DIR instead of --json"),
    (["preview", "dev", "--json-dir", "plans"], "--json-dir goes with --all; for one stack, use --json PATH"),
])
def test_preview_arguments_that_do_not_go_together_are_one_line(monkeypatch, args, message):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")


def test_progress_is_reported_per_stack_and_only_to_a_terminal(monkeypatch, shipped_plan):
    from emlops.cli.preview_all import terminal_progress
    from emlops.offline.preview import preview_stack

    seen: list[tuple[str, int]] = []
    plan = preview_stack("prod", project=find_project(ROOT), progress=lambda stack, n: seen.append((stack, n))).plan
    # prod reads the shared stack's outputs: shared is previewed first, and both say how far they are
    shared = len(shipped_plan("shared").resources)
    assert seen == [("shared", n) for n in range(1, shared + 1)] + [("prod", n) for n in range(1, len(plan.resources) + 1)]
    assert terminal_progress(quiet=True) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert terminal_progress(quiet=False) is None


def test_the_command_imports_no_pulumi_or_component_until_a_command_needs_it():
    """`emlops diff`, `graph` and `pr-comment` read plan files: starting the command (every subcommand registered)
    costs no Pulumi, pydantic (the components' arguments) or boto3 import, ~0.3 s of each review command's start."""
    code = "import sys, emlops.cli; print(sorted(m for m in ('pulumi', 'pydantic', 'boto3') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")
