"""SecureBucket: argument checks, every child and its inputs, protection, and the grant helpers."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import pulumi
import pytest
from pydantic import ValidationError

from emlops.components.iam import ServiceRole, ServiceRoleArgs
from emlops.components.kms import KmsSettings
from emlops.components.storage import LifecycleRule, SecureBucket, SecureBucketArgs, StorageSettings
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, run_components

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:SecureBucket"
KMS_COMPONENT = "emlops:index:KmsKey"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GIVEN_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
VIA_S3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
BASE_CHILDREN = [(BUCKET, "data-bucket"), (PUBLIC_ACCESS, "data-public-access-block"),
                 (OWNERSHIP, "data-ownership"), (VERSIONING, "data-versioning"),
                 (ENCRYPTION, "data-encryption"), (POLICY, "data-policy")]
LOG_BUCKET = {"sse_algorithm": "AES256", "receives_access_logs": True}


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def bucket_plan(name: str = "data", grant: Callable[[SecureBucket, ServiceRole], Any] | None = None,
                **args) -> Plan:
    """The plan of one SecureBucket (and, with `grant`, a role `app` granted access to it)."""
    def program() -> None:
        bucket = SecureBucket(name, SecureBucketArgs(**args))
        pulumi.export("arn", bucket.arn)
        pulumi.export("kmsKeyArn", bucket.kms_key_arn)
        if grant is not None:
            grant(bucket, ServiceRole("app", ServiceRoleArgs(services=["sagemaker.amazonaws.com"])))
    return run_components(program)


def bucket_name(plan: Plan, name: str = "data") -> str:
    return plan.get(f"{name}-bucket").inputs["bucket"]


def policy_of(plan: Plan, name: str) -> dict[str, Any]:
    return json.loads(plan.get(name).inputs["policy"])


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def tls_statements(arn: str) -> list[dict[str, Any]]:
    everything = [arn, f"{arn}/*"]
    return [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
         "Resource": everything, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyOutdatedTls", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
         "Resource": everything, "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}},
    ]


def direct_children(plan: Plan, name: str = "data") -> list[tuple[str, str]]:
    return [(r.type, r.name) for r in plan.children(plan.get(name, COMPONENT).urn)]


# -- arguments --------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule_id", ["has space", "under_score", "", "a" * 256])
def test_lifecycle_rule_rejects_bad_ids(rule_id):
    assert error_of(lambda: LifecycleRule(id=rule_id)) == (
        f"lifecycle rule id {rule_id!r} must be 1-255 letters, digits or '-'")


@pytest.mark.parametrize("label", ["expiration_days", "noncurrent_version_expiration_days",
                                   "abort_incomplete_multipart_upload_days"])
def test_lifecycle_rule_rejects_days_below_one(label):
    assert error_of(lambda: LifecycleRule(id="old", **{label: 0})) == (
        f"lifecycle rule 'old': {label} (0) must be at least 1")


@pytest.mark.parametrize("args, message", [
    ({"sse_algorithm": "aws:kms:dsse"}, "sse_algorithm 'aws:kms:dsse' must be 'aws:kms' or 'AES256'"),
    ({"sse_algorithm": "AES256"}, "sse_algorithm 'AES256' is only for access-log buckets "
                                  "(set receives_access_logs=True); use SSE-KMS for data"),
    ({**LOG_BUCKET, "kms_key_arn": GIVEN_KEY}, "kms_key_arn is set but sse_algorithm is 'AES256'; drop one of them"),
    ({"access_log_prefix": "data/"}, "access_log_prefix is set without access_log_bucket"),
    ({"lifecycle_rules": [LifecycleRule(id=i) for i in ("b", "a", "b", "c", "a")]},
     "lifecycle rule ids must be unique; repeated: a, b"),
])
def test_secure_bucket_args_reject_with_a_message(args, message):
    assert error_of(lambda: SecureBucketArgs(**args)) == message


# -- the stack file's `storage` section --------------------------------------------------------------

def test_storage_settings_make_the_platforms_lifecycle_rules():
    settings = StorageSettings.model_validate({"noncurrent_version_retention_days": 30,
                                               "access_log_retention_days": 60})
    assert settings.keep_versions() == LifecycleRule(id="expire-old-versions", noncurrent_version_expiration_days=30)
    assert settings.expire_access_logs() == LifecycleRule(id="expire-access-logs", expiration_days=60,
                                                          noncurrent_version_expiration_days=1)
    defaults = StorageSettings.model_validate({})
    assert (defaults.noncurrent_version_retention_days, defaults.access_log_retention_days) == (90, 365)


@pytest.mark.parametrize("raw, field, message", [
    ({"noncurrent_version_retention_days": 0}, "noncurrent_version_retention_days",
     "Input should be greater than or equal to 1"),
    ({"access_log_retention_days": 36501}, "access_log_retention_days", "Input should be less than or equal to 36500"),
    ({"access_logs_retention_days": 30}, "access_logs_retention_days", "Extra inputs are not permitted"),
])
def test_storage_settings_reject_with_a_message(raw, field, message):
    with pytest.raises(ValidationError) as caught:
        StorageSettings.model_validate(raw)
    assert [(error["loc"], error["msg"]) for error in caught.value.errors()] == [((field,), message)]


# -- the default bucket -----------------------------------------------------------------------------

def test_default_bucket_creates_its_own_key_and_five_configuration_children():
    plan = bucket_plan()
    assert direct_children(plan) == [(KMS_COMPONENT, "data-key")] + BASE_CHILDREN
    key_component = plan.get("data-key", KMS_COMPONENT)
    assert [(r.type, r.name) for r in plan.children(key_component.urn)] == [
        (KEY, "data-key-key"), (ALIAS, "data-key-alias")]
    assert plan.type_counts() == {STACK: 1, COMPONENT: 1, KMS_COMPONENT: 1, KEY: 1, ALIAS: 1, BUCKET: 1,
                                  PUBLIC_ACCESS: 1, OWNERSHIP: 1, VERSIONING: 1, ENCRYPTION: 1, POLICY: 1}


def test_bucket_is_auto_named_and_kept_on_destroy():
    plan = bucket_plan(tags={"owner": "ml-team"})
    inputs = plan.get("data-bucket").inputs
    assert re.fullmatch(r"data-bucket-[0-9a-f]{7}", inputs["bucket"])
    assert inputs == {"bucket": inputs["bucket"], "forceDestroy": False, "tags": {"owner": "ml-team"}}
    assert plan.outputs["arn"] == f"arn:aws:s3:::{inputs['bucket']}"


def test_bucket_key_is_created_for_the_bucket_with_its_tags_window_and_rotation():
    plan = bucket_plan(kms=KmsSettings(deletion_window_days=7, rotation_period_days=90), tags={"owner": "ml-team"})
    inputs = plan.get("data-key-key").inputs
    assert inputs["description"] == "Encrypts the objects of the data bucket"
    assert (inputs["deletionWindowInDays"], inputs["rotationPeriodInDays"], inputs["tags"]) == (
        7, 90, {"owner": "ml-team"})
    assert plan.get("data-key-alias").inputs["name"] == "alias/emlops/data-key"


def test_configuration_children_block_public_access_and_enforce_ownership_and_versioning():
    plan = bucket_plan()
    bucket = bucket_name(plan)
    assert plan.get("data-public-access-block").inputs == {
        "bucket": bucket, "blockPublicAcls": True, "blockPublicPolicy": True,
        "ignorePublicAcls": True, "restrictPublicBuckets": True}
    assert plan.get("data-ownership").inputs == {"bucket": bucket, "rule": {"objectOwnership": "BucketOwnerEnforced"}}
    assert plan.get("data-versioning").inputs == {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}}


def encryption_rules(plan: Plan) -> list[dict[str, Any]]:
    inputs = plan.get("data-encryption").inputs
    assert inputs["bucket"] == bucket_name(plan)
    return inputs["rules"]


def test_default_encryption_is_sse_kms_with_the_bucket_key_and_a_bucket_key():
    plan = bucket_plan()
    key_arn = plan.outputs["kmsKeyArn"]
    assert re.fullmatch(rf"arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f-]{{36}}", key_arn)
    assert encryption_rules(plan) == [{
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn},
        "bucketKeyEnabled": True}]
    assert plan.get("data-key-key").urn in plan.get("data-encryption").dependencies


def test_bucket_policy_denies_plain_http_and_old_tls():
    plan = bucket_plan()
    arn = f"arn:aws:s3:::{bucket_name(plan)}"
    assert plan.get("data-policy").inputs["bucket"] == bucket_name(plan)
    assert policy_of(plan, "data-policy") == document(*tls_statements(arn))


def test_bucket_policy_waits_for_public_access_block_and_ownership_controls():
    plan = bucket_plan()
    dependencies = plan.get("data-policy").dependencies
    assert plan.get("data-public-access-block").urn in dependencies
    assert plan.get("data-ownership").urn in dependencies


def test_given_kms_key_is_used_and_no_key_is_created():
    plan = bucket_plan(kms_key_arn=GIVEN_KEY)
    assert direct_children(plan) == BASE_CHILDREN
    assert plan.by_type(KEY) == [] and plan.by_type(KMS_COMPONENT) == []
    assert encryption_rules(plan) == [{
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": GIVEN_KEY},
        "bucketKeyEnabled": True}]


def test_access_log_bucket_uses_sse_s3_and_lets_s3_logging_of_this_account_write():
    plan = bucket_plan(**LOG_BUCKET)
    arn = f"arn:aws:s3:::{bucket_name(plan)}"
    assert direct_children(plan) == BASE_CHILDREN
    assert encryption_rules(plan) == [{
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": False}]
    assert policy_of(plan, "data-policy") == document(*tls_statements(arn), {
        "Sid": "S3ServerAccessLogsFromThisAccount",
        "Effect": "Allow",
        "Principal": {"Service": ["logging.s3.amazonaws.com"]},
        "Action": ["s3:PutObject"],
        "Resource": [f"{arn}/*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    })


def test_lifecycle_rules_are_written_in_order_with_only_the_given_limits():
    plan = bucket_plan(kms_key_arn=GIVEN_KEY, lifecycle_rules=[
        LifecycleRule(id="expire-tmp", prefix="tmp/", expiration_days=3, noncurrent_version_expiration_days=1,
                      abort_incomplete_multipart_upload_days=2),
        LifecycleRule(id="uploads"),
    ])
    assert direct_children(plan) == BASE_CHILDREN + [(LIFECYCLE, "data-lifecycle")]
    assert plan.get("data-lifecycle").inputs == {"bucket": bucket_name(plan), "rules": [
        {"id": "expire-tmp", "status": "Enabled", "filter": {"prefix": "tmp/"},
         "abortIncompleteMultipartUpload": {"daysAfterInitiation": 2},
         "expiration": {"days": 3}, "noncurrentVersionExpiration": {"noncurrentDays": 1}},
        {"id": "uploads", "status": "Enabled", "filter": {"prefix": ""},
         "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}},
    ]}
    # noncurrent-version rules wait for versioning to be enabled
    assert plan.get("data-versioning").urn in plan.get("data-lifecycle").dependencies


@pytest.mark.parametrize("prefix, expected", [(None, "data/"), ("logs/data/", "logs/data/")])
def test_access_logging_goes_to_the_log_bucket_under_a_prefix(prefix, expected):
    plan = bucket_plan(kms_key_arn=GIVEN_KEY, access_log_bucket="central-logs", access_log_prefix=prefix)
    assert direct_children(plan) == BASE_CHILDREN + [(LOGGING, "data-logging")]
    assert plan.get("data-logging").inputs == {
        "bucket": bucket_name(plan), "targetBucket": "central-logs", "targetPrefix": expected}


def protection(plan: Plan) -> dict[str, tuple[bool, bool]]:
    return {r.name: (r.protect, r.retain_on_delete) for r in plan.resources if r.type != STACK}


def test_protect_keeps_the_bucket_and_its_key_and_nothing_else():
    plan = bucket_plan(protect=True, lifecycle_rules=[LifecycleRule(id="uploads")], access_log_bucket="logs")
    kept, not_kept = (True, True), (False, False)
    assert protection(plan) == {
        "data": not_kept, "data-key": not_kept, "data-key-key": kept, "data-key-alias": not_kept,
        "data-bucket": kept, "data-public-access-block": not_kept, "data-ownership": not_kept,
        "data-versioning": not_kept, "data-encryption": not_kept, "data-policy": not_kept,
        "data-lifecycle": not_kept, "data-logging": not_kept,
    }


def test_unprotected_bucket_keeps_nothing():
    assert set(protection(bucket_plan()).values()) == {(False, False)}


# -- names ------------------------------------------------------------------------------------------

def test_bucket_auto_name_is_lowercase():
    plan = bucket_plan(name="Data")
    name = bucket_name(plan, "Data")
    assert re.fullmatch(r"data-bucket-[0-9a-f]{7}", name)
    assert plan.outputs["arn"] == f"arn:aws:s3:::{name}"


def test_bucket_auto_name_of_a_long_component_name_fits_s3s_63_characters():
    longest = "training-datasets-of-the-enterprise-machine-lear"  # 48: with "-bucket" and the suffix, 63
    name = bucket_name(bucket_plan(name=longest, kms_key_arn=GIVEN_KEY), longest)
    assert len(name) == 63
    assert re.fullmatch(rf"{longest}-bucket-[0-9a-f]{{7}}", name)
    # Pulumi does not cut a longer one to fit: it refuses it, and so do the mocks
    from emlops.offline.mocks import NameRefused

    with pytest.raises(NameRefused, match=r"plus 7 random chars is longer than maximum length 63"):
        bucket_plan(name=longest + "x", kms_key_arn=GIVEN_KEY)


# -- grants -----------------------------------------------------------------------------------------

def grant_policy(plan: Plan, name: str) -> list[dict[str, Any]]:
    policy = plan.get(name)
    assert (policy.type, policy.parent) == (ROLE_POLICY, plan.get("app", "emlops:index:ServiceRole").urn)
    assert policy.inputs["role"] == plan.get("app-role").inputs["name"]
    assert len(plan.by_type(ROLE_POLICY)) == 1
    document_ = json.loads(policy.inputs["policy"])
    assert document_["Version"] == "2012-10-17"
    return document_["Statement"]


def allow(actions: list[str], resource: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": actions, "Resource": [resource]}
    return {**statement, "Condition": condition} if condition else statement


def listing(arn: str, prefix: str = "") -> dict[str, Any]:
    return allow(["s3:ListBucket"], arn, {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None)


def reading(arn: str, prefix: str = "") -> dict[str, Any]:
    return allow(["s3:GetObject", "s3:GetObjectVersion"], f"{arn}/{prefix}*")


def writing(arn: str, prefix: str = "") -> dict[str, Any]:
    return allow(["s3:AbortMultipartUpload", "s3:PutObject"], f"{arn}/{prefix}*")


def kms_use(key_arn: str, encrypt: bool) -> dict[str, Any]:
    actions = ["kms:DescribeKey", "kms:Decrypt"]
    if encrypt:
        actions += ["kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
    return allow(actions, key_arn, VIA_S3)


def granted(method: str, prefix: str = "", **args) -> tuple[Plan, str, str]:
    plan = bucket_plan(grant=lambda bucket, role: getattr(bucket, method)(role, prefix), **args)
    return plan, plan.outputs["arn"], plan.outputs.get("kmsKeyArn")


@pytest.mark.parametrize("prefix, policy_name", [("", "app-read-data"), ("models/", "app-read-data-models"),
                                                 ("Team A/v1/", "app-read-data-team-a-v1")])
def test_grant_read_lists_and_reads_the_prefix_and_decrypts_through_s3(prefix, policy_name):
    plan, arn, key_arn = granted("grant_read", prefix)
    assert grant_policy(plan, policy_name) == [listing(arn, prefix), reading(arn, prefix), kms_use(key_arn, False)]


@pytest.mark.parametrize("prefix, policy_name", [("", "app-write-data"), ("models/", "app-write-data-models")])
def test_grant_write_puts_objects_under_the_prefix_and_encrypts_through_s3(prefix, policy_name):
    plan, arn, key_arn = granted("grant_write", prefix)
    assert grant_policy(plan, policy_name) == [writing(arn, prefix), kms_use(key_arn, True)]


@pytest.mark.parametrize("prefix, policy_name", [("", "app-read-write-data"),
                                                 ("models/", "app-read-write-data-models")])
def test_grant_read_write_has_one_kms_statement_for_both(prefix, policy_name):
    plan, arn, key_arn = granted("grant_read_write", prefix)
    assert grant_policy(plan, policy_name) == [
        listing(arn, prefix), reading(arn, prefix), writing(arn, prefix), kms_use(key_arn, True)]


def test_grants_on_a_given_key_name_that_key():
    plan, arn, _ = granted("grant_read", kms_key_arn=GIVEN_KEY)
    assert grant_policy(plan, "app-read-data") == [listing(arn), reading(arn), kms_use(GIVEN_KEY, False)]


@pytest.mark.parametrize("method, statements", [
    ("grant_read", lambda arn: [listing(arn), reading(arn)]),
    ("grant_write", lambda arn: [writing(arn)]),
    ("grant_read_write", lambda arn: [listing(arn), reading(arn), writing(arn)]),
])
def test_grants_on_an_sse_s3_bucket_have_no_kms_statement(method, statements):
    plan, arn, _ = granted(method, **LOG_BUCKET)
    assert grant_policy(plan, f"app-{method[len('grant_'):].replace('_', '-')}-data") == statements(arn)


@pytest.mark.parametrize("method", ["grant_read", "grant_write", "grant_read_write"])
@pytest.mark.parametrize("prefix", ["/models/", "models", "models/*/", "*"])
def test_grants_reject_prefixes_that_are_not_folder_paths(method, prefix):
    assert error_of(lambda: granted(method, prefix)) == (
        f"prefix {prefix!r} must end with '/', not start with '/', and have no '*'")


def test_grants_work_for_any_component_name():
    plan = bucket_plan(name="Data", grant=lambda bucket, role: bucket.grant_read(role))
    assert len(plan.by_type(ROLE_POLICY)) == 1


# -- Object Lock ------------------------------------------------------------------------------------------------

def test_object_lock_keeps_every_version_for_its_days_enabled_in_place():
    from emlops.components.storage import ObjectLock

    plan = run_components(lambda: SecureBucket("data", SecureBucketArgs(
        kms_key_arn=GIVEN_KEY, object_lock=ObjectLock("COMPLIANCE", 365))))
    lock = plan.get("data-object-lock", "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.inputs == {"bucket": plan.get("data-bucket", BUCKET).inputs["bucket"], "objectLockEnabled": "Enabled",
                           "rule": {"defaultRetention": {"days": 365, "mode": "COMPLIANCE"}}}
    # after versioning (S3 needs it), and the bucket itself is not replaced (no objectLockEnabled on it)
    assert plan.get("data-versioning", VERSIONING).urn in lock.dependencies
    assert "objectLockEnabled" not in plan.get("data-bucket", BUCKET).inputs
    assert not run_components(lambda: SecureBucket("data", SecureBucketArgs(kms_key_arn=GIVEN_KEY))).by_type(
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")


@pytest.mark.parametrize("mode, days, message", [
    ("LEGAL", 1, "object lock mode 'LEGAL' must be 'GOVERNANCE' or 'COMPLIANCE'"),
    ("GOVERNANCE", 0, "object lock days (0) must be 1-36500"),
    ("GOVERNANCE", True, "object lock days (True) must be 1-36500"),
])
def test_object_lock_rejects_what_s3_would(mode, days, message):
    from emlops.components.storage import ObjectLock

    with pytest.raises(ValueError) as caught:
        ObjectLock(mode, days)
    assert str(caught.value) == message
