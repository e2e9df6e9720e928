"""MlPlatform: argument checks, what one environment creates, protection, tags and the job role."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import pulumi
import pytest

from emlops.components.platform import MlPlatform, MlPlatformArgs
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, run_components

STACK = "pulumi:pulumi:Stack"
PLATFORM = "emlops:index:MlPlatform"
KMS_COMPONENT = "emlops:index:KmsKey"
BUCKET_COMPONENT = "emlops:index:SecureBucket"
ROLE_COMPONENT = "emlops:index:ServiceRole"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
TEAM_TAGS = {"owner": "ml-team", "cost-center": "cc-42"}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"
VIA_S3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


@functools.lru_cache(maxsize=None)
def _platform_plan(production: bool, boundary: str | None, retention: tuple[int, int]) -> Plan:
    noncurrent_days, access_log_days = retention

    def program() -> None:
        platform = MlPlatform("ml", MlPlatformArgs(
            environment="dev", tags=TEAM_TAGS, production=production, permissions_boundary_arn=boundary,
            noncurrent_version_retention_days=noncurrent_days, access_log_retention_days=access_log_days,
        ))
        pulumi.export("dataKeyArn", platform.data_key.arn)
        pulumi.export("roleArn", platform.model_builder_role.arn)
    return run_components(program)


def platform_plan(production: bool = False, boundary: str | None = None,
                  noncurrent_days: int = 90, access_log_days: int = 365) -> Plan:
    """The plan of MlPlatform `ml` for environment `dev` (memoised: tests only read it)."""
    return _platform_plan(production, boundary, (noncurrent_days, access_log_days))


def bucket_name(plan: Plan, purpose: str) -> str:
    return plan.get(f"ml-{purpose}-bucket").inputs["bucket"]


def statements(plan: Plan, name: str) -> list[dict[str, Any]]:
    document = json.loads(plan.get(name).inputs["policy"])
    assert document["Version"] == "2012-10-17"
    return document["Statement"]


# -- arguments --------------------------------------------------------------------------------------

@pytest.mark.parametrize("environment", ["Dev", "d", "a" * 17, "dev-", "-dev", "1dev", "dev_1", ""])
def test_platform_args_reject_bad_environment_names(environment):
    assert error_of(lambda: MlPlatformArgs(environment=environment)) == (
        f"environment {environment!r} must be 2-16 lowercase letters, digits or '-'")


@pytest.mark.parametrize("changes, message", [
    ({"kms_deletion_window_days": 6}, "kms_deletion_window_days (6) must be 7-30"),
    ({"kms_deletion_window_days": 31}, "kms_deletion_window_days (31) must be 7-30"),
    ({"noncurrent_version_retention_days": 0}, "noncurrent_version_retention_days (0) must be at least 1"),
    ({"access_log_retention_days": 0}, "access_log_retention_days (0) must be at least 1"),
])
def test_platform_args_reject_out_of_range_numbers(changes, message):
    assert error_of(lambda: MlPlatformArgs(environment="dev", **changes)) == message


def test_platform_args_accept_the_edges():
    args = MlPlatformArgs(environment="p" + "1" * 15, kms_deletion_window_days=7,
                          noncurrent_version_retention_days=1, access_log_retention_days=1)
    assert (args.environment, args.kms_deletion_window_days) == ("p111111111111111", 7)


def test_platform_refuses_a_full_access_boundary_for_its_role():
    args = MlPlatformArgs(environment="dev", permissions_boundary_arn="arn:aws:iam::aws:policy/AmazonS3FullAccess")
    assert error_of(lambda: run_components(lambda: MlPlatform("ml", args))) == (
        "a *FullAccess managed policy cannot serve as a permissions boundary")


# -- what it creates --------------------------------------------------------------------------------

def test_platform_creates_one_key_three_buckets_and_one_role():
    assert platform_plan().type_counts() == {
        STACK: 1, PLATFORM: 1,
        KMS_COMPONENT: 1, KEY: 1, ALIAS: 1,
        BUCKET_COMPONENT: 3, BUCKET: 3,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 3,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 3,
        "aws:s3/bucketVersioning:BucketVersioning": 3,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 3,
        "aws:s3/bucketPolicy:BucketPolicy": 3,
        LIFECYCLE: 3, LOGGING: 2,
        ROLE_COMPONENT: 1, ROLE: 1, ROLE_POLICY: 3,
    }


def test_platform_direct_children_are_its_components_named_after_it():
    plan = platform_plan()
    platform = plan.get("ml", PLATFORM)
    assert platform.parent == plan.get("emlops-test", STACK).urn
    assert [(r.type, r.name) for r in plan.children(platform.urn)] == [
        (KMS_COMPONENT, "ml-data"),
        (BUCKET_COMPONENT, "ml-access-logs"),
        (BUCKET_COMPONENT, "ml-datasets"),
        (BUCKET_COMPONENT, "ml-artifacts"),
        (ROLE_COMPONENT, "ml-model-builder"),
    ]


def protected(plan: Plan) -> dict[str, set[tuple[str, str]]]:
    return {
        "protect": {(r.type, r.name) for r in plan.resources if r.protect},
        "retainOnDelete": {(r.type, r.name) for r in plan.resources if r.retain_on_delete},
    }


def test_production_protects_and_retains_exactly_the_stateful_resources():
    stateful = {(KEY, "ml-data-key"), (BUCKET, "ml-access-logs-bucket"),
                (BUCKET, "ml-datasets-bucket"), (BUCKET, "ml-artifacts-bucket")}
    assert protected(platform_plan(production=True)) == {"protect": stateful, "retainOnDelete": stateful}


def test_non_production_protects_nothing():
    assert protected(platform_plan(production=False)) == {"protect": set(), "retainOnDelete": set()}


@pytest.mark.parametrize("production", [False, True])
def test_every_taggable_resource_carries_team_environment_and_managed_by_tags(production):
    plan = platform_plan(production=production)
    tagged = {r.name: r.inputs["tags"] for r in plan.resources if "tags" in r.inputs}
    expected = {**TEAM_TAGS, "environment": "dev", "managed-by": "emlops"}
    assert tagged == {name: expected for name in (
        "ml-data-key", "ml-access-logs-bucket", "ml-datasets-bucket", "ml-artifacts-bucket",
        "ml-model-builder-role")}


def test_permissions_boundary_reaches_the_role():
    inputs = platform_plan(boundary=BOUNDARY).get("ml-model-builder-role").inputs
    assert inputs["permissionsBoundary"] == BOUNDARY


def test_role_has_no_boundary_unless_one_is_given():
    assert "permissionsBoundary" not in platform_plan().get("ml-model-builder-role").inputs


def test_model_builder_role_is_assumed_by_sagemaker_for_this_account():
    plan = platform_plan()
    inputs = plan.get("ml-model-builder-role").inputs
    assert inputs["description"] == "SageMaker processing and training jobs of dev: read datasets, write model artifacts"
    assert json.loads(inputs["assumeRolePolicy"])["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]}, "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }]
    assert plan.outputs["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{inputs['name']}"


# -- the model builder's permissions ----------------------------------------------------------------

def allow(actions: list[str], resource: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": actions, "Resource": [resource]}
    return {**statement, "Condition": condition} if condition else statement


def test_model_builder_has_exactly_three_inline_policies():
    plan = platform_plan()
    role = plan.get("ml-model-builder-role")
    policies = plan.by_type(ROLE_POLICY)
    assert [p.name for p in policies] == [
        "ml-model-builder-read-ml-datasets", "ml-model-builder-read-write-ml-artifacts-models",
        "ml-model-builder-logs"]
    assert {p.inputs["role"] for p in policies} == {role.inputs["name"]}
    assert {p.parent for p in policies} == {plan.get("ml-model-builder", ROLE_COMPONENT).urn}


def test_model_builder_reads_all_datasets_and_decrypts_them_through_s3():
    plan = platform_plan()
    arn = f"arn:aws:s3:::{bucket_name(plan, 'datasets')}"
    assert statements(plan, "ml-model-builder-read-ml-datasets") == [
        allow(["s3:ListBucket"], arn),
        allow(["s3:GetObject", "s3:GetObjectVersion"], f"{arn}/*"),
        allow(["kms:DescribeKey", "kms:Decrypt"], plan.outputs["dataKeyArn"], VIA_S3),
    ]


def test_model_builder_reads_and_writes_only_models_in_the_artifacts_bucket():
    plan = platform_plan()
    arn = f"arn:aws:s3:::{bucket_name(plan, 'artifacts')}"
    assert statements(plan, "ml-model-builder-read-write-ml-artifacts-models") == [
        allow(["s3:ListBucket"], arn, {"StringLike": {"s3:prefix": ["models/*"]}}),
        allow(["s3:GetObject", "s3:GetObjectVersion"], f"{arn}/models/*"),
        allow(["s3:AbortMultipartUpload", "s3:PutObject"], f"{arn}/models/*"),
        allow(["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
               "kms:ReEncryptTo"], plan.outputs["dataKeyArn"], VIA_S3),
    ]


def test_model_builder_writes_logs_only_to_sagemaker_log_groups_of_this_account():
    groups = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/*"
    assert statements(platform_plan(), "ml-model-builder-logs") == [
        allow(["logs:CreateLogGroup"], groups),
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"{groups}:log-stream:*"),
    ]


# -- buckets ----------------------------------------------------------------------------------------

def test_data_key_uses_the_platform_deletion_window_and_default_alias():
    plan = platform_plan()
    key = plan.get("ml-data-key").inputs
    assert key["description"] == "Encrypts the datasets and model artifacts of the dev ML platform"
    assert key["deletionWindowInDays"] == 30
    assert plan.get("ml-data-alias").inputs["name"] == "alias/emlops/ml-data"


@pytest.mark.parametrize("purpose", ["datasets", "artifacts"])
def test_data_buckets_use_the_data_key_and_log_to_the_access_log_bucket(purpose):
    plan = platform_plan()
    bucket = bucket_name(plan, purpose)
    assert plan.get(f"ml-{purpose}-encryption").inputs["rules"] == [{
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": plan.outputs["dataKeyArn"]},
        "bucketKeyEnabled": True,
    }]
    assert plan.get(f"ml-{purpose}-logging").inputs == {
        "bucket": bucket, "targetBucket": bucket_name(plan, "access-logs"), "targetPrefix": f"ml-{purpose}/"}


@pytest.mark.parametrize("noncurrent_days", [90, 14])
def test_data_buckets_expire_old_versions_after_the_retention(noncurrent_days):
    plan = platform_plan(noncurrent_days=noncurrent_days)
    for purpose in ("datasets", "artifacts"):
        assert plan.get(f"ml-{purpose}-lifecycle").inputs == {"bucket": bucket_name(plan, purpose), "rules": [{
            "id": "expire-old-versions", "status": "Enabled", "filter": {"prefix": ""},
            "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
            "noncurrentVersionExpiration": {"noncurrentDays": noncurrent_days},
        }]}


def test_access_log_bucket_is_sse_s3_accepts_s3_logs_and_does_not_log_itself():
    plan = platform_plan()
    assert plan.get("ml-access-logs-encryption").inputs["rules"] == [{
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": False}]
    arn = f"arn:aws:s3:::{bucket_name(plan, 'access-logs')}"
    assert statements(plan, "ml-access-logs-policy")[-1] == {
        "Sid": "S3ServerAccessLogsFromThisAccount", "Effect": "Allow",
        "Principal": {"Service": ["logging.s3.amazonaws.com"]}, "Action": ["s3:PutObject"],
        "Resource": [f"{arn}/*"], "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }
    assert [r.name for r in plan.by_type(LOGGING)] == ["ml-datasets-logging", "ml-artifacts-logging"]


@pytest.mark.parametrize("access_log_days", [365, 30])
def test_access_logs_expire_after_the_retention(access_log_days):
    plan = platform_plan(access_log_days=access_log_days)
    assert plan.get("ml-access-logs-lifecycle").inputs == {"bucket": bucket_name(plan, "access-logs"), "rules": [{
        "id": "expire-access-logs", "status": "Enabled", "filter": {"prefix": ""},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
        "expiration": {"days": access_log_days},
        "noncurrentVersionExpiration": {"noncurrentDays": 1},
    }]}


def test_a_registry_only_platform_holds_no_datasets_and_runs_no_jobs():
    from emlops.components.registry import ModelRegistryArgs

    plan = run_components(lambda: MlPlatform("shared", MlPlatformArgs(
        environment="shared", datasets=False, registry=ModelRegistryArgs(model_names=["churn"], mlflow_kind="none"))))
    assert [b.name for b in plan.by_type("aws:s3/bucket:Bucket")] == ["shared-access-logs-bucket",
                                                                      "shared-artifacts-bucket"]
    assert plan.by_type("aws:iam/role:Role") == []
    from emlops.components.training import TrainingClusterArgs

    assert error_of(lambda: MlPlatformArgs(environment="shared", datasets=False,
                                           training=TrainingClusterArgs(kind="sagemaker"))) == (
        "models, training and a feature store need the datasets bucket (datasets=True)")
