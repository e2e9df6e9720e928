"""The stateful-change gate, `emlops diff BASE HEAD --fail-on-stateful`: a change that replaces or deletes a
stateful resource fails (exit 1, one line per resource, and the table) unless the stack file accepts that
exact resource and change with a written reason (`guardrails.accepted_stateful_changes`)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from emlops.cli.review import register
from emlops.offline.plan import Plan, PlanResource
from emlops.offline.preview import preview_stack
from emlops.program.config_guardrails import AcceptedStatefulChange
from emlops.review.diff import diff_plans
from emlops.review.gate import GateError, evaluate
from tests.conftest import edit_stack
from tests.test_renames import renamed_datasets

runner = CliRunner()
BUCKET = "aws:s3/bucket:Bucket"
GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
REASON = "the customers table is rebuilt from the landing zone by the nightly job; accepted by the data owner (ML-77)"
KEY = "emlops:platform.guardrails.accepted_stateful_changes"
ACCEPT_DELETE = ("add {resource: dev-datasets-bucket, change: delete, reason: \"why, and who accepted it\"} to "
                 "guardrails.accepted_stateful_changes in stacks/Pulumi.dev.yaml")
BUCKET_LOST = ("emlops diff: dev: deletes stateful resource dev-datasets-bucket (aws:s3/bucket:Bucket) without an "
               "accepted change (renamed to dev-training-data-bucket? with aliases naming its old name, it or its "
               f"component stays the same resource); to accept it, {ACCEPT_DELETE}")
GROUP_LOST = ("emlops diff: dev: replaces stateful resource dev-features-customers (aws:sagemaker/featureGroup:"
              "FeatureGroup; offlineStoreConfig.s3StorageConfig.s3Uri forces it) without an accepted change; to "
              "accept it, add {resource: dev-features-customers, change: replace, reason: \"why, and who accepted "
              "it\"} to guardrails.accepted_stateful_changes in stacks/Pulumi.dev.yaml")


def app() -> typer.Typer:
    application = typer.Typer()

    @application.callback()
    def main() -> None:
        """emlops"""

    register(application)
    return application


def gate(base: Path, head: Path, *options: str):
    return runner.invoke(app(), ["diff", str(base), str(head), "--fail-on-stateful", *options],
                         env={"COLUMNS": "200"})


def accept(project: Path, *entries: str, stack: str = "dev") -> None:
    text = "    guardrails:\n      accepted_stateful_changes:\n" + "".join(entries)
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    path.write_text(path.read_text().replace("    tags:\n", text + "    tags:\n", 1))


def entry(resource: str, change: str, reason: str = REASON) -> str:
    return f"        - resource: {resource}\n          change: {change}\n          reason: {reason}\n"


@pytest.fixture
def plans(tmp_path, shipped_plan):
    """Write plans into tmp_path: the shipped dev plan as base.json, and head plans by name."""

    def write(name: str, plan: Plan) -> Path:
        path = tmp_path / f"{name}.json"
        plan.write(path)
        return path

    write("base", shipped_plan("dev"))
    return write


@pytest.fixture
def renamed(plans):
    """base.json, and head.json with the datasets bucket's component renamed without aliases."""
    return plans("head", renamed_datasets(aliases=False))


# -- a rename ------------------------------------------------------------------------------------------

def test_a_component_renamed_without_aliases_fails_the_gate(renamed, project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    result = gate(renamed.parent / "base.json", renamed, "--format", "text")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [GROUP_LOST, BUCKET_LOST]
    table = result.stdout.split("\n\nstateful-change gate: ")
    assert table[0].startswith("dev: +11 added, ~7 changed, -11 removed, ±1 replaced\n")
    assert table[1].splitlines() == [
        "FAILED, 2 stateful resources replaced or deleted without an accepted change",
        f"  replace dev-features-customers ({GROUP}): NOT accepted",
        f"  delete dev-datasets-bucket ({BUCKET}): NOT accepted (renamed to dev-training-data-bucket? with aliases "
        "naming its old name, it or its component stays the same resource)",
    ]


def test_the_same_rename_with_aliases_passes_the_gate(monkeypatch, plans, project_copy):
    head = plans("head", renamed_datasets(aliases=True))
    monkeypatch.chdir(project_copy)
    result = gate(head.parent / "base.json", head)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("**dev**: +2 added, ~1 changed, -2 removed, ±0 replaced\n")
    assert result.stdout.endswith("\n\n**Stateful-change gate**: ✅ no stateful resource replaced or deleted\n")


def test_accepting_both_losses_with_reasons_passes_and_shows_the_reasons(renamed, project_copy, monkeypatch):
    accept(project_copy, entry("dev-datasets-bucket", "delete", "dev's datasets are copied to the new bucket "
                               "before the deploy (ML-88, data owner)"),
           entry("dev-features-customers", "replace"))
    monkeypatch.chdir(project_copy)
    result = gate(renamed.parent / "base.json", renamed)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.split("\n\n**Stateful-change gate**: ")[1].splitlines() == [
        "✅ 2 stateful resources replaced or deleted, each accepted",
        f"- ✅ **replace** `dev-features-customers` ({GROUP}): accepted: {REASON}",
        f"- ✅ **delete** `dev-datasets-bucket` ({BUCKET}): accepted: dev's datasets are copied to the new bucket "
        "before the deploy (ML-88, data owner)",
    ]


def test_an_acceptance_is_for_that_resource_and_that_change_only(renamed, project_copy, monkeypatch):
    urn = "urn:pulumi:dev::emlops::emlops:index:MlPlatform$emlops:index:SecureBucket$aws:s3/bucket:Bucket::dev-datasets-bucket"
    accept(project_copy, entry("dev-datasets-bucket", "replace"), entry(f"'{urn}'", "delete"))
    monkeypatch.chdir(project_copy)
    result = gate(renamed.parent / "base.json", renamed, "--format", "text")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        GROUP_LOST,
        f"emlops diff: warning: stacks/Pulumi.dev.yaml: {KEY}[0]: the replace of 'dev-datasets-bucket' is accepted, "
        "but this change does not replace it; remove the acceptance once the change it was for is deployed",
    ]
    assert f"  delete dev-datasets-bucket ({BUCKET}): accepted: {REASON}" in result.stdout


