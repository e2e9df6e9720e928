"""Lineage: what a registered version records about its training data (the retraining definition's metadata),
`emlops lineage` reading it against moto (dev's own registry, account 111111111111), and the plan's offline answer."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from emlops.cli import lineage
from emlops.review.lineage import configured_lineage
from tests.test_operations import cli, clock, lines, moto_in, tty  # noqa: F401

ACCOUNT, REGION = "111111111111", "eu-west-1"  # stacks/Pulumi.dev.yaml
GROUP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/dev-churn-retraining/execution/abc123"


@pytest.fixture
def aws(monkeypatch, project_copy: Path):
    """moto in the dev stack's account, fake credentials, run from a scratch project."""
    yield from moto_in(monkeypatch, project_copy, ACCOUNT)


def register(status: str = "Approved", **metadata: str) -> str:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if not groups:
        sagemaker.create_model_package_group(ModelPackageGroupName="churn")
    return sagemaker.create_model_package(
        ModelPackageGroupName="churn", ModelApprovalStatus=status, CustomerMetadataProperties=metadata or {"x": "y"},
        InferenceSpecification={"Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn:1"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )["ModelPackageArn"]


FEATURES = {"emlops:pipeline-execution": EXECUTION, "emlops:trained-at": "2026-12-01T03:00:00.000Z",
            "emlops:feature-groups": "dev-features-churn-labels,dev-features-customers", "emlops:label": "churned"}


# -- what the definition records ----------------------------------------------------------------------------

def test_a_registered_version_records_its_execution_and_training_set(shipped_plan):
    def recorded(pipeline: str) -> dict:
        [resource] = [r for r in shipped_plan("prod").by_type("aws:sagemaker/pipeline:Pipeline") if r.name == pipeline]
        steps = json.loads(resource.inputs["pipelineDefinition"])["Steps"]
        [register_step] = [s for s in steps[-1]["Arguments"]["IfSteps"] if s["Name"] == "Register"]
        return register_step["Arguments"]["CustomerMetadataProperties"]

    started = {"Std:Join": {"On": "", "Values": [{"Get": "Execution.StartDateTime"}]}}
    assert recorded("prod-churn-retraining-pipeline") == {
        "emlops:pipeline-execution": {"Get": "Execution.PipelineExecutionArn"}, "emlops:trained-at": started,
        "emlops:feature-groups": "prod-features-churn-labels,prod-features-customers", "emlops:label": "churned"}
    datasets = shipped_plan("prod").outputs["datasetsBucket"]
    assert recorded("prod-fraud-retraining-pipeline") == {
        "emlops:pipeline-execution": {"Get": "Execution.PipelineExecutionArn"}, "emlops:trained-at": started,
        "emlops:dataset": f"s3://{datasets}/datasets/fraud/"}


# -- with credentials -----------------------------------------------------------------------------------------

def test_lineage_of_the_approved_version_trained_from_the_feature_store(aws, cli):
    register("Approved", **{**FEATURES, "emlops:trained-at": "2026-11-01T03:00:00.000Z"})
    newest = register("Approved", **FEATURES)
    register("PendingManualApproval", **FEATURES)
    result = cli("lineage", "dev", "churn")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        f"churn version 2 (Approved): {newest}",
        f"  trained by: {EXECUTION} (started 2026-12-01T03:00:00.000Z)",
        "  training set: feature groups dev-features-churn-labels, dev-features-customers (label churned), their "
        "offline stores as of 2026-12-01T03:00:00.000Z"]
    first = cli("lineage", "dev", "churn", "--version", "1")
    assert lines(first.stdout)[1] == f"  trained by: {EXECUTION} (started 2026-11-01T03:00:00.000Z)"


def test_lineage_of_a_version_trained_from_a_prefix_lists_the_object_versions_it_read(aws, cli):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="dev-datasets", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket="dev-datasets", VersioningConfiguration={"Status": "Enabled"})
    versions = [s3.put_object(Bucket="dev-datasets", Key=f"datasets/churn/{name}", Body=b"x")["VersionId"]
                for name in ("a.csv", "b.csv")]
    register("Approved", **{"emlops:pipeline-execution": EXECUTION, "emlops:trained-at": "2999-01-01T00:00:00Z",
                            "emlops:dataset": "s3://dev-datasets/datasets/churn/"})
    result = cli("lineage", "dev", "churn")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout)[2:] == [
        "  training set: s3://dev-datasets/datasets/churn/, the object versions current at 2999-01-01T00:00:00Z:",
        f"    s3://dev-datasets/datasets/churn/a.csv version {versions[0]}",
        f"    s3://dev-datasets/datasets/churn/b.csv version {versions[1]}"]


