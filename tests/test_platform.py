"""MlPlatform: settings checks, what one environment creates, protection, tags and the job role."""

from __future__ import annotations

import functools
import json
from collections import Counter
from typing import Any, Callable

import pulumi
import pytest

from emlops.offline.plan import Plan
from emlops.program.config import ConfigError
from emlops.program.platform import PlatformConfig, parse_platform_config
from emlops.program.platform import MlPlatform, PlatformContext
from tests.conftest import ACCOUNT, BASE_SETTINGS, REGION, run_components, run_platform

STACK = "pulumi:pulumi:Stack"
PLATFORM = "emlops:index:MlPlatform"
KMS_COMPONENT = "emlops:index:KmsKey"
BUCKET_COMPONENT = "emlops:index:SecureBucket"
ROLE_COMPONENT = "emlops:index:ServiceRole"
FEATURES_COMPONENT = "emlops:index:FeatureStore"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
TEAM_TAGS = {"owner": "ml-team", "cost-center": "cc-42", "data-classification": "internal"}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"
VIA_S3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
SOURCE = "stacks/Pulumi.test.yaml"
# The platform holds datasets and runs SageMaker jobs (the datasets bucket, the model-builder role) only when
# something uses them: models, training or feature groups. The smallest such platform holds one online-only
# feature group (its store, role and group are the FeatureStore's, tested in test_feature_store) and no MLflow.
CUSTOMERS = {"name": "customers", "features": [{"name": "customer_id", "type": "String"},
                                               {"name": "event_time", "type": "Fractional"}],
             "record_identifier": "customer_id", "event_time_feature": "event_time",
             "online": {"enabled": True}, "offline": {"enabled": False}}
NETWORK = {"vpc_id": "vpc-0123456789abcdef0",
           "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}
HOLDS_DATA = {"feature_groups": [CUSTOMERS], "registry": {"mlflow": {"kind": "none"}}}


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def config_error(**settings: Any) -> str:
    """The one line the stack-file validation reports for SETTINGS (on top of BASE_SETTINGS)."""
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**BASE_SETTINGS, **settings}, SOURCE)
    return str(caught.value)


@functools.lru_cache(maxsize=None)
def _platform_plan(production: bool, boundary: str | None, retention: tuple[int, int]) -> Plan:
    noncurrent_days, access_log_days = retention
    settings: dict[str, Any] = {
        **HOLDS_DATA, "production": production,
        "storage": {"noncurrent_version_retention_days": noncurrent_days,
                    "access_log_retention_days": access_log_days}}
    if boundary is not None:
        settings["permission_boundary_arn"] = boundary
    if production:  # the organisation's trail: looked up, no resource of the stack
        settings["audit"] = {"organization_trail": {
            "trail_arn": "arn:aws:cloudtrail:us-east-1:777777777777:trail/acme-organization-trail"}}

    def program() -> None:
        # run_platform's program (it serves no models), exporting what the tests compare against
        platform = MlPlatform("ml", PlatformConfig.model_validate({**BASE_SETTINGS, **settings}), PlatformContext())
        pulumi.export("dataKeyArn", platform.data_key.arn)
        pulumi.export("roleArn", platform.model_builder_role.arn)
    return run_components(program)


def platform_plan(production: bool = False, boundary: str | None = None,
                  noncurrent_days: int = 90, access_log_days: int = 365) -> Plan:
    """The plan of MlPlatform `ml` for environment `dev` holding data (memoised: tests only read it)."""
    return _platform_plan(production, boundary, (noncurrent_days, access_log_days))


def bucket_name(plan: Plan, purpose: str) -> str:
    return plan.get(f"ml-{purpose}-bucket").inputs["bucket"]


def statements(plan: Plan, name: str) -> list[dict[str, Any]]:
    document = json.loads(plan.get(name).inputs["policy"])
    assert document["Version"] == "2012-10-17"
    return document["Statement"]


# -- settings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("environment", ["Dev", "d", "a" * 17, "dev-", "-dev", "1dev", "dev_1", ""])
def test_platform_settings_reject_bad_environment_names(environment):
    assert config_error(environment=environment) == (
        f"{SOURCE}: emlops:platform.environment: must be 2-16 lowercase letters, digits or '-', starting with a "
        f"letter, got {environment!r}")


@pytest.mark.parametrize("settings, message", [
    ({"kms": {"deletion_window_days": 6}}, "kms.deletion_window_days: must be greater than or equal to 7, got 6"),
    ({"kms": {"deletion_window_days": 31}}, "kms.deletion_window_days: must be less than or equal to 30, got 31"),
    ({"storage": {"noncurrent_version_retention_days": 0}},
     "storage.noncurrent_version_retention_days: must be greater than or equal to 1, got 0"),
    ({"storage": {"access_log_retention_days": 0}},
     "storage.access_log_retention_days: must be greater than or equal to 1, got 0"),
])
def test_platform_settings_reject_out_of_range_numbers(settings, message):
    assert config_error(**settings) == f"{SOURCE}: emlops:platform.{message}"


