"""AWS baseline rules: S3, KMS, IAM, ECR, CloudWatch Logs, SNS, EKS and security groups.

pulumi_aws v7 splits a bucket into `aws:s3/bucket:Bucket` and one resource per setting
(`BucketServerSideEncryptionConfiguration`, `BucketVersioning`, `BucketPublicAccessBlock`,
`BucketPolicy`, ...), each naming the bucket in its `bucket` input, so the bucket rules are stack
rules that join them by bucket name (or, when the name is not known yet, by dependency).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Optional

from pulumi_policy import PolicyResource

from emlops.catalog import resources_iam as iam
from emlops.catalog import resources_network as network
from emlops.catalog import resources_storage as storage
from emlops.catalog.resources_eks import CLUSTER
from emlops.catalog.resources_operations import LOG_GROUP, TOPIC
from emlops.guardrails.helpers import (
    UNKNOWN,
    Finding,
    Settings,
    actions_match,
    allow_statements,
    as_list,
    get,
    is_list,
    items,
    of_type,
    parse_json,
    resource_rule,
    stack_rule,
    text,
)

BUCKET = storage.BUCKET.token
BUCKET_V2 = storage.BUCKET_V2.token
SSE = (storage.BUCKET_ENCRYPTION.token, storage.BUCKET_ENCRYPTION_V2.token)
VERSIONING = (storage.BUCKET_VERSIONING.token, storage.BUCKET_VERSIONING_V2.token)
PUBLIC_ACCESS = (storage.BUCKET_PUBLIC_ACCESS_BLOCK.token,)
BUCKET_POLICY = (storage.BUCKET_POLICY.token,)
LOGGING = (storage.BUCKET_LOGGING.token, storage.BUCKET_LOGGING_V2.token)
POLICY_DOCUMENTS = {
    iam.ROLE_POLICY.token: "policy", iam.POLICY.token: "policy",
    iam.USER_POLICY.token: "policy", iam.GROUP_POLICY.token: "policy",
}
ATTACHMENTS = (iam.ROLE_POLICY_ATTACHMENT.token, iam.POLICY_ATTACHMENT.token, iam.USER_POLICY_ATTACHMENT.token,
               iam.GROUP_POLICY_ATTACHMENT.token)
ROLE = iam.ROLE.token
FULL_ACCESS = re.compile(r":iam::aws:policy/(.*/)?[^/]*FullAccess")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
EKS_LOG_TYPES = ("api", "audit", "authenticator")


# ------------------------------------------------------------------------------------------------
# S3: a bucket and its configuration resources


def _bucket_settings(resources: list[PolicyResource], types: Iterable[str]) -> dict[str, list[PolicyResource]]:
    """Configuration resources of `types` per bucket URN."""
    buckets = of_type(resources, BUCKET, BUCKET_V2)
    by_name = {name: b.urn for b in buckets for name in (text(get(b.props, "bucket")), text(get(b.props, "id")))
               if name}
    urns = {b.urn for b in buckets}
    out: dict[str, list[PolicyResource]] = {b.urn: [] for b in buckets}
    for setting in of_type(resources, *types):
        owner = by_name.get(text(get(setting.props, "bucket")) or "")
        if owner is None:  # name not known yet: the bucket it depends on
            owner = next((d.urn for d in setting.dependencies if d.urn in urns), None)
        if owner is not None:
            out[owner].append(setting)
    return out


def _buckets(resources: list[PolicyResource]) -> list[PolicyResource]:
    return of_type(resources, BUCKET, BUCKET_V2)


def _log_targets(resources: list[PolicyResource]) -> tuple[set[str], bool]:
    """Names of buckets that receive S3 server access logs (AWS cannot deliver them to SSE-KMS buckets),
    and whether some target is not known yet."""
    targets = [get(r.props, "targetBucket") for r in of_type(resources, *LOGGING)]
    for bucket in _buckets(resources):
        targets.append(get(bucket.props, "logging", "targetBucket"))
        targets.extend(get(entry, "targetBucket") for entry in items(get(bucket.props, "loggings")))
    return {t for t in map(text, targets) if t}, any(t is UNKNOWN for t in targets)


def _kms_rules(rules: Any) -> Optional[bool]:
    """True when every default-encryption rule is SSE-KMS with a key, False when one is not, None when unknown."""
    if rules is UNKNOWN:
        return None
    rules = items(rules) if is_list(rules) else [] if rules is None else [rules]
    if not rules or UNKNOWN in rules:
        return None if UNKNOWN in rules else False
    verdicts = []
    for rule in rules:
        algorithm = get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        key = get(rule, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
        if algorithm is UNKNOWN or key is UNKNOWN:
            return None
        verdicts.append(algorithm in ("aws:kms", "aws:kms:dsse") and bool(key))
    return all(verdicts)


@stack_rule("s3-bucket-sse-kms", severity="critical",
            description="S3 buckets are encrypted with SSE-KMS under a customer-managed key.",
            remediation="Create the bucket with components.storage.SecureBucket (SSE-KMS by default) or add a "
                        "BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms' and kms_master_key_id.")
def s3_bucket_sse_kms(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    settings_of = _bucket_settings(resources, SSE)
    log_targets, some_unknown = _log_targets(resources)
    for bucket in _buckets(resources):
        name = text(get(bucket.props, "bucket"))
        verdicts = [_kms_rules(get(s.props, "rules")) for s in settings_of[bucket.urn]]
        inline = get(bucket.props, "serverSideEncryptionConfiguration", "rule")
        if inline is not None:
            verdicts.append(_kms_rules(inline))
        if None in verdicts or any(verdicts):
            continue
        if _aes256_only(settings_of[bucket.urn]) and (name is None or name in log_targets or some_unknown):
            continue  # server access logs can only be delivered to SSE-S3 buckets (or it may be such a bucket)
        yield (f"bucket {bucket.name!r} has no SSE-KMS default encryption", bucket.urn)


def _aes256_only(configurations: list[PolicyResource]) -> bool:
    algorithms = [get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
                  for c in configurations for rule in items(get(c.props, "rules"))]
    return bool(algorithms) and all(a == "AES256" for a in algorithms)


@stack_rule("s3-bucket-versioning", severity="medium",
            description="S3 buckets keep object versions, so overwritten or deleted data can be recovered.",
            remediation="Use SecureBucket or add a BucketVersioning with versioning_configuration status 'Enabled'.")
def s3_bucket_versioning(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    settings_of = _bucket_settings(resources, VERSIONING)
    for bucket in _buckets(resources):
        statuses = [get(v.props, "versioningConfiguration", "status") for v in settings_of[bucket.urn]]
        inline = get(bucket.props, "versioning", "enabled")
        if UNKNOWN in statuses or inline is UNKNOWN or "Enabled" in statuses or inline is True:
            continue
        yield (f"bucket {bucket.name!r} does not have versioning enabled", bucket.urn)


@stack_rule("s3-bucket-public-access-blocked", severity="critical",
            description="S3 buckets block every kind of public access (all four public access block settings).",
            remediation="Use SecureBucket or add a BucketPublicAccessBlock with block_public_acls, "
                        "block_public_policy, ignore_public_acls and restrict_public_buckets all true.")
def s3_bucket_public_access_blocked(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    settings_of = _bucket_settings(resources, PUBLIC_ACCESS)
    for bucket in _buckets(resources):
        blocks = settings_of[bucket.urn]
        flags = [get(b.props, flag) for b in blocks for flag in PUBLIC_ACCESS_FLAGS]
        if UNKNOWN in flags:
            continue
        if not blocks:
            yield (f"bucket {bucket.name!r} has no public access block", bucket.urn)
        elif not any(all(get(b.props, flag) is True for flag in PUBLIC_ACCESS_FLAGS) for b in blocks):
            off = [f for f in PUBLIC_ACCESS_FLAGS if not any(get(b.props, f) is True for b in blocks)]
            yield (f"bucket {bucket.name!r} allows public access: {', '.join(off)} not true", bucket.urn)


def _denies_insecure_transport(document: Any) -> bool:
    for statement in as_list(get(document, "Statement")):
        condition = [str(c).lower() for c in as_list(get(statement, "Condition", "Bool", "aws:SecureTransport"))]
        if get(statement, "Effect") == "Deny" and condition == ["false"] and (
                actions_match(statement, "s3:GetObject") and actions_match(statement, "s3:PutObject")):
            return True
    return False


@stack_rule("s3-bucket-tls-only", severity="high",
            description="S3 bucket policies deny every request that does not use TLS (aws:SecureTransport).",
            remediation="Use SecureBucket or add a BucketPolicy statement that denies s3:* to Principal '*' "
                        "when aws:SecureTransport is false.")
def s3_bucket_tls_only(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    settings_of = _bucket_settings(resources, BUCKET_POLICY)
    for bucket in _buckets(resources):
        documents = [parse_json(get(p.props, "policy")) for p in settings_of[bucket.urn]]
        inline = get(bucket.props, "policy")
        if inline is not None:
            documents.append(parse_json(inline))
        if UNKNOWN in documents or any(_denies_insecure_transport(d) for d in documents):
            continue
        yield (f"bucket {bucket.name!r} has no policy denying requests without TLS", bucket.urn)


# ------------------------------------------------------------------------------------------------
# KMS and IAM


@resource_rule("kms-key-rotation", types=[storage.KMS_KEY.token], severity="high",
               description="Symmetric customer-managed KMS keys rotate their key material automatically.",
               remediation="Create keys with components.kms.KmsKey (rotation always on) or set "
                           "enable_key_rotation=True.")
def kms_key_rotation(props: Any, settings: Settings) -> Iterator[str]:
    spec = get(props, "customerMasterKeySpec", default="SYMMETRIC_DEFAULT")
    rotation = get(props, "enableKeyRotation", default=False)
    if spec == "SYMMETRIC_DEFAULT" and rotation is False:
        yield "key rotation is off (enableKeyRotation is not true)"


@resource_rule("iam-no-wildcard-action", types=[*POLICY_DOCUMENTS, ROLE], severity="critical",
               description="IAM policies never allow every action (\"Action\": \"*\").",
               remediation="Name the service actions the principal needs (components.iam.Statement refuses '*').")
def iam_no_wildcard_action(props: Any, settings: Settings) -> Iterator[str]:
    for document in _all_documents(props):
        for statement in allow_statements(document):
            if any(a in ("*", "*:*") for a in as_list(get(statement, "Action"))):
                yield "an Allow statement has \"Action\": \"*\""


@resource_rule("iam-no-passrole-wildcard", types=[*POLICY_DOCUMENTS, ROLE], severity="critical",
               description="IAM policies allow iam:PassRole only on named roles, never on '*'.",
               remediation="List the role ARNs that may be passed and add an iam:PassedToService condition "
                           "(ServiceRole.grant_pass_to does both).")
def iam_no_passrole_wildcard(props: Any, settings: Settings) -> Iterator[str]:
    for document in _all_documents(props):
        for statement in allow_statements(document):
            resources = [r for r in as_list(get(statement, "Resource")) if isinstance(r, str)]
            if actions_match(statement, "iam:PassRole") and any("*" in r for r in resources):
                yield f"iam:PassRole is allowed on {', '.join(r for r in resources if '*' in r)}"


def _all_documents(props: Any) -> list[Any]:
    """Policy documents of an IAM resource: `policy` of a policy, `inlinePolicies` of a role."""
    documents = [parse_json(get(p, "policy")) for p in items(get(props, "inlinePolicies"))]
    policy = get(props, "policy")
    if policy is not None:
        documents.append(parse_json(policy))
    return documents


@resource_rule("iam-no-full-access-managed-policy", types=[*ATTACHMENTS, ROLE], severity="high",
               description="No AWS-managed *FullAccess policy is attached to a role, user or group.",
               remediation="Grant narrow statements instead (bucket.grant_read(role), key.grant_decrypt(role), "
                           "role.add_policy(...)).")
def iam_no_full_access(props: Any, settings: Settings) -> Iterator[str]:
    arns = [get(props, "policyArn"), *items(get(props, "managedPolicyArns"))]
    for arn in arns:
        if isinstance(text(arn), str) and FULL_ACCESS.search(arn):
            yield f"attaches the AWS-managed policy {arn}"


@resource_rule("iam-role-permission-boundary", types=[ROLE], severity="high", config=["permissionBoundaryRequired"],
               description="Every IAM role carries a permissions boundary when the stack configures one.",
               remediation="Pass permissions_boundary_arn to the component (ServiceRoleArgs, ...); the platform "
                           "passes emlops:platform.permission_boundary_arn to every role.")
def iam_role_permission_boundary(props: Any, settings: Settings) -> Iterator[str]:
    if settings.permission_boundary_required and get(props, "permissionsBoundary") in (None, ""):
        yield "the role has no permissions boundary"


# ------------------------------------------------------------------------------------------------
# ECR, CloudWatch Logs, SNS


@resource_rule("ecr-scan-on-push", types=[storage.ECR_REPOSITORY.token], severity="medium",
               description="ECR repositories scan every image for vulnerabilities when it is pushed.",
               remediation="Set image_scanning_configuration={'scan_on_push': True} (TrainingCluster does).")
def ecr_scan_on_push(props: Any, settings: Settings) -> Iterator[str]:
    if get(props, "imageScanningConfiguration", "scanOnPush", default=False) is False:
        yield "images are not scanned on push"


@resource_rule("ecr-immutable-tags", types=[storage.ECR_REPOSITORY.token], severity="medium",
               description="ECR image tags are immutable, so a deployed tag always names the same image.",
               remediation="Set image_tag_mutability='IMMUTABLE' and push a new tag for each build.")
def ecr_immutable_tags(props: Any, settings: Settings) -> Iterator[str]:
    mutability = get(props, "imageTagMutability", default="MUTABLE")
    if mutability is not UNKNOWN and not str(mutability).startswith("IMMUTABLE"):
        yield f"image tags are {mutability}"


@resource_rule("cloudwatch-log-group-retention", types=[LOG_GROUP.token], severity="low",
               enforcement="advisory",
               description="CloudWatch log groups expire their events after a set retention.",
               remediation="Set retention_in_days (e.g. 365), as TrainingCluster does for its EKS control plane.")
def log_group_retention(props: Any, settings: Settings) -> Iterator[str]:
    if get(props, "retentionInDays", default=0) == 0:
        yield "log events are kept forever (no retentionInDays)"


@resource_rule("cloudwatch-log-group-kms", types=[LOG_GROUP.token], severity="medium",
               description="CloudWatch log groups are encrypted with a customer-managed KMS key.",
               remediation="Set kms_key_id to a KmsKey whose service_principals include logs.<region>.amazonaws.com.")
def log_group_kms(props: Any, settings: Settings) -> Iterator[str]:
    if get(props, "kmsKeyId") in (None, ""):
        yield "the log group has no kmsKeyId"


@resource_rule("sns-topic-encrypted", types=[TOPIC.token], severity="medium",
               description="SNS topics are encrypted at rest with KMS.",
               remediation="Set kms_master_key_id (ModelMonitor creates a key for its topic).")
def sns_topic_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    if get(props, "kmsMasterKeyId") in (None, ""):
        yield "the topic has no kmsMasterKeyId"


# ------------------------------------------------------------------------------------------------
# EKS and security groups

EKS_CLUSTER = [CLUSTER.token]


@resource_rule("eks-private-endpoint", types=EKS_CLUSTER, severity="high",
               description="EKS cluster API endpoints are private (no public endpoint).",
               remediation="Set vpc_config endpoint_public_access=False and endpoint_private_access=True; reach "
                           "the API through a VPN or from CI runners in the VPC.")
def eks_private_endpoint(props: Any, settings: Settings) -> Iterator[str]:
    public = get(props, "vpcConfig", "endpointPublicAccess", default=True)  # AWS's default is public
    private = get(props, "vpcConfig", "endpointPrivateAccess", default=False)
    if public is True:
        yield "the cluster API endpoint is public"
    elif private is False:
        yield "the cluster API endpoint is not private"


@resource_rule("eks-secrets-encryption", types=EKS_CLUSTER, severity="high",
               description="EKS clusters encrypt Kubernetes secrets with a KMS key (envelope encryption).",
               remediation="Set encryption_config={'provider': {'key_arn': ...}, 'resources': ['secrets']}.")
def eks_secrets_encryption(props: Any, settings: Settings) -> Iterator[str]:
    config = get(props, "encryptionConfig")
    if config is UNKNOWN:
        return
    key = get(config, "provider", "keyArn")
    resources = get(config, "resources", default=[])
    if key is UNKNOWN or resources is UNKNOWN or UNKNOWN in items(resources):
        return
    if not key or "secrets" not in items(resources):
        yield "Kubernetes secrets are not encrypted with a KMS key"


@resource_rule("eks-control-plane-logging", types=EKS_CLUSTER, severity="medium",
               description="EKS clusters send their api, audit and authenticator logs to CloudWatch.",
               remediation="Set enabled_cluster_log_types to at least ['api', 'audit', 'authenticator'].")
def eks_control_plane_logging(props: Any, settings: Settings) -> Iterator[str]:
    enabled = get(props, "enabledClusterLogTypes", default=[])
    if enabled is UNKNOWN or UNKNOWN in items(enabled):
        return
    missing = [t for t in EKS_LOG_TYPES if t not in items(enabled)]
    if missing:
        yield f"control-plane log types {', '.join(missing)} are not enabled"


OPEN = ("0.0.0.0/0", "::/0")


@resource_rule("ec2-security-group-no-open-ingress",
               types=[network.SECURITY_GROUP.token, network.SECURITY_GROUP_RULE.token,
                      network.SECURITY_GROUP_INGRESS_RULE.token],
               severity="high",
               description="Security groups accept no inbound traffic from the whole internet.",
               remediation="Allow ingress only from the security groups or private CIDRs that need it.")
def security_group_no_open_ingress(props: Any, settings: Settings) -> Iterator[str]:
    rules = items(get(props, "ingress"))
    if get(props, "type") == "ingress" or get(props, "cidrIpv4") is not None or get(props, "cidrIpv6") is not None:
        rules.append(props)
    for rule in rules:
        cidrs = [*as_list(get(rule, "cidrBlocks")), *as_list(get(rule, "ipv6CidrBlocks")),
                 get(rule, "cidrIpv4"), get(rule, "cidrIpv6")]
        for cidr in cidrs:
            if cidr in OPEN:
                yield f"ingress is open to {cidr}"


POLICIES = [
    s3_bucket_sse_kms, s3_bucket_versioning, s3_bucket_public_access_blocked, s3_bucket_tls_only,
    kms_key_rotation, iam_no_wildcard_action, iam_no_passrole_wildcard, iam_no_full_access,
    iam_role_permission_boundary, ecr_scan_on_push, ecr_immutable_tags, log_group_retention, log_group_kms,
    sns_topic_encrypted, eks_private_endpoint, eks_secrets_encryption, eks_control_plane_logging,
    security_group_no_open_ingress,
]
