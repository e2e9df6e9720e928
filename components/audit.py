"""The audit trail of an environment: a CloudTrail trail of its own, or the organisation's trail, checked to exist.

    audit:
      trail:                       # this stack makes a trail...
        retention_days: 2555
    # ...or names the organisation's (made in its management account), which the deploy looks up:
    #   organization_trail:
    #     trail_arn: arn:aws:cloudtrail:us-east-1:777777777777:trail/acme-organization-trail

`AuditTrail` is a multi-region trail with global service events and log-file validation (a signed digest every hour,
so a changed or deleted log file shows), its log files encrypted with a key of its own and kept in a bucket of its
own (the key and bucket policies CloudTrail documents, for exactly this trail), management events and the S3 data
events (object reads and writes) of the platform's buckets. The organisation's trail is looked up through Cloud
Control (`aws-native:cloudtrail:getTrail`) when the stack is deployed, and the deploy stops unless it logs, across
regions, with log-file validation; the offline preview cannot look it up and shows what it would check as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from emlops.components.kms import KmsKey, KmsKeyArgs, KmsSettings
from emlops.components.options import child, type_token
from emlops.components.settings import Governance, Settings, error_message
from emlops.components.storage import LifecycleRule, SecureBucket, SecureBucketArgs

__all__ = ["AuditSettings", "AuditTrail", "AuditTrailContext", "OrganizationTrailSettings", "TrailSettings",
           "check_organization_trail", "trail_arn"]

TRAIL_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:cloudtrail:[a-z]{2}(-[a-z]+)+-\d:\d{12}:trail/[A-Za-z0-9._-]{3,128}$")


class TrailSettings(Settings):
    """A trail this stack makes."""

    retention_days: int = Field(2555, ge=1, le=36500, description="Days log files are kept (then expire). Default: "
                                "2555 (seven years).")
    data_events: bool = Field(True, description="Log the S3 data events (object reads and writes) of the platform's "
                              "buckets. Default: true.")


class OrganizationTrailSettings(Settings):
    """The organisation's trail (made in its management account), which must log this account."""

    trail_arn: str = Field(description="ARN of the organisation's trail, "
                           "`arn:aws:cloudtrail:<region>:<management account>:trail/<name>`.",
                           pattern=TRAIL_ARN.pattern,
                           json_schema_extra=error_message("must be a CloudTrail trail ARN, "
                                                           "arn:aws:cloudtrail:<region>:<account>:trail/<name>"))


class AuditSettings(Settings):
    """Where the environment's API activity is recorded: exactly one of `trail` and `organization_trail`."""

    trail: Optional[TrailSettings] = Field(None, description="Make a multi-region trail with log-file validation, "
                                           "its own KMS key and bucket, and the platform buckets' S3 data events.")
    organization_trail: Optional[OrganizationTrailSettings] = Field(
        None, description="Check, when the stack is deployed, that the organisation's trail exists and logs across "
        "regions with log-file validation.")

    @model_validator(mode="after")
    def _one(self) -> "AuditSettings":
        given = [key for key in ("trail", "organization_trail") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of trail, organization_trail" + (" (got both)" if given else ""))
        return self


def trail_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{name}"


@dataclass(frozen=True)
class AuditTrailContext:
    """What the platform supplies to an `AuditTrail`."""

    trail_name: str
    """The trail's name (known, so that its key and bucket policies can name it before it exists)."""
    account_id: str
    region: str
    partition: str = "aws"
    data_bucket_arns: Sequence[pulumi.Input[str]] = ()
    """Buckets whose S3 data events are logged (with `data_events`). Default: none."""
    access_log_bucket: Optional[pulumi.Input[str]] = None
    """Bucket receiving the trail bucket's server access logs. Default: none."""
    kms: KmsSettings = field(default_factory=KmsSettings)
    """Deletion window and rotation of the trail's key."""
    governance: Governance = field(default_factory=Governance)
    """Tags, and whether the key and bucket are protected and retained (production)."""


class AuditTrail(pulumi.ComponentResource):
    """A multi-region CloudTrail trail with log-file validation, its KMS key and bucket, and S3 data events."""

    trail: aws.cloudtrail.Trail
    trail_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]

    def __init__(self, name: str, settings: TrailSettings, context: AuditTrailContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{2,127}", context.trail_name):
            raise ValueError(f"trail_name {context.trail_name!r} must be 3-128 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
        if settings.data_events and not context.data_bucket_arns:
            raise ValueError("data_events logs the platform buckets' object reads and writes: give data_bucket_arns")
        super().__init__(type_token("AuditTrail"), name, None, opts)
        governance = context.governance
        arn = trail_arn(context.partition, context.region, context.account_id, context.trail_name)
        key = KmsKey(f"{name}-logs", KmsKeyArgs(
            description=f"Encrypts the CloudTrail log files of {context.trail_name}", settings=context.kms,
            cloudtrail_trail_arns=[arn], protect=governance.protect, tags=governance.tags), opts=child(self))
        bucket = SecureBucket(f"{name}-logs", SecureBucketArgs(
            kms_key_arn=key.arn, access_log_bucket=context.access_log_bucket, cloudtrail_trail_arns=[arn],
            lifecycle_rules=[LifecycleRule(id="expire-trail-logs", expiration_days=settings.retention_days,
                                           noncurrent_version_expiration_days=1)],
            protect=governance.protect, tags=governance.tags), opts=child(self))
        selectors: list[dict[str, Any]] = [{"name": "Management events", "field_selectors": [
            {"field": "eventCategory", "equals": ["Management"]}]}]
        if settings.data_events:
            selectors.append({"name": "S3 data events of the platform's buckets", "field_selectors": [
                {"field": "eventCategory", "equals": ["Data"]},
                {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                {"field": "resources.ARN", "starts_withs": [
                    pulumi.Output.concat(bucket_arn, "/") for bucket_arn in context.data_bucket_arns]}]})
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=context.trail_name,
            s3_bucket_name=bucket.bucket_name,
            kms_key_id=key.arn,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            advanced_event_selectors=selectors,
            tags=dict(governance.tags),
            # CloudTrail checks the bucket policy when the trail is created
            opts=child(self, protect=governance.protect, depends_on=[bucket]),
        )
        self.trail_arn = self.trail.arn
        self.bucket_name = bucket.bucket_name
        self.register_outputs({"trailArn": self.trail_arn, "bucketName": self.bucket_name})


def check_organization_trail(found: Mapping[str, Any], arn: str) -> str:
    """The trail's ARN if the organisation's trail, as the deploy read it, logs across regions with log-file
    validation; ValueError in one line otherwise. A trail the offline preview could not read (its bucket shown as
    `[unknown: ...]`) is not judged."""
    bucket = found.get("s3BucketName")
    if isinstance(bucket, str) and bucket.startswith("[unknown"):
        return arn
    problems = [what for key, what in (("isLogging", "is not logging"),
                                       ("isMultiRegionTrail", "is not multi-region"),
                                       ("isOrganizationTrail", "is not an organization trail"),
                                       ("enableLogFileValidation", "does not validate its log files"))
                if found.get(key) is not True]
    if problems:
        raise ValueError(f"audit.organization_trail: {arn} {', '.join(problems)}")
    return arn
