"""The promotion path across accounts: a registry's consumer accounts may read exactly its approved-model
artifacts (package groups, `models/` of the artifacts bucket, the data key through S3) and nothing else;
an account that is not a consumer (dev, for prod) gets nothing."""

from __future__ import annotations

import json

import pytest

from components.kms import KmsKey, KmsKeyArgs
from components.storage import SecureBucket, SecureBucketArgs
from tests.conftest import run_components

ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
CONSUMERS = {"dev": ["222222222222", "333333333333"], "staging": [], "prod": ["222222222222"]}


def consumer_statements(plan, name: str) -> list[dict]:
    policy = json.loads(plan.get(name).inputs["policy"])
    return [s for s in policy["Statement"] if s.get("Sid", "").startswith("ConsumerAccounts")]


def roots(accounts: list[str]) -> list[str]:
    return [f"arn:aws:iam::{account}:root" for account in accounts]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_stack_grants_exactly_its_registry_consumers(stack, shipped_plan):
    plan = shipped_plan(stack)
    consumers = CONSUMERS[stack]
    bucket = plan.get(f"{stack}-artifacts-bucket").inputs["bucket"]
    key = consumer_statements(plan, f"{stack}-data-key")
    reads = consumer_statements(plan, f"{stack}-artifacts-policy")
    if not consumers:
        assert key == reads == []
        return
    assert key == [{
        "Sid": "ConsumerAccountsDecryptObjectsThroughS3", "Effect": "Allow",
        "Principal": {"AWS": roots(consumers)}, "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": ["*"],
        "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"},
                      "ArnLike": {"kms:EncryptionContext:aws:s3:arn": [
                          f"arn:aws:s3:::{stack}-artifacts-bucket-*", f"arn:aws:s3:::{stack}-artifacts-bucket-*/*"]}}}]
    assert reads == [{"Sid": "ConsumerAccountsReadPrefix", "Effect": "Allow", "Principal": {"AWS": roots(consumers)},
                      "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/models/*"]}]
    # the package groups name the same accounts, and only them
    groups = plan.by_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
    assert groups and all(
        {p for s in json.loads(g.inputs["resourcePolicy"])["Statement"] for p in s["Principal"]["AWS"]}
        == set(roots(consumers)) for g in groups)


def test_dev_can_read_nothing_of_prod(shipped_plan):
    plan = shipped_plan("prod")
    dev_root = f"arn:aws:iam::{ACCOUNTS['dev']}:root"
    granted = json.dumps([r.inputs for r in plan.resources
                          if r.type in ("aws:kms/key:Key", "aws:s3/bucketPolicy:BucketPolicy",
                                        "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy",
                                        "aws:sns/topicPolicy:TopicPolicy")])
    assert ACCOUNTS["dev"] not in granted and dev_root not in granted


def test_datasets_and_capture_stay_private_to_the_account(shipped_plan):
    plan = shipped_plan("prod")
    for name in ("prod-datasets-policy", "prod-capture-policy"):
        assert consumer_statements(plan, name) == []


@pytest.mark.parametrize("make, message", [
    (lambda: KmsKeyArgs(description="k", s3_decrypt_account_ids=["222222222222"]),
     "s3_decrypt_account_ids and s3_decrypt_bucket_prefixes go together: give both or neither"),
    (lambda: KmsKeyArgs(description="k", s3_decrypt_account_ids=["2222"], s3_decrypt_bucket_prefixes=["b-"]),
     "s3_decrypt_account_ids: '2222' must be a 12-digit AWS account id"),
    (lambda: KmsKeyArgs(description="k", s3_decrypt_account_ids=["222222222222"], s3_decrypt_bucket_prefixes=["B*"]),
     "s3_decrypt_bucket_prefixes: 'B*' must be a bucket name or its auto-name prefix (lowercase letters, digits, "
     "'.', '-')"),
    (lambda: SecureBucketArgs(reader_account_ids=["222222222222"]),
     "reader_prefix '' must be a prefix ending in '/' (e.g. 'models/') when reader_account_ids are given: "
     "consumers never read the whole bucket"),
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
