"""SecureBucket: an S3 bucket that is encrypted, versioned, private and TLS-only by construction."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

import pulumi
import pulumi_aws as aws
from pydantic import Field

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, Statement, kms_usage_statement, name_token, policy_document
from emlops.components.kms import KmsKey, KmsKeyArgs, KmsSettings
from emlops.components.options import child, merge_tags, type_token
from emlops.components.outputs import concat
from emlops.components.settings import Settings


@dataclass(frozen=True)
class LifecycleRule:
    """One lifecycle rule of a bucket, applied to the objects under `prefix`."""

    id: str
    """Rule id, unique within the bucket."""
    prefix: str = ""
    """Key prefix the rule applies to. Default: the whole bucket."""
    expiration_days: Optional[int] = None
    """Days after which current object versions expire. Default: never."""
    noncurrent_version_expiration_days: Optional[int] = None
    """Days after which overwritten or deleted versions are removed. Default: kept."""
    abort_incomplete_multipart_upload_days: int = 7
    """Days after which unfinished multipart uploads are aborted. Default: 7."""

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9-]{1,255}$", self.id):
            raise ValueError(f"lifecycle rule id {self.id!r} must be 1-255 letters, digits or '-'")
        for label in ("expiration_days", "noncurrent_version_expiration_days",
                      "abort_incomplete_multipart_upload_days"):
            days = getattr(self, label)
            if days is not None and days < 1:
                raise ValueError(f"lifecycle rule {self.id!r}: {label} ({days}) must be at least 1")


class StorageSettings(Settings):
    """How long the platform's buckets keep what is overwritten, deleted or logged."""

    noncurrent_version_retention_days: int = Field(
        90, ge=1, le=36500,
        description="Days an overwritten or deleted object version is kept before it expires. Default: 90.")
    access_log_retention_days: int = Field(
        365, ge=1, le=36500, description="Days S3 server access logs are kept. Default: 365.")

    def keep_versions(self) -> "LifecycleRule":
        """The data buckets' rule: old versions expire after `noncurrent_version_retention_days`."""
        return LifecycleRule(id="expire-old-versions",
                             noncurrent_version_expiration_days=self.noncurrent_version_retention_days)

    def expire_access_logs(self) -> "LifecycleRule":
        """The access-log bucket's rule: logs expire after `access_log_retention_days` (old versions after a day)."""
        return LifecycleRule(id="expire-access-logs", expiration_days=self.access_log_retention_days,
                             noncurrent_version_expiration_days=1)