def test_a_delete_accepted_as_a_replace_still_fails(renamed, project_copy, monkeypatch):
    accept(project_copy, entry("dev-datasets-bucket", "replace"))
    monkeypatch.chdir(project_copy)
    result = gate(renamed.parent / "base.json", renamed)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1] == (
        "emlops diff: dev: deletes stateful resource dev-datasets-bucket (aws:s3/bucket:Bucket) without an accepted "
        f"change (guardrails.accepted_stateful_changes[0] accepts a replace, not a delete); to accept it, {ACCEPT_DELETE}")
    assert result.stderr.splitlines()[2:] == []  # the mismatched acceptance is named in that line, not warned about


# -- an edit of the stack file ---------------------------------------------------------------------------

def test_a_stack_edit_that_replaces_a_feature_group_fails_until_accepted(project_copy, plans, monkeypatch):
    old, new = "{name: monthly_charges, type: Fractional}", "{name: monthly_charges_eur, type: Fractional}"
    edit_stack(project_copy, "dev", old, new)
    head = plans("head", preview_stack("dev", start=project_copy).plan)
    monkeypatch.chdir(project_copy)
    result = gate(head.parent / "base.json", head)
    assert result.exit_code == 1
    assert result.stderr == (
        "emlops diff: dev: replaces stateful resource dev-features-customers (aws:sagemaker/featureGroup:FeatureGroup; "
        "featureDefinitions[3].featureName forces it) without an accepted change; to accept it, add {resource: "
        "dev-features-customers, change: replace, reason: \"why, and who accepted it\"} to "
        "guardrails.accepted_stateful_changes in stacks/Pulumi.dev.yaml\n")
    assert "**⚠ Stateful resources deleted or replaced: `dev-features-customers`**" in result.stdout

    accept(project_copy, entry("dev-features-customers", "replace"))
    result = gate(head.parent / "base.json", head)
    assert result.exit_code == 0, result.output
    assert f"- ✅ **replace** `dev-features-customers` ({GROUP}): accepted: {REASON}\n" in result.stdout


def test_without_the_flag_diff_only_shows_the_change(renamed, project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app(), ["diff", str(renamed.parent / "base.json"), str(renamed)])
    assert result.exit_code == 0 and result.stderr == ""
    assert "Stateful-change gate" not in result.stdout


# -- bad input: one line, exit 2 -------------------------------------------------------------------------

def test_an_acceptance_of_a_resource_the_base_does_not_hold_is_an_error(renamed, project_copy, monkeypatch):
    accept(project_copy, entry("dev-datasets-bucket", "delete"), entry("dev-scratch-bucket", "delete"))
    monkeypatch.chdir(project_copy)
    result = gate(renamed.parent / "base.json", renamed)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"stacks/Pulumi.dev.yaml: {KEY}[1].resource: 'dev-scratch-bucket' is not a resource of the plan before the "
        "change (stack 'dev'); name one it holds, by its logical name or URN (an acceptance whose change is deployed "
        "has done its job: remove it)\n")


def test_an_acceptance_of_a_resource_that_is_not_stateful_is_a_warning(renamed, project_copy, monkeypatch):
    accept(project_copy, entry("dev-datasets-bucket", "delete"), entry("dev-features-customers", "replace"),
           entry("dev-datasets-policy", "delete"))
    monkeypatch.chdir(project_copy)
    result = gate(renamed.parent / "base.json", renamed)
    assert result.exit_code == 0
    assert result.stderr == (
        f"emlops diff: warning: stacks/Pulumi.dev.yaml: {KEY}[2]: 'dev-datasets-policy' "
        "(aws:s3/bucketPolicy:BucketPolicy) is not stateful: the gate never needs an acceptance for it; remove it\n")
    assert result.stdout.endswith(
        f"> warning: stacks/Pulumi.dev.yaml: {KEY}[2]: 'dev-datasets-policy' (aws:s3/bucketPolicy:BucketPolicy) is "
        "not stateful: the gate never needs an acceptance for it; remove it\n")