def test_the_versions_current_at_the_start_are_the_ones_listed():
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    at = datetime(2026, 12, 1, 3, tzinfo=timezone.utc)

    def entry(key: str, version: str, hour: int, marker: bool = False) -> dict:
        common = {"Key": key, "VersionId": version, "LastModified": datetime(2026, 12, 1, hour, tzinfo=timezone.utc)}
        return common if marker else {**common, "Size": 1, "ETag": '"e"', "IsLatest": False}

    with Stubber(s3) as stub:
        # a.csv: a1 replaced a0 before the start, deleted after; b.csv: written after; c.csv: deleted before
        stub.add_response("list_object_versions", {
            "Versions": [entry("d/a.csv", "a1", 1), entry("d/a.csv", "a0", 0), entry("d/b.csv", "b2", 5),
                         entry("d/c.csv", "c0", 0)],
            "DeleteMarkers": [entry("d/c.csv", "c-gone", 2, marker=True), entry("d/a.csv", "a-gone", 4, marker=True)]},
            {"Bucket": "data", "Prefix": "d/"})
        assert lineage._object_versions(s3, "s3://data/d/", at) == ["    s3://data/d/a.csv version a1"]


def test_lineage_errors_are_one_line(aws, cli, monkeypatch):
    result = cli("lineage", "dev", "churn")
    assert (result.exit_code, result.stderr) == (1, f"emlops lineage: model package group 'churn' has no Approved "
                                                    f"version in {ACCOUNT}/{REGION}; give --version N\n")
    register("PendingManualApproval")
    result = cli("lineage", "dev", "churn", "--version", "1")
    assert (result.exit_code, lines(result.stdout)) == (0, [
        f"churn version 1 (PendingManualApproval): {GROUP_ARN.replace('-group', '')}/1",
        "  no lineage recorded: this version was not registered by the platform's retraining"])
    result = cli("lineage", "dev", "churn", "--version", "7")
    assert (result.exit_code, result.stderr) == (1, f"emlops lineage: model package version 7 of 'churn' does not "
                                                    f"exist in {ACCOUNT}/{REGION}\n")
    assert cli("lineage", "dev", "chrun").stderr == ("emlops lineage: stack 'dev' has no model 'chrun'; did you mean "
                                                     "'churn'? models: churn, fraud, assistant\n")
    assert cli("lineage", "dev", "churn", "--offline", "--version", "1").stderr == (
        "emlops lineage: --version needs the registry (credentials); drop --offline\n")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "333333333333")
    assert cli("lineage", "dev", "churn").stderr == (
        "emlops lineage: the AWS credentials are for account 333333333333 but stack 'dev' is in 111111111111; use "
        "credentials for 111111111111\n")


# -- offline, from the plan -----------------------------------------------------------------------------------

def test_the_plan_answers_what_prod_churn_is_trained_on(shipped_plan):
    plan = shipped_plan("prod")
    datasets = plan.outputs["datasetsBucket"]
    [workgroup] = plan.by_type("aws:athena/workgroup:Workgroup")
    assert configured_lineage(plan, "prod", "churn") == [
        "churn in prod (as configured):",
        "  retrained by: SageMaker pipeline prod-churn-retraining",
        "  training set: feature groups prod-features-churn-labels, prod-features-customers (label churned), point in "
        f"time, queried from prod_features_features through Athena workgroup {workgroup.inputs['name']}",
        "  prod-features-churn-labels: fed by no data pipeline of this stack",
        f"  prod-features-customers: fed by data pipeline prod-customers-data from s3://{datasets}/landing/customers/, "
        "validated against s3://acme-ml-prod-monitoring/baselines/customers/constraints.json, quarantining batches "
        "that fail",
        "  each registered version records its pipeline execution and start: emlops lineage prod churn [--version N]"]
    assert configured_lineage(plan, "prod", "fraud")[2] == (
        f"  training set: s3://{datasets}/datasets/fraud/ (each version records when it read it; the versioned bucket "
        "keeps the objects it read)")


def test_offline_lineage_from_the_command_line(aws, cli):
    result = cli("lineage", "dev", "churn", "--offline")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        "churn in dev: no retraining pipeline (dev-churn-retraining); its versions are registered from outside the "
        "platform, and only their own metadata says what they were trained on"]
