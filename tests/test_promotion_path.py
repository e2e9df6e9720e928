"""The promotion path across accounts, through the shared-services registry (stacks/Pulumi.shared.yaml).

The shared stack grants exactly: its consumers (staging, prod) describe the package groups, deploy their
versions, read `models/` of its artifacts bucket, decrypt through S3 and pull the images of its
repositories; its publisher (prod, whose retraining registers new versions) also writes `models/` and
registers versions. The environments grant no other account anything, and read the shared registry
only where the path says: dev reads nothing of prod or shared.
"""

from __future__ import annotations

import json

import pytest

from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.storage import SecureBucket, SecureBucketArgs
from tests.conftest import run_components

ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333", "shared": "444444444444"}
CONSUMERS = [ACCOUNTS["staging"], ACCOUNTS["prod"]]
PUBLISHERS = [ACCOUNTS["prod"]]
PROMOTION_TYPES = ("aws:kms/key:Key", "aws:s3/bucketPolicy:BucketPolicy",
                   "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy",
                   "aws:ecr/repositoryPolicy:RepositoryPolicy", "aws:sns/topicPolicy:TopicPolicy")


def statements_of(plan, name: str, prefix: str, key: str = "policy") -> list[dict]:
    policy = json.loads(plan.get(name).inputs[key])
    return [s for s in policy["Statement"] if s.get("Sid", "").startswith(prefix)]


def roots(accounts: list[str]) -> list[str]:
    return [f"arn:aws:iam::{account}:root" for account in accounts]


def through_s3(bucket_prefix: str) -> dict:
    return {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"},
            "ArnLike": {"kms:EncryptionContext:aws:s3:arn": [f"arn:aws:s3:::{bucket_prefix}*",
                                                             f"arn:aws:s3:::{bucket_prefix}*/*"]}}


def test_the_shared_key_lets_consumers_decrypt_and_publishers_encrypt_only_through_s3(shipped_plan):
    plan = shipped_plan("shared")
    assert statements_of(plan, "shared-data-key", "Consumer") + statements_of(plan, "shared-data-key", "Publisher") == [
        {"Sid": "ConsumerAccountsDecryptObjectsThroughS3", "Effect": "Allow", "Principal": {"AWS": roots(CONSUMERS)},
         "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": ["*"],
         "Condition": through_s3("shared-artifacts-bucket-")},
        {"Sid": "PublisherAccountsEncryptObjectsThroughS3", "Effect": "Allow", "Principal": {"AWS": roots(PUBLISHERS)},
         "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
         "Resource": ["*"], "Condition": through_s3("shared-artifacts-bucket-")}]


def test_the_shared_bucket_lets_consumers_read_and_publishers_write_models_only(shipped_plan):
    plan = shipped_plan("shared")
    bucket = plan.get("shared-artifacts-bucket").inputs["bucket"]
    arn = f"arn:aws:s3:::{bucket}"
    granted = statements_of(plan, "shared-artifacts-policy", "Consumer") + statements_of(
        plan, "shared-artifacts-policy", "Publisher")
    assert granted == [
        {"Sid": "ConsumerAccountsReadPrefix", "Effect": "Allow", "Principal": {"AWS": roots(CONSUMERS)},
         "Action": ["s3:GetObject"], "Resource": [f"{arn}/models/*"]},
        {"Sid": "PublisherAccountsListPrefix", "Effect": "Allow", "Principal": {"AWS": roots(PUBLISHERS)},
         "Action": ["s3:ListBucket"], "Resource": [arn], "Condition": {"StringLike": {"s3:prefix": ["models/*"]}}},
        {"Sid": "PublisherAccountsWritePrefix", "Effect": "Allow", "Principal": {"AWS": roots(PUBLISHERS)},
         "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"], "Resource": [f"{arn}/models/*"]}]