@dataclass(frozen=True)
class ObjectLock:
    """S3 Object Lock's default retention: every object version written is kept, unchanged and undeletable, for
    `days` (COMPLIANCE: by no one, the account root included; GOVERNANCE: except by principals allowed
    s3:BypassGovernanceRetention, which emlops grants no one)."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int

    def __post_init__(self) -> None:
        if self.mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise ValueError(f"object lock mode {self.mode!r} must be 'GOVERNANCE' or 'COMPLIANCE'")
        if isinstance(self.days, bool) or not isinstance(self.days, int) or not 1 <= self.days <= 36500:
            raise ValueError(f"object lock days ({self.days!r}) must be 1-36500")


@dataclass
class SecureBucketArgs:
    """Arguments of a `SecureBucket`."""

    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key for SSE-KMS. Default: a KMS key is created for this bucket."""
    sse_algorithm: Literal["aws:kms", "AES256"] = "aws:kms"
    """Default encryption. `AES256` (SSE-S3) exists only for buckets that receive S3 server access
    logs, which AWS cannot deliver to SSE-KMS buckets. Default: `aws:kms`."""
    access_log_bucket: Optional[pulumi.Input[str]] = None
    """Name of the bucket that receives this bucket's server access logs. Default: no access logs."""
    access_log_prefix: Optional[str] = None
    """Key prefix of this bucket's logs in `access_log_bucket`. Default: `<component name>/`."""
    receives_access_logs: bool = False
    """Allow the S3 logging service of this account to write access logs here. Default: false."""
    lifecycle_rules: Sequence[LifecycleRule] = ()
    """Lifecycle rules. Default: none."""
    kms: KmsSettings = field(default_factory=KmsSettings)
    """Deletion window and rotation of the key created for the bucket. Default: 30 days, yearly."""
    reader_account_ids: Sequence[str] = ()
    """Other accounts that may read objects under `reader_prefix` (the promotion path: consumer
    accounts deploying model artifacts). Default: none."""
    writer_account_ids: Sequence[str] = ()
    """Other accounts that may list, read and write objects under `reader_prefix` (publisher accounts
    registering model artifacts into a shared registry). The bucket owner owns what they write (ACLs
    are disabled). Default: none."""
    reader_prefix: str = ""
    """The prefix `reader_account_ids` may read and `writer_account_ids` write, e.g. `models/`. Required
    with them."""
    protect: bool = False
    """Protect the bucket (and its own key) and retain them on delete (production). Default: false."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the bucket and its key. Default: none."""
    object_lock: Optional[ObjectLock] = None
    """Keep every object version for a while (S3 Object Lock, enabled on the versioned bucket). Default: none."""
    eventbridge: bool = False
    """Send the bucket's object events to EventBridge, whose rules pick the ones they act on (a batch transform
    started by new data). Default: false."""
    cloudtrail_trail_arns: Sequence[pulumi.Input[str]] = ()
    """Trails of this account that deliver their log files here, under `AWSLogs/<account>/` (CloudTrail's
    documented bucket policy, for exactly these trails). Default: none."""

    def __post_init__(self) -> None:
        if self.sse_algorithm not in ("aws:kms", "AES256"):
            raise ValueError(f"sse_algorithm {self.sse_algorithm!r} must be 'aws:kms' or 'AES256'")
        if self.sse_algorithm == "AES256" and not self.receives_access_logs:
            raise ValueError("sse_algorithm 'AES256' is only for access-log buckets "
                             "(set receives_access_logs=True); use SSE-KMS for data")
        if self.sse_algorithm == "AES256" and self.kms_key_arn is not None:
            raise ValueError("kms_key_arn is set but sse_algorithm is 'AES256'; drop one of them")
        if self.access_log_prefix is not None and self.access_log_bucket is None:
            raise ValueError("access_log_prefix is set without access_log_bucket")
        ids = [rule.id for rule in self.lifecycle_rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"lifecycle rule ids must be unique; repeated: {', '.join(duplicates)}")
        for label in ("reader_account_ids", "writer_account_ids"):
            for account in getattr(self, label):
                if not re.match(r"^[0-9]{12}$", str(account)):
                    raise ValueError(f"{label}: {account!r} must be a 12-digit AWS account id")
        if (self.reader_account_ids or self.writer_account_ids) and not re.match(r"^[^/*][^*]*/$", self.reader_prefix):
            raise ValueError(f"reader_prefix {self.reader_prefix!r} must be a prefix ending in '/' (e.g. 'models/') "
                             "when reader_account_ids or writer_account_ids are given: other accounts never reach "
                             "the whole bucket")