def test_platform_settings_accept_the_edges():
    config = parse_platform_config({
        **BASE_SETTINGS, "environment": "p" + "1" * 15, "kms": {"deletion_window_days": 7},
        "storage": {"noncurrent_version_retention_days": 1, "access_log_retention_days": 1}}, SOURCE)
    assert (config.environment, config.kms.deletion_window_days) == ("p111111111111111", 7)
    assert (config.storage.noncurrent_version_retention_days, config.storage.access_log_retention_days) == (1, 1)


def test_platform_refuses_a_full_access_boundary_for_its_roles_at_its_key():
    refused = (f"{SOURCE}: emlops:platform.permission_boundary_arn: an AWS-managed AdministratorAccess, "
               "PowerUserAccess or *FullAccess policy cannot serve as a permissions boundary: it bounds nothing; name "
               "your organisation's boundary policy")
    for policy in ("AmazonS3FullAccess", "AdministratorAccess", "PowerUserAccess", "job-function/AdministratorAccess"):
        assert config_error(permission_boundary_arn=f"arn:aws:iam::aws:policy/{policy}") == refused
    # a boundary of the organisation's own, even one named like them, is what a boundary is for
    own = "arn:aws:iam::123456789012:policy/AdministratorAccess"
    assert parse_platform_config({**BASE_SETTINGS, "permission_boundary_arn": own}, SOURCE).permission_boundary_arn == own


def test_a_self_hosted_mlflow_server_needs_its_backend_store_uri_before_anything_is_created():
    settings = PlatformConfig.model_validate({
        **BASE_SETTINGS, "network": NETWORK, "registry": {"mlflow": {"kind": "kubernetes"}},
        "training": {"kind": "eks", "eks": {"admin_role_arns": [f"arn:aws:iam::{ACCOUNT}:role/emlops-deploy"]}}})
    raised: list[str] = []

    def program() -> None:
        try:
            MlPlatform("ml", settings, PlatformContext())  # no mlflow_backend_store_uri
        except ValueError as exc:
            raised.append(str(exc))
    plan = run_components(program)
    assert (raised, [r.type for r in plan.resources]) == (
        ["a self-hosted MLflow server needs its backend store URI (a secret)"], [STACK])


# -- what it creates --------------------------------------------------------------------------------

def test_platform_creates_one_key_three_buckets_and_one_role():
    # the feature store's: its component, its role (an online store needs no inline policy) and its group
    feature_store = Counter({FEATURES_COMPONENT: 1, ROLE_COMPONENT: 1, ROLE: 1, FEATURE_GROUP: 1})
    assert platform_plan().type_counts() == feature_store + Counter({
        STACK: 1, PLATFORM: 1,
        KMS_COMPONENT: 1, KEY: 1, ALIAS: 1,
        BUCKET_COMPONENT: 3, BUCKET: 3,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 3,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 3,
        "aws:s3/bucketVersioning:BucketVersioning": 3,
        # the artifacts bucket keeps every version of registered models (S3 Object Lock)
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": 1,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 3,
        "aws:s3/bucketPolicy:BucketPolicy": 3,
        LIFECYCLE: 3, LOGGING: 2,
        ROLE_COMPONENT: 1, ROLE: 1, ROLE_POLICY: 3,
    })


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
        (FEATURES_COMPONENT, "ml-features"),
    ]


def protected(plan: Plan) -> dict[str, set[tuple[str, str]]]:
    return {
        "protect": {(r.type, r.name) for r in plan.resources if r.protect},
        "retainOnDelete": {(r.type, r.name) for r in plan.resources if r.retain_on_delete},
    }


def test_production_protects_and_retains_exactly_the_stateful_resources():
    stateful = {(KEY, "ml-data-key"), (BUCKET, "ml-access-logs-bucket"),
                (BUCKET, "ml-datasets-bucket"), (BUCKET, "ml-artifacts-bucket"),
                (FEATURE_GROUP, "ml-features-customers")}
    assert protected(platform_plan(production=True)) == {"protect": stateful, "retainOnDelete": stateful}


def test_non_production_protects_nothing():
    assert protected(platform_plan(production=False)) == {"protect": set(), "retainOnDelete": set()}


@pytest.mark.parametrize("production", [False, True])
def test_every_taggable_resource_carries_team_environment_and_managed_by_tags(production):
    plan = platform_plan(production=production)
    tagged = {r.name: r.inputs["tags"] for r in plan.resources if "tags" in r.inputs}
    expected = {**TEAM_TAGS, "environment": "dev", "managed-by": "emlops"}
    assert tagged == {
        **{name: expected for name in (
            "ml-data-key", "ml-access-logs-bucket", "ml-datasets-bucket", "ml-artifacts-bucket",
            "ml-model-builder-role")},
        **{name: {**expected, "feature-store": "ml-features"} for name in (
            "ml-features-execution-role", "ml-features-customers")}}


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
    # it reads the platform's data: off the path platform admins may change
    assert inputs["path"] == "/"
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
    # no models, training or feature groups: the datasets bucket and the job role have nothing to serve
    plan = run_platform({"environment": "shared",
                         "registry": {"package_groups": ["churn"], "mlflow": {"kind": "none"}}})
    assert [b.name for b in plan.by_type("aws:s3/bucket:Bucket")] == ["shared-access-logs-bucket",
                                                                      "shared-artifacts-bucket"]
    assert plan.by_type("aws:iam/role:Role") == []