@pytest.mark.parametrize("group", ["churn", "fraud"])
def test_each_shared_group_lets_consumers_deploy_and_publishers_register(group, shipped_plan):
    plan = shipped_plan("shared")
    arn = f"arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{group}"
    packages = f"arn:aws:sagemaker:eu-west-1:444444444444:model-package/{group}/*"
    policy = json.loads(plan.get(f"shared-registry-{group}-group-policy").inputs["resourcePolicy"])
    assert policy["Statement"] == [
        {"Sid": "ConsumerAccountsDescribeGroup", "Effect": "Allow", "Principal": {"AWS": roots(CONSUMERS)},
         "Action": ["sagemaker:DescribeModelPackageGroup"], "Resource": [arn]},
        {"Sid": "ConsumerAccountsDeployVersions", "Effect": "Allow", "Principal": {"AWS": roots(CONSUMERS)},
         # consumers deploy versions but never approve them (no sagemaker:UpdateModelPackage)
         "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModel"],
         "Resource": [packages]},
        {"Sid": "PublisherAccountsRegisterVersions", "Effect": "Allow", "Principal": {"AWS": roots(PUBLISHERS)},
         "Action": ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"],
         "Resource": [arn, packages]},
        # publishers register versions only for this account's approvers
        {"Sid": "PublisherAccountsRegisterForApprovalOnly", "Effect": "Allow", "Principal": {"AWS": roots(PUBLISHERS)},
         "Action": ["sagemaker:CreateModelPackage"], "Resource": [arn, packages],
         "Condition": {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}}]


@pytest.mark.parametrize("repository", ["churn-training", "fraud-training"])
def test_each_shared_image_repository_lets_the_promotion_accounts_pull_only(repository, shipped_plan):
    plan = shipped_plan("shared")
    policy = json.loads(plan.get(f"shared-registry-{repository}-repository-policy").inputs["policy"])
    assert policy["Statement"] == [{
        "Sid": "PromotionAccountsPullImages", "Effect": "Allow", "Principal": {"AWS": roots(CONSUMERS)},
        "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]
    assert plan.get(f"shared-registry-{repository}-repository").inputs["name"] == repository


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_environments_grant_no_other_account_anything(stack, shipped_plan):
    plan = shipped_plan(stack)
    own = ACCOUNTS[stack]
    granted = json.dumps([r.inputs for r in plan.resources if r.type in PROMOTION_TYPES])
    assert [a for a in ACCOUNTS.values() if a != own and a in granted] == []
    assert plan.by_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy") == []


def test_dev_can_read_nothing_of_prod_or_shared(shipped_plan):
    for stack in ("prod", "shared"):
        granted = json.dumps([r.inputs for r in shipped_plan(stack).resources if r.type in PROMOTION_TYPES])
        assert ACCOUNTS["dev"] not in granted
    assert "444444444444" not in json.dumps([r.inputs for r in shipped_plan("dev").resources])


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_environments_deploy_the_shared_groups_and_decrypt_their_artifacts_through_s3(stack, shipped_plan):
    plan, shared = shipped_plan(stack), shipped_plan("shared")
    key = shared.outputs["dataKeyArn"]
    group = "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/churn (latest Approved)"
    assert plan.get(f"{stack}-churn-model").inputs["primaryContainer"] == {"modelPackageName": f"[unknown: {group}]"}
    read = [s for s in json.loads(plan.get(f"{stack}-churn-execution-permissions").inputs["policy"])["Statement"]
            if s["Sid"].startswith("ReadArtifact")]
    assert read == [
        {"Sid": "ReadArtifact", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"[unknown: {group}]"]},
        {"Sid": "ReadArtifact2", "Effect": "Allow", "Action": ["kms:DescribeKey", "kms:Decrypt"], "Resource": [key],
         "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}]


@pytest.mark.parametrize("model", ["churn", "fraud"])
def test_prod_retraining_registers_into_the_shared_group_and_writes_the_model_there(model, shipped_plan):
    plan, shared = shipped_plan("prod"), shipped_plan("shared")
    bucket, key = shared.outputs["artifactsBucket"], shared.outputs["dataKeyArn"]
    definition = json.loads(plan.get(f"prod-{model}-retraining-pipeline").inputs["pipelineDefinition"])
    steps = {step["Name"]: step for step in definition["Steps"]}
    assert steps["Train"]["Arguments"]["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{bucket}/models/{model}", "KmsKeyId": key, "CompressionType": "GZIP"}
    [register] = steps["CheckMetric"]["Arguments"]["IfSteps"]
    assert register["Arguments"]["ModelPackageGroupName"] == (
        f"arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{model}")
    write = json.loads(plan.get(f"prod-{model}-retraining-execution-write-model").inputs["policy"])["Statement"]
    assert write == [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [f"models/{model}/*"]}}},
        {"Effect": "Allow", "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/models/{model}/*"]},
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
                                       "kms:ReEncryptFrom", "kms:ReEncryptTo"], "Resource": [key],
         "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}]
    steps_policy = json.loads(plan.get(f"prod-{model}-retraining-execution-run-steps").inputs["policy"])
    [register_grant] = [s for s in steps_policy["Statement"] if "sagemaker:CreateModelPackage" in s["Action"]]
    assert register_grant["Resource"] == [f"arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{model}",
                                          f"arn:aws:sagemaker:eu-west-1:444444444444:model-package/{model}/*"]