@pytest.mark.parametrize("text, message", [
    (entry("dev-datasets-bucket", "delete", "renamed"),
     f"{KEY}[0].reason: an accepted stateful change needs a written reason of at least a sentence (5 words or more): "
     "why losing what the resource holds is acceptable and who accepted it"),
    (entry("dev-datasets-bucket", "destroy"), f"{KEY}[0].change: must be 'replace' or 'delete', got 'destroy'"),
    ("        - resource: dev-datasets-bucket\n          change: delete\n", f"{KEY}[0].reason: field required"),
    (entry("dev-datasets-bucket", "delete") + entry("dev-datasets-bucket", "delete"),
     f"{KEY}[1].resource: the delete of 'dev-datasets-bucket' is already accepted by accepted_stateful_changes[0]; "
     "keep one"),
    (entry("dev-datasets-bucket", "delete", '"the data moves\\u001b[2J to the new bucket, ML-88"'),
     f"{KEY}[0].reason: must be text without control characters, got 'the data moves\\x1b[2J to the new bucket, "
     "ML-88'"),
    (entry('"dev-datasets-bucket\\nurn:x"', "delete"),
     f"{KEY}[0].resource: must be one resource's logical name (as `emlops preview` shows it) or its URN, on one "
     "line, got 'dev-datasets-bucket\\nurn:x'"),
])
def test_a_bad_acceptance_is_one_line_naming_the_key(renamed, project_copy, monkeypatch, text, message):
    accept(project_copy, text)
    monkeypatch.chdir(project_copy)
    result = gate(renamed.parent / "base.json", renamed)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"stacks/Pulumi.dev.yaml: {message}\n"


def test_plans_of_two_stacks_and_a_missing_stack_file_are_errors(renamed, project_copy, monkeypatch, shipped_plan,
                                                                 tmp_path):
    monkeypatch.chdir(project_copy)
    staging = tmp_path / "staging.json"
    shipped_plan("staging").write(staging)
    result = gate(renamed.parent / "base.json", staging)
    assert (result.exit_code, result.stderr) == (2, "the base plan is of stack 'dev' and the head plan of 'staging'; "
                                                    "the gate compares two plans of one stack\n")
    (project_copy / "stacks" / "Pulumi.dev.yaml").unlink()
    result = gate(renamed.parent / "base.json", renamed)
    assert (result.exit_code, result.stderr) == (2, "stacks/Pulumi.dev.yaml: no such stack file; stacks in this "
                                                    "project: prod, shared, staging\n")


def test_a_name_two_base_resources_share_needs_the_urn():
    def resource(type_: str) -> PlanResource:
        return PlanResource(f"urn:pulumi:t::emlops::{type_}::data", type_, "data", True, None, [], None, {})

    base = Plan("emlops", "t", [resource(BUCKET), resource("aws:kms/key:Key")])
    head = copy.deepcopy(base)
    head.resources = []
    accepted = [AcceptedStatefulChange(resource="data", change="delete", reason=REASON)]
    with pytest.raises(GateError) as caught:
        evaluate(diff_plans(base, head), base, accepted, "stacks/Pulumi.t.yaml")
    assert str(caught.value) == (f"stacks/Pulumi.t.yaml: {KEY}[0].resource: 'data' names 2 resources of the plan "
                                 f"before the change ({BUCKET}, aws:kms/key:Key); give the URN of the one you accept")
    by_urn = [AcceptedStatefulChange(resource=base.resources[0].urn, change="delete", reason=REASON)]
    report = evaluate(diff_plans(base, head), base, by_urn, "stacks/Pulumi.t.yaml")
    assert [(v.old.type, v.accepted) for v in report.verdicts] == [(BUCKET, 0), ("aws:kms/key:Key", None)]
    assert report.lines() == [
        "t: deletes stateful resource data (aws:kms/key:Key) without an accepted change; to accept it, add {resource: "
        "data, change: delete, reason: \"why, and who accepted it\"} to guardrails.accepted_stateful_changes in "
        "stacks/Pulumi.t.yaml"]


# -- what counts as stateful: the catalogue's flag, every type of it the platform deploys -----------------

def test_deleting_any_stateful_resource_of_the_shipped_stacks_fails_the_gate(shipped_plan):
    from emlops.catalog.resources import STATEFUL_TYPES

    covered: set[str] = set()
    for stack in ("prod", "shared", "staging"):
        base = shipped_plan(stack)
        stateful = [r for r in base.resources if r.custom and r.type in STATEFUL_TYPES]
        head = copy.deepcopy(base)
        head.resources = [r for r in head.resources if not (r.custom and r.type in STATEFUL_TYPES)]
        report = evaluate(diff_plans(base, head), base, [], f"stacks/Pulumi.{stack}.yaml")
        assert [(v.old.name, v.accepted) for v in report.verdicts] == [(r.name, None) for r in stateful]
        covered |= {r.type for r in stateful}
    assert {"aws:kms/key:Key", BUCKET, GROUP, "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
            "aws:ecr/repository:Repository", "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",
            "aws:cloudwatch/logGroup:LogGroup", "aws:eks/cluster:Cluster"} <= covered
