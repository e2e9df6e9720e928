"""AWS baseline guardrails: each rule passes the components' resources and fails a raw resource with the bad setting."""

from __future__ import annotations

import functools
import json

import pulumi
import pulumi_aws as aws
import pytest

from emlops.components.iam import ServiceRole, ServiceRoleArgs
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.components.settings import Governance, Placement
from emlops.components.training import TrainingCluster, TrainingContext, TrainingSettings
from emlops.review.check import evaluate
from emlops.guardrails import RULES, Settings
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, run_components

TAGS = {"owner": "ml-platform@example.com", "cost-center": "cc-1", "data-classification": "internal"}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"
VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
PROD = Settings(production=True, environment="prod", permission_boundary_required=True)
STAGING = Settings(production=False, environment="staging", permission_boundary_required=False)
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def findings(plan: Plan, rule: str, settings: Settings = PROD) -> list[tuple[str, str]]:
    """(resource name, message) of each violation of one rule."""
    return [(v.name, v.message) for v in evaluate(plan, settings, [RULES[rule]])]


@functools.cache
def good_plan() -> Plan:
    """The components, as a production stack builds them: protected, tagged, with a permissions boundary."""
    def program() -> None:
        key = KmsKey("data", KmsKeyArgs(description="Encrypts test data", protect=True, tags=TAGS))
        logs = SecureBucket("logs", SecureBucketArgs(sse_algorithm="AES256", receives_access_logs=True, protect=True,
                                                     tags=TAGS))
        bucket = SecureBucket("data", SecureBucketArgs(kms_key_arn=key.arn, access_log_bucket=logs.bucket_name,
                                                       protect=True, tags=TAGS))
        role = ServiceRole("jobs", ServiceRoleArgs(services=["sagemaker.amazonaws.com"],
                                                   permissions_boundary_arn=BOUNDARY, tags=TAGS))
        pipeline = ServiceRole("pipeline", ServiceRoleArgs(services=["sagemaker.amazonaws.com"],
                                                           permissions_boundary_arn=BOUNDARY, tags=TAGS))
        bucket.grant_read_write(role, prefix="models/")
        role.grant_pass_to(pipeline, "sagemaker.amazonaws.com")
        owned = TrainingContext(placement=Placement(VPC, SUBNETS), region=REGION,
                                governance=Governance(TAGS, BOUNDARY, protect=True))
        TrainingCluster("jobs", TrainingSettings(kind="sagemaker"), owned)
        TrainingCluster("gpu", TrainingSettings.model_validate({"kind": "eks", "eks": {"admin_role_arns": [DEPLOYER]}}),
                        owned)
    return run_components(program)


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@functools.cache
def bad_plan() -> Plan:
    """Raw pulumi_aws resources, each with the setting a rule forbids."""
    def program() -> None:
        aws.s3.Bucket("plain-bucket", tags=TAGS)
        half = aws.s3.Bucket("half-bucket", tags=TAGS)
        aws.s3.BucketServerSideEncryptionConfiguration("half-encryption", bucket=half.id, rules=[{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}])
        aws.s3.BucketVersioning("half-versioning", bucket=half.id, versioning_configuration={"status": "Suspended"})
        aws.s3.BucketPublicAccessBlock("half-public-access", bucket=half.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=False)
        aws.s3.BucketPolicy("half-policy", bucket=half.id, policy=half.arn.apply(lambda arn: _policy(
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": arn})))
        aws.kms.Key("unrotated-key", enable_key_rotation=False, tags=TAGS)
        aws.kms.Key("untagged-key", enable_key_rotation=True, tags={"owner": "me"})
        role = aws.iam.Role("wild-role", assume_role_policy=TRUST, tags=TAGS)
        aws.iam.RolePolicy("wild-policy", role=role.id, policy=_policy(
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Allow", "Action": ["iam:Pass*"], "Resource": ["arn:aws:iam::123456789012:role/*"]}))
        aws.iam.RolePolicyAttachment("admin-attachment", role=role.name,
                                     policy_arn="arn:aws:iam::aws:policy/AmazonS3FullAccess")
        aws.ecr.Repository("mutable-repository", image_tag_mutability="MUTABLE", tags=TAGS)
        aws.cloudwatch.LogGroup("bare-logs", tags=TAGS)
        aws.sns.Topic("plain-topic", tags=TAGS)
        aws.eks.Cluster("public-cluster", role_arn=role.arn, vpc_config={"subnet_ids": SUBNETS}, tags=TAGS)
        aws.ec2.SecurityGroup("open-sg", vpc_id=VPC, tags=TAGS, ingress=[{
            "protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]}])
    return run_components(program)


# rule -> the violations of the bad plan, as (resource, message)
BAD: dict[str, list[tuple[str, str]]] = {
    "s3-bucket-sse-kms": [("plain-bucket", "bucket 'plain-bucket' has no SSE-KMS default encryption"),
                          ("half-bucket", "bucket 'half-bucket' has no SSE-KMS default encryption")],
    "s3-bucket-versioning": [("plain-bucket", "bucket 'plain-bucket' does not have versioning enabled"),
                             ("half-bucket", "bucket 'half-bucket' does not have versioning enabled")],
    "s3-bucket-public-access-blocked": [
        ("plain-bucket", "bucket 'plain-bucket' has no public access block"),
        ("half-bucket", "bucket 'half-bucket' allows public access: restrictPublicBuckets not true")],
    "s3-bucket-tls-only": [("plain-bucket", "bucket 'plain-bucket' has no policy denying requests without TLS"),
                           ("half-bucket", "bucket 'half-bucket' has no policy denying requests without TLS")],
    "kms-key-rotation": [("unrotated-key", "key rotation is off (enableKeyRotation is not true)")],
    "iam-no-wildcard-action": [("wild-policy", 'an Allow statement has "Action": "*"')],
    "iam-no-passrole-wildcard": [("wild-policy", "iam:PassRole is allowed on *"),
                                 ("wild-policy", "iam:PassRole is allowed on arn:aws:iam::123456789012:role/*")],
    "iam-no-full-access-managed-policy": [
        ("admin-attachment", "attaches the AWS-managed policy arn:aws:iam::aws:policy/AmazonS3FullAccess")],
    "iam-role-permission-boundary": [("wild-role", "the role has no permissions boundary")],
    "ecr-scan-on-push": [("mutable-repository", "images are not scanned on push")],
    "ecr-immutable-tags": [("mutable-repository", "image tags are MUTABLE")],
    "cloudwatch-log-group-retention": [("bare-logs", "log events are kept forever (no retentionInDays)")],
    "cloudwatch-log-group-kms": [("bare-logs", "the log group has no kmsKeyId")],
    "sns-topic-encrypted": [("plain-topic", "the topic has no kmsMasterKeyId")],
    "eks-private-endpoint": [("public-cluster", "the cluster API endpoint is public")],
    "eks-secrets-encryption": [("public-cluster", "Kubernetes secrets are not encrypted with a KMS key")],
    "eks-control-plane-logging": [
        ("public-cluster", "control-plane log types api, audit, authenticator are not enabled")],
    "ec2-security-group-no-open-ingress": [("open-sg", "ingress is open to 0.0.0.0/0")],
    "required-tags": [("untagged-key", "missing required tags: cost-center, data-classification")],
    "prod-stateful-protected": [(name, f"a production {kind} without protect and retainOnDelete") for name, kind in (
        ("plain-bucket", "Bucket"), ("half-bucket", "Bucket"), ("unrotated-key", "Key"), ("untagged-key", "Key"),
        ("mutable-repository", "Repository"), ("bare-logs", "LogGroup"), ("plain-topic", "Topic"),
        ("public-cluster", "Cluster"))],
}
# what each rule looks at in the good plan (so a pass is not a pass over nothing)
GOOD_TYPES = {
    "s3": "aws:s3/bucket:Bucket", "kms": "aws:kms/key:Key", "iam": "aws:iam/rolePolicy:RolePolicy",
    "ecr": "aws:ecr/repository:Repository", "cloudwatch": "aws:cloudwatch/logGroup:LogGroup",
    "sns": "aws:sns/topic:Topic", "eks": "aws:eks/cluster:Cluster", "ec2": "aws:ec2/securityGroup:SecurityGroup",
    "required": "aws:iam/role:Role", "prod": "aws:s3/bucket:Bucket",
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_rule_reports_exactly_the_bad_resources(rule):
    assert findings(bad_plan(), rule) == BAD[rule]


# the components here make no topic: ModelMonitor's is checked in test_policy_ml
@pytest.mark.parametrize("rule", sorted(set(BAD) - {"sns-topic-encrypted"}))
def test_components_comply_with_the_rule(rule):
    plan = good_plan()
    assert plan.by_type(GOOD_TYPES[rule.split("-")[0]])
    assert findings(plan, rule) == []


def test_the_access_log_bucket_may_use_sse_s3_but_no_other_bucket_may():
    plan = good_plan()
    logs = plan.get("logs-encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert logs == {"sseAlgorithm": "AES256"}
    assert plan.get("data-logging").inputs["targetBucket"] == plan.get("logs-bucket").inputs["bucket"]
    assert findings(plan, "s3-bucket-sse-kms") == []


@pytest.mark.parametrize("rule", ["prod-stateful-protected", "iam-role-permission-boundary"])
def test_production_only_rules_do_not_apply_elsewhere(rule):
    assert findings(bad_plan(), rule, STAGING) == []


def test_unprotected_components_fail_in_production():
    plan = run_components(lambda: KmsKey("scratch", KmsKeyArgs(description="Scratch key", tags=TAGS)))
    assert findings(plan, "prod-stateful-protected") == [
        ("scratch-key", "a production Key without protect and retainOnDelete")]


def test_provider_default_tags_count_as_the_resources_tags():
    def program() -> None:
        provider = aws.Provider("tagged", region=REGION, default_tags={"tags": TAGS})
        aws.sns.Topic("topic-tagged-by-provider", opts=pulumi.ResourceOptions(provider=provider))
        aws.sns.Topic("topic-without-tags")
    plan = run_components(program)
    assert findings(plan, "required-tags") == [
        ("topic-without-tags", "missing required tags: owner, cost-center, data-classification")]


def test_values_unknown_offline_are_never_violations():
    def program() -> None:
        unknown = "[unknown: models:/churn@champion]"
        aws.kms.Key("key-unknown-rotation", enable_key_rotation=unknown, tags=TAGS)  # type: ignore[arg-type]
        aws.iam.RolePolicy("policy-unknown", role="r", policy=unknown)
        aws.ecr.Repository("repository-unknown", image_tag_mutability=unknown, tags=TAGS,
                           image_scanning_configuration={"scan_on_push": unknown})  # type: ignore[dict-item]
    plan = run_components(program)
    rules = ["kms-key-rotation", "iam-no-wildcard-action", "iam-no-passrole-wildcard", "ecr-immutable-tags",
             "ecr-scan-on-push"]
    assert {rule: findings(plan, rule) for rule in rules} == {rule: [] for rule in rules}


def test_every_rule_has_metadata_and_a_test():
    """Every rule has a non-compliant case: an entry of the `BAD` table of a `tests/test_policy_*.py` module
    (a new rule's own test module declares its own; policy/README.md, "Adding a rule")."""
    import importlib
    from pathlib import Path

    modules = sorted(Path(__file__).parent.glob("test_policy_*.py"))
    covered = {rule for module in modules for rule in importlib.import_module(f"tests.{module.stem}").BAD}
    for policy in RULES.values():
        assert policy.description and policy.remediation_steps
        assert policy.enforcement_level.value in ("mandatory", "advisory")
        assert policy.severity.value in ("critical", "high", "medium", "low")
    assert covered == set(RULES)
    assert len(RULES) >= 30


def test_statement_helpers_read_iam_grammar():
    from emlops.guardrails.helpers import UNKNOWN, actions_match, allow_statements, get, parse_json

    document = parse_json(_policy({"Effect": "Allow", "Action": "IAM:passrole", "Resource": "*"},
                                  {"Effect": "Deny", "Action": ["s3:*"]}))
    assert [actions_match(s, "iam:PassRole") for s in allow_statements(document)] == [True]
    assert parse_json("[secret]") is UNKNOWN and parse_json("[unknown: x]") is UNKNOWN
    assert get({"a": {"b": "[unknown: y]"}}, "a", "b") is UNKNOWN and get({"a": None}, "a", "b", default=1) == 1