def test_the_shared_stack_is_read_through_one_stack_reference(shipped_plan):
    for stack in ("staging", "prod"):
        [reference] = shipped_plan(stack).by_type("pulumi:pulumi:StackReference")
        assert (reference.name, reference.inputs) == ("organization/emlops/shared",
                                                      {"name": "organization/emlops/shared"})
    for stack in ("dev", "shared"):
        assert shipped_plan(stack).by_type("pulumi:pulumi:StackReference") == []


def test_datasets_and_capture_stay_private_to_the_account(shipped_plan):
    plan = shipped_plan("prod")
    for name in ("prod-datasets-policy", "prod-capture-policy"):
        assert statements_of(plan, name, "Consumer") + statements_of(plan, name, "Publisher") == []


@pytest.mark.parametrize("make, message", [
    (lambda: KmsKeyArgs(description="k", s3_decrypt_account_ids=["222222222222"]),
     "s3_decrypt_account_ids (or s3_encrypt_account_ids) and s3_decrypt_bucket_prefixes go together: give both "
     "or neither"),
    (lambda: KmsKeyArgs(description="k", s3_encrypt_account_ids=["333333333333"]),
     "s3_decrypt_account_ids (or s3_encrypt_account_ids) and s3_decrypt_bucket_prefixes go together: give both "
     "or neither"),
    (lambda: KmsKeyArgs(description="k", s3_encrypt_account_ids=["3"], s3_decrypt_bucket_prefixes=["b-"]),
     "s3_encrypt_account_ids: '3' must be a 12-digit AWS account id"),
    (lambda: KmsKeyArgs(description="k", s3_decrypt_account_ids=["2222"], s3_decrypt_bucket_prefixes=["b-"]),
     "s3_decrypt_account_ids: '2222' must be a 12-digit AWS account id"),
    (lambda: KmsKeyArgs(description="k", s3_decrypt_account_ids=["222222222222"], s3_decrypt_bucket_prefixes=["B*"]),
     "s3_decrypt_bucket_prefixes: 'B*' must be a bucket name or its auto-name prefix (lowercase letters, digits, "
     "'.', '-')"),
    (lambda: SecureBucketArgs(reader_account_ids=["222222222222"]),
     "reader_prefix '' must be a prefix ending in '/' (e.g. 'models/') when reader_account_ids or "
     "writer_account_ids are given: other accounts never reach the whole bucket"),
    (lambda: SecureBucketArgs(writer_account_ids=["333333333333"], reader_prefix="*"),
     "reader_prefix '*' must be a prefix ending in '/' (e.g. 'models/') when reader_account_ids or "
     "writer_account_ids are given: other accounts never reach the whole bucket"),
    (lambda: SecureBucketArgs(writer_account_ids=["y"], reader_prefix="models/"),
     "writer_account_ids: 'y' must be a 12-digit AWS account id"),
    (lambda: SecureBucketArgs(reader_account_ids=["x"], reader_prefix="models/"),
     "reader_account_ids: 'x' must be a 12-digit AWS account id"),
])
def test_grant_arguments_are_checked(make, message):
    with pytest.raises(ValueError) as caught:
        make()
    assert str(caught.value) == message


def test_a_bucket_reader_gets_only_the_prefix_and_no_other_statement_changes():
    plan = run_components(lambda: SecureBucket("shared", SecureBucketArgs(
        kms_key_arn=KmsKey("k", KmsKeyArgs(description="k")).arn, reader_account_ids=["222222222222"],
        reader_prefix="models/")))
    sids = [s["Sid"] for s in json.loads(plan.get("shared-policy").inputs["policy"])["Statement"]]
    assert sids == ["DenyInsecureTransport", "DenyOutdatedTls", "ConsumerAccountsReadPrefix"]