class SecureBucket(pulumi.ComponentResource):
    """A private S3 bucket: SSE-KMS with a bucket key, versioning, all public access blocked,
    object ownership enforced (no ACLs), and a policy that denies requests without TLS 1.2+.
    """

    bucket: aws.s3.Bucket
    key: Optional[KmsKey]
    arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    kms_key_arn: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: SecureBucketArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("SecureBucket"), name, None, opts)
        tags = merge_tags(args.tags)

        self.key = None
        self.kms_key_arn = None
        if args.sse_algorithm == "aws:kms":
            if args.kms_key_arn is None:
                self.key = KmsKey(f"{name}-key", KmsKeyArgs(
                    description=f"Encrypts the objects of the {name} bucket",
                    settings=args.kms,
                    protect=args.protect,
                    tags=tags,
                ), opts=child(self))
                self.kms_key_arn = self.key.arn
            else:
                self.kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            force_destroy=False,
            tags=tags,
            opts=child(self, protect=args.protect),
        )
        bucket_id = self.bucket.id
        self.arn = self.bucket.arn
        self.bucket_name = self.bucket.bucket

        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child(self),
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child(self),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
            opts=child(self),
        )
        if args.object_lock is not None:
            # S3 enables Object Lock on a versioned bucket in place (the bucket is not replaced)
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=bucket_id,
                object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": args.object_lock.mode, "days": args.object_lock.days}},
                opts=child(self, depends_on=[versioning]),
            )
        default_encryption = {"sse_algorithm": args.sse_algorithm}
        if self.kms_key_arn is not None:
            default_encryption["kms_master_key_id"] = self.kms_key_arn
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[{
                "apply_server_side_encryption_by_default": default_encryption,
                "bucket_key_enabled": args.sse_algorithm == "aws:kms",
            }],
            opts=child(self),
        )
        # S3 rejects concurrent configuration changes on one bucket, so the policy waits for the
        # public access block and ownership controls.
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=policy_document(self._policy_statements(args)),
            opts=child(self, depends_on=[public_access, ownership]),
        )
        if args.lifecycle_rules:
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle",
                bucket=bucket_id,
                rules=[_lifecycle_rule(rule) for rule in args.lifecycle_rules],
                # noncurrent-version rules only mean something once versioning is on
                opts=child(self, depends_on=[versioning]),
            )
        if args.eventbridge:
            aws.s3.BucketNotification(f"{name}-events", bucket=bucket_id, eventbridge=True, opts=child(self))
        if args.access_log_bucket is not None:
            aws.s3.BucketLogging(
                f"{name}-logging",
                bucket=bucket_id,
                target_bucket=args.access_log_bucket,
                target_prefix=args.access_log_prefix or f"{name}/",
                opts=child(self),
            )
        self.register_outputs({"arn": self.arn, "bucketName": self.bucket_name, "kmsKeyArn": self.kms_key_arn})

    def _policy_statements(self, args: SecureBucketArgs) -> list[Statement]:
        everything = [self.arn, concat(self.arn, "/*")]
        denials = [("DenyInsecureTransport", {"Bool": {"aws:SecureTransport": "false"}}),
                   ("DenyOutdatedTls", {"NumericLessThan": {"s3:TlsVersion": "1.2"}})]
        statements = [
            Statement(sid=sid, effect="Deny", principals="*", actions=["s3:*"], resources=everything,
                      conditions=condition)
            for sid, condition in denials
        ]
        if args.reader_account_ids:
            partition = aws_context(self).partition
            statements.append(Statement(
                sid="ConsumerAccountsReadPrefix",
                principals={"AWS": [concat("arn:", partition, ":iam::", account, ":root")
                                    for account in args.reader_account_ids]},
                actions=["s3:GetObject"],
                resources=[concat(self.arn, "/", args.reader_prefix, "*")],
            ))
        if args.writer_account_ids:
            partition = aws_context(self).partition
            writers = {"AWS": [concat("arn:", partition, ":iam::", account, ":root")
                               for account in args.writer_account_ids]}
            statements += [
                Statement(sid="PublisherAccountsListPrefix", principals=writers, actions=["s3:ListBucket"],
                          resources=[self.arn], conditions={"StringLike": {"s3:prefix": [f"{args.reader_prefix}*"]}}),
                Statement(sid="PublisherAccountsWritePrefix", principals=writers,
                          actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                          resources=[concat(self.arn, "/", args.reader_prefix, "*")]),
            ]
        if args.receives_access_logs:
            account_id = aws_context(self).account_id
            statements.append(Statement(
                sid="S3ServerAccessLogsFromThisAccount",
                principals={"Service": ["logging.s3.amazonaws.com"]},
                actions=["s3:PutObject"],
                resources=[concat(self.arn, "/*")],
                conditions={"StringEquals": {"aws:SourceAccount": account_id}},
            ))
        if args.cloudtrail_trail_arns:
            trails = {"aws:SourceArn": list(args.cloudtrail_trail_arns)}
            cloudtrail = {"Service": ["cloudtrail.amazonaws.com"]}
            statements += [
                Statement(sid="CloudTrailAclCheck", principals=cloudtrail, actions=["s3:GetBucketAcl"],
                          resources=[self.arn], conditions={"StringEquals": trails}),
                Statement(sid="CloudTrailWrite", principals=cloudtrail, actions=["s3:PutObject"],
                          resources=[concat(self.arn, "/AWSLogs/", aws_context(self).account_id, "/*")],
                          conditions={"StringEquals": {**trails, "s3:x-amz-acl": "bucket-owner-full-control"}}),
            ]
        return statements

    # ---------------------------------------------------------------------------------------------
    # Grants: least-privilege statements for a role, scoped to this bucket, a prefix and its key.

    def grant_read(self, role: ServiceRole, prefix: str = "") -> aws.iam.RolePolicy:
        """Let `role` list and read objects under `prefix` (and decrypt them through S3 only)."""
        return role.add_policy(f"read-{name_token(self._name)}{_suffix(prefix)}", self._read_statements(prefix))

    def grant_write(self, role: ServiceRole, prefix: str = "") -> aws.iam.RolePolicy:
        """Let `role` write objects under `prefix` (and encrypt them through S3 only)."""
        return role.add_policy(f"write-{name_token(self._name)}{_suffix(prefix)}", self._write_statements(prefix))

    def grant_read_write(self, role: ServiceRole, prefix: str = "") -> aws.iam.RolePolicy:
        """Let `role` read and write objects under `prefix`."""
        statements = self._read_statements(prefix, kms=False) + self._write_statements(prefix, kms=False)
        if self.kms_key_arn is not None:
            statements.append(self._kms_statement(encrypt=True))
        return role.add_policy(f"read-write-{name_token(self._name)}{_suffix(prefix)}", statements)

    def access_statements(self, read: Sequence[str] = (), write: Sequence[str] = ()) -> list[Statement]:
        """Statements (for a policy of their own or a concern of a bigger one) that read objects under each prefix
        of `read` and write objects under each prefix of `write`, with this bucket's key through S3 only."""
        statements = [s for prefix in read for s in self._read_statements(prefix, kms=False)]
        statements += [s for prefix in write for s in self._write_statements(prefix, kms=False)]
        if self.kms_key_arn is not None and (read or write):
            statements.append(self._kms_statement(encrypt=bool(write)))
        return statements

    def _objects(self, prefix: str) -> pulumi.Output[str]:
        _check_prefix(prefix)
        return concat(self.arn, "/", prefix, "*")

    def _read_statements(self, prefix: str, kms: bool = True) -> list[Statement]:
        listing = Statement(
            actions=["s3:ListBucket"],
            resources=[self.arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None,
        )
        statements = [listing, Statement(actions=["s3:GetObject", "s3:GetObjectVersion"],
                                         resources=[self._objects(prefix)])]
        if kms and self.kms_key_arn is not None:
            statements.append(self._kms_statement(encrypt=False))
        return statements

    def _write_statements(self, prefix: str, kms: bool = True) -> list[Statement]:
        statements = [Statement(actions=["s3:AbortMultipartUpload", "s3:PutObject"],
                                resources=[self._objects(prefix)])]
        if kms and self.kms_key_arn is not None:
            statements.append(self._kms_statement(encrypt=True))
        return statements

    def _kms_statement(self, *, encrypt: bool) -> Statement:
        via_s3 = aws_context(self).service_endpoint("s3")
        return kms_usage_statement(self.kms_key_arn, encrypt=encrypt, decrypt=True, via_service=via_s3)


def _check_prefix(prefix: str) -> None:
    if prefix and (prefix.startswith("/") or not prefix.endswith("/") or "*" in prefix):
        raise ValueError(f"prefix {prefix!r} must end with '/', not start with '/', and have no '*'")


def _suffix(prefix: str) -> str:
    _check_prefix(prefix)
    cleaned = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")
    return f"-{cleaned}" if cleaned else ""


def _lifecycle_rule(rule: LifecycleRule) -> dict:
    out: dict = {
        "id": rule.id,
        "status": "Enabled",
        "filter": {"prefix": rule.prefix},
        "abort_incomplete_multipart_upload": {"days_after_initiation": rule.abort_incomplete_multipart_upload_days},
    }
    if rule.expiration_days is not None:
        out["expiration"] = {"days": rule.expiration_days}
    if rule.noncurrent_version_expiration_days is not None:
        out["noncurrent_version_expiration"] = {"noncurrent_days": rule.noncurrent_version_expiration_days}
    return out
