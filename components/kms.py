"""KmsKey: a customer-managed symmetric key with rotation, a narrow key policy and an alias."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws
from pydantic import Field

from emlops.catalog.aws import partition_of
from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, Statement, kms_usage_statement, name_token, policy_document
from emlops.components.options import child, merge_tags, type_token
from emlops.components.outputs import concat
from emlops.components.settings import Settings


# What a key policy lets a named user do: use the key, never manage it.
_KEY_USE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]


def _logs_principal(region: pulumi.Input[str]) -> pulumi.Output[str]:
    """CloudWatch Logs of `region`: `logs.<region>.<the partition's DNS suffix>`."""
    return pulumi.Output.from_input(region).apply(lambda name: f"logs.{name}.{partition_of(name).dns_suffix}")


class KmsSettings(Settings):
    """How the customer-managed KMS keys are kept: their deletion window and rotation period."""

    deletion_window_days: int = Field(
        30, ge=7, le=30,
        description="Days a key stays recoverable after it is scheduled for deletion (AWS allows 7-30). "
        "Default: 30.")
    rotation_period_days: int = Field(
        365, ge=90, le=2560,
        description="Days between automatic rotations (AWS allows 90-2560); rotation is always on. Default: 365.")


@dataclass
class KmsKeyArgs:
    """Arguments of a `KmsKey`."""

    description: str
    """What the key protects; shown in the KMS console."""
    alias: Optional[str] = None
    """Alias name without the `alias/` prefix. Default: `emlops/<component name>`."""
    settings: KmsSettings = field(default_factory=KmsSettings)
    """Deletion window and rotation period. Default: 30 days, yearly rotation."""
    user_role_arns: Sequence[pulumi.Input[str]] = ()
    """Roles the key policy lets encrypt and decrypt with the key (in addition to IAM grants through
    the account). Default: none."""
    service_principals: Sequence[str] = ()
    """Service principals (e.g. `logs.eu-west-1.amazonaws.com`) allowed to use the key on behalf of
    this account only. Default: none."""
    log_group_arns: Sequence[pulumi.Input[str]] = ()
    """Log groups whose events CloudWatch Logs of the key's region (`logs.<region>.amazonaws.com`) may encrypt
    with the key: exactly these groups, named in the encryption context (a component's own log group). Default:
    none."""
    s3_decrypt_account_ids: Sequence[str] = ()
    """Other accounts that may decrypt with the key, only through S3 and only for the buckets named by
    `s3_decrypt_bucket_prefixes` (the promotion path: consumer accounts reading model artifacts; the
    bucket's own policy narrows them to a prefix). Default: none."""
    s3_encrypt_account_ids: Sequence[str] = ()
    """Other accounts that may also encrypt with the key, only through S3 and only for the buckets named
    by `s3_decrypt_bucket_prefixes` (publisher accounts writing model artifacts into a shared registry's
    bucket). Default: none."""
    s3_decrypt_bucket_prefixes: Sequence[str] = ()
    """Bucket names, or auto-name prefixes such as `prod-artifacts-bucket-`, whose objects those accounts
    may decrypt (and publishers encrypt). Required with `s3_decrypt_account_ids` or `s3_encrypt_account_ids`."""
    cloudtrail_trail_arns: Sequence[pulumi.Input[str]] = ()
    """Trails of this account that encrypt their log files with the key (CloudTrail's documented key policy, for
    exactly these trails). Default: none."""
    protect: bool = False
    """Protect the key and retain it on delete (production stacks). Default: false."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the key. Default: none."""

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise ValueError("KmsKey needs a description of what it protects")
        for label in ("s3_decrypt_account_ids", "s3_encrypt_account_ids"):
            for account in getattr(self, label):
                if not re.match(r"^[0-9]{12}$", str(account)):
                    raise ValueError(f"{label}: {account!r} must be a 12-digit AWS account id")
        if bool(self.s3_decrypt_account_ids or self.s3_encrypt_account_ids) != bool(self.s3_decrypt_bucket_prefixes):
            raise ValueError("s3_decrypt_account_ids (or s3_encrypt_account_ids) and s3_decrypt_bucket_prefixes go "
                             "together: give both or neither")
        for prefix in self.s3_decrypt_bucket_prefixes:
            if not re.match(r"^[a-z0-9][a-z0-9.-]{2,62}$", prefix):
                raise ValueError(f"s3_decrypt_bucket_prefixes: {prefix!r} must be a bucket name or its auto-name "
                                 "prefix (lowercase letters, digits, '.', '-')")
        if self.alias is not None and self.alias.startswith("alias/"):
            raise ValueError(f"alias {self.alias!r}: give the name without the 'alias/' prefix")
        if self.alias is not None and (
            not re.match(r"^[a-zA-Z0-9/_-]{1,250}$", self.alias) or self.alias.lower().startswith("aws/")
        ):
            raise ValueError(
                f"alias {self.alias!r} must be 1-250 letters, digits, '/', '_' or '-' and not start with 'aws/'"
            )
        for service in self.service_principals:
            if not re.match(r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$", service):
                raise ValueError(f"service principal {service!r} must look like 'logs.eu-west-1.amazonaws.com'")


class KmsKey(pulumi.ComponentResource):
    """A symmetric customer-managed KMS key with yearly rotation and an alias.

    The key policy grants the account root (so IAM policies can delegate use of the key, as AWS's
    default key policy does), the roles in `user_role_arns`, the listed service principals on
    behalf of this account only, and CloudWatch Logs for the log groups in `log_group_arns`.
    Nothing else can use the key.
    """

    key: aws.kms.Key
    alias: aws.kms.Alias
    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: KmsKeyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("KmsKey"), name, None, opts)
        context = aws_context(self)
        account_id, partition = context.account_id, context.partition

        statements = [
            Statement(
                sid="AccountRootManagesKey",
                principals={"AWS": [concat("arn:", partition, ":iam::", account_id, ":root")]},
                actions=["kms:*"],
                resources=["*"],
            )
        ]
        logs = [s for s in args.service_principals if s.startswith("logs.")]
        others = [s for s in args.service_principals if s not in logs]
        users = [("NamedRolesUseKey", {"AWS": list(args.user_role_arns)}, None),
                 ("ServicesUseKeyForThisAccount", {"Service": others},
                  {"StringEquals": {"aws:SourceAccount": account_id}}),
                 # CloudWatch Logs names the log group in the encryption context, which is how AWS
                 # documents scoping a logs key to one account's log groups.
                 ("CloudWatchLogsUseKeyForThisAccount", {"Service": logs},
                  {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": context.arn("logs", "*")}}),
                 ("CloudWatchLogsUseKeyForTheseLogGroups", {"Service": [_logs_principal(context.region)]
                                                            if args.log_group_arns else []},
                  {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": list(args.log_group_arns)}})]
        for sid, principals, conditions in users:
            if any(principals.values()):
                statements.append(Statement(sid=sid, principals=principals, actions=_KEY_USE_ACTIONS,
                                            resources=["*"], conditions=conditions))
        # Other accounts use the key only through S3 and only for the named buckets: with S3 Bucket Keys the
        # encryption context is the bucket's ARN (without, the object's: both patterns are listed).
        through_s3 = {"StringEquals": {"kms:ViaService": context.service_endpoint("s3")},
                      "ArnLike": {"kms:EncryptionContext:aws:s3:arn": [
                          concat("arn:", partition, ":s3:::", prefix, suffix)
                          for prefix in args.s3_decrypt_bucket_prefixes for suffix in ("*", "*/*")]}}
        for sid, accounts, actions in (
                ("ConsumerAccountsDecryptObjectsThroughS3", args.s3_decrypt_account_ids,
                 ["kms:Decrypt", "kms:DescribeKey"]),
                ("PublisherAccountsEncryptObjectsThroughS3", args.s3_encrypt_account_ids,
                 ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"])):
            if accounts:
                statements.append(Statement(
                    sid=sid, principals={"AWS": [concat("arn:", partition, ":iam::", account, ":root")
                                                 for account in accounts]},
                    actions=actions, resources=["*"], conditions=through_s3))

        if args.cloudtrail_trail_arns:
            trails = {"aws:SourceArn": list(args.cloudtrail_trail_arns)}
            cloudtrail = {"Service": ["cloudtrail.amazonaws.com"]}
            statements += [
                # the encryption context names the trail: only this account's trails
                Statement(sid="CloudTrailEncryptLogs", principals=cloudtrail, actions=["kms:GenerateDataKey*"],
                          resources=["*"], conditions={"StringEquals": trails, "StringLike": {
                              "kms:EncryptionContext:aws:cloudtrail:arn": concat(
                                  "arn:", partition, ":cloudtrail:*:", account_id, ":trail/*")}}),
                Statement(sid="CloudTrailDescribeKey", principals=cloudtrail, actions=["kms:DescribeKey"],
                          resources=["*"], conditions={"StringEquals": trails}),
            ]
        self.key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            enable_key_rotation=True,
            rotation_period_in_days=args.settings.rotation_period_days,
            deletion_window_in_days=args.settings.deletion_window_days,
            multi_region=False,
            policy=policy_document(statements),
            tags=merge_tags(args.tags),
            opts=child(self, protect=args.protect),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.alias or f'emlops/{name}'}",
            target_key_id=self.key.key_id,
            opts=child(self),
        )
        self.arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs({"arn": self.arn, "keyId": self.key_id, "alias": self.alias.name})

    def grant_decrypt(self, role: ServiceRole, *, via_service: Optional[str] = None) -> aws.iam.RolePolicy:
        """Let `role` decrypt with this key (optionally only through one service, `kms:ViaService`)."""
        return role.add_policy(
            f"decrypt-{name_token(self._name)}",
            [kms_usage_statement(self.arn, encrypt=False, decrypt=True, via_service=via_service)],
        )

    def grant_encrypt_decrypt(self, role: ServiceRole, *, via_service: Optional[str] = None) -> aws.iam.RolePolicy:
        """Let `role` encrypt and decrypt with this key (optionally only through one service)."""
        return role.add_policy(
            f"use-{name_token(self._name)}",
            [kms_usage_statement(self.arn, encrypt=True, decrypt=True, via_service=via_service)],
        )
