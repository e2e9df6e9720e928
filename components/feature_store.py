"""FeatureStore: SageMaker feature groups from typed feature definitions, with encrypted stores.

Each feature group gets an online store (KMS, optional TTL) and/or an offline store: Iceberg tables
under `feature-store/<feature group>/` in a KMS-encrypted bucket, catalogued in the store's own Glue
database. One role, scoped to that prefix, that key and that database, lets SageMaker write the
offline store. Feature groups are stateful (`protect`) and immutable in their definitions.

The name rules below are CreateFeatureGroup's own (botocore's `FeatureGroupName` and `FeatureName`
shapes and the API's documentation); tests/test_feature_store.py checks them against botocore, so
previews do not pay for importing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, kms_usage_statement, name_token
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.options import child, merge_tags, type_token
from emlops.components.storage import SecureBucket, SecureBucketArgs

__all__ = ["Feature", "FeatureGroupSpec", "FeatureStore", "FeatureStoreArgs", "feature_group_name"]

# CreateFeatureGroup: FeatureGroupName and FeatureName (same rule; the pattern alone allows more
# than 64 characters through repeated '-'/'_', so the length is checked too).
FEATURE_GROUP_NAME_PATTERN = "[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}"
FEATURE_NAME_PATTERN = "[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}"
MAX_NAME_LENGTH = 64
MAX_FEATURES = 2500
MAX_DESCRIPTION = 128
FEATURE_TYPES = ("Integral", "Fractional", "String")
# SageMaker adds these columns to every offline store table.
RESERVED_FEATURE_NAMES = ("is_deleted", "write_time", "api_invocation_time")
# EventTime is a Unix timestamp in seconds (Fractional) or an ISO-8601 string (String).
EVENT_TIME_TYPES = ("Fractional", "String")
TTL_UNITS = ("Hours", "Days")
OFFLINE_PREFIX = "feature-store/"
GLUE_CATALOG = "AwsDataCatalog"
_NAME_RULE = f"1-{MAX_NAME_LENGTH} ASCII letters, digits, '-' or '_', starting and ending with a letter or digit"

FeatureType = Literal["Integral", "Fractional", "String"]


def _valid_name(name: str, pattern: str) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and re.fullmatch(pattern, name) is not None


def check_feature_name(name: str) -> None:
    """CreateFeatureGroup's FeatureName rule and its reserved names."""
    if not _valid_name(name, FEATURE_NAME_PATTERN):
        raise ValueError(f"feature name {name!r} must be {_NAME_RULE}")
    # Offline tables are Glue tables, whose column names are lowercase: `Write_Time` is `write_time`.
    if name.lower() in RESERVED_FEATURE_NAMES:
        raise ValueError(f"feature name {name!r} is reserved by SageMaker Feature Store "
                         f"({', '.join(RESERVED_FEATURE_NAMES)}); rename it")


def check_feature_group_name(name: str) -> None:
    if not _valid_name(name, FEATURE_GROUP_NAME_PATTERN):
        raise ValueError(f"feature group name {name!r} must be {_NAME_RULE}")


def feature_group_name(store_name: str, group_name: str) -> str:
    """The SageMaker name of a group, `<feature store>-<group>`, checked against the API's limits."""
    if not _valid_name(store_name, FEATURE_GROUP_NAME_PATTERN):
        raise ValueError(f"feature store name {store_name!r} must be ASCII letters, digits, '-' or '_', "
                         "starting and ending with a letter or digit")
    joined = f"{store_name}-{group_name}"
    if len(joined) > MAX_NAME_LENGTH:
        raise ValueError(f"feature group name {joined!r} is {len(joined)} characters; SageMaker allows at most "
                         f"{MAX_NAME_LENGTH}: shorten the feature store name {store_name!r} or the group name "
                         f"{group_name!r}")
    return joined


def glue_name(name: str) -> str:
    """A Glue (and Athena) friendly name: lowercase, '_' instead of '-'."""
    return name.lower().replace("-", "_")


@dataclass(frozen=True)
class Feature:
    """One feature (column) of a feature group."""

    name: str
    """Feature name: 1-64 letters, digits, '-' or '_'; not is_deleted, write_time or api_invocation_time."""
    type: FeatureType
    """`Integral`, `Fractional` or `String`."""

    def __post_init__(self) -> None:
        check_feature_name(self.name)
        if self.type not in FEATURE_TYPES:
            raise ValueError(f"feature {self.name!r}: type {self.type!r} must be Integral, Fractional or String")


@dataclass(frozen=True)
class FeatureGroupSpec:
    """One feature group: its typed features, identifiers and stores."""

    name: str
    """Group name; the SageMaker feature group is `<feature store name>-<name>`."""
    features: Sequence[Feature]
    """The features, at most 2500, names unique (ignoring case)."""
    record_identifier: str
    """The feature that identifies a record (one of `features`)."""
    event_time_feature: str
    """The feature holding each record's event time (one of `features`, Fractional or String)."""
    description: str = ""
    """Shown in the SageMaker console (at most 128 characters). Default: none."""
    online_store: bool = False
    """Keep the latest record per identifier in the online store (KMS-encrypted). Default: off."""
    online_ttl_value: Optional[int] = None
    """Records expire from the online store this long after their event time. Default: never."""
    online_ttl_unit: Literal["Hours", "Days"] = "Days"
    """Unit of `online_ttl_value`: `Hours` or `Days`. Default: Days."""
    offline_store: bool = True
    """Keep every record in the offline store (Iceberg table in S3, Glue catalog). Default: on."""

    def __post_init__(self) -> None:
        check_feature_group_name(self.name)
        at = f"feature group {self.name!r}"
        if isinstance(self.features, (str, Feature)):
            raise ValueError(f"{at}: features must be a list of Feature")
        if not self.features:
            raise ValueError(f"{at} needs at least one feature")
        if len(self.features) > MAX_FEATURES:
            raise ValueError(f"{at} has {len(self.features)} features; SageMaker allows at most {MAX_FEATURES}")
        names = [f.name.lower() for f in self.features]
        # (declaration order among names that differ only in case)
        repeated = sorted(dict.fromkeys(f.name for f in self.features if names.count(f.name.lower()) > 1), key=str.lower)
        if repeated:
            raise ValueError(f"{at}: feature names must be unique (ignoring case); repeated: {', '.join(repeated)}")
        types = {f.name: f.type for f in self.features}
        for label in ("record_identifier", "event_time_feature"):
            if getattr(self, label) not in types:
                raise ValueError(f"{at}: {label} {getattr(self, label)!r} is not one of its features; declare it "
                                 "in features")
        event_type = types[self.event_time_feature]
        if event_type not in EVENT_TIME_TYPES:
            raise ValueError(f"{at}: event_time_feature {self.event_time_feature!r} is {event_type}; it must be "
                             "Fractional (Unix seconds) or String (ISO-8601)")
        if len(self.description) > MAX_DESCRIPTION:
            raise ValueError(f"{at}: description is {len(self.description)} characters; SageMaker allows at most "
                             f"{MAX_DESCRIPTION}")
        if not self.online_store and not self.offline_store:
            raise ValueError(f"{at} needs a store: enable online_store, offline_store or both")
        if self.online_ttl_value is not None:
            if not self.online_store:
                raise ValueError(f"{at}: online_ttl_value is set but the online store is off; enable online_store "
                                 "or drop the TTL")
            if self.online_ttl_value < 1:
                raise ValueError(f"{at}: online_ttl_value ({self.online_ttl_value}) must be at least 1")
        if self.online_ttl_unit not in TTL_UNITS:
            raise ValueError(f"{at}: online_ttl_unit {self.online_ttl_unit!r} must be Hours or Days")


@dataclass
class FeatureStoreArgs:
    """Arguments of a `FeatureStore`."""

    feature_groups: Sequence[FeatureGroupSpec]
    """The feature groups, names unique (also as Glue table names: lowercase, '_' for '-')."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the online stores and of the offline store's objects. Default: a KMS key is created."""
    offline_bucket: Optional[SecureBucket] = None
    """Bucket of the offline store (written under `feature-store/`). Default: a SecureBucket is created
    when a group has an offline store."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of the offline store role. Default: none."""
    protect: bool = False
    """Protect the feature groups (and the key and bucket created here) and retain them on delete. Default: false."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child. Default: none."""

    def __post_init__(self) -> None:
        if isinstance(self.feature_groups, (str, FeatureGroupSpec)) or not self.feature_groups:
            raise ValueError("FeatureStore needs at least one feature group (a list of FeatureGroupSpec)")
        names = [g.name for g in self.feature_groups]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"feature group names must be unique; repeated: {', '.join(repeated)}")
        tables: dict[str, str] = {}
        for group in self.feature_groups:
            other = tables.setdefault(glue_name(group.name), group.name)
            if other != group.name:
                raise ValueError(f"feature groups {other!r} and {group.name!r} would share the Glue table "
                                 f"{glue_name(group.name)!r}; rename one")

    @property
    def has_offline_store(self) -> bool:
        return any(group.offline_store for group in self.feature_groups)


class FeatureStore(pulumi.ComponentResource):
    """SageMaker feature groups, their KMS key, offline bucket, Glue database and offline store role."""

    key: Optional[KmsKey]
    offline_bucket: Optional[SecureBucket]
    role: ServiceRole
    glue_database: Optional[aws.glue.CatalogDatabase]
    feature_groups: dict[str, aws.sagemaker.FeatureGroup]
    feature_group_names: dict[str, pulumi.Output[str]]
    feature_group_arns: dict[str, pulumi.Output[str]]
    kms_key_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    offline_store_uri: Optional[pulumi.Output[str]]
    glue_database_name: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: FeatureStoreArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Every name and child argument is checked before the first resource exists.
        sagemaker_names = {g.name: feature_group_name(name, g.name) for g in args.feature_groups}
        tags = merge_tags(args.tags, {"feature-store": name})
        key_args = KmsKeyArgs(description=f"Encrypts the online and offline stores of the {name} feature store",
                              protect=args.protect, tags=tags)
        role_args = ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"SageMaker Feature Store: writes the offline store of {name}",
            permissions_boundary_arn=args.permissions_boundary_arn,
            tags=tags,
        )
        super().__init__(type_token("FeatureStore"), name, None, opts)
        self._name = name
        self._specs = {g.name: g for g in args.feature_groups}

        self.key = None
        if args.kms_key_arn is None:
            self.key = KmsKey(f"{name}-key", key_args, opts=child(self))
        self.kms_key_arn = self.key.arn if self.key else pulumi.Output.from_input(args.kms_key_arn)

        self.offline_bucket = args.offline_bucket
        if self.offline_bucket is None and args.has_offline_store:
            self.offline_bucket = SecureBucket(f"{name}-offline", SecureBucketArgs(
                kms_key_arn=self.kms_key_arn, protect=args.protect, tags=tags,
            ), opts=child(self))

        self.role = ServiceRole(f"{name}-execution", role_args, opts=child(self))
        self.role_arn = self.role.arn

        self.glue_database = None
        self.glue_database_name = None
        self.offline_store_uri = None
        policies: list[pulumi.Resource] = []
        if args.has_offline_store:
            # Athena cannot query database names with '-'.
            self.glue_database = aws.glue.CatalogDatabase(
                f"{name}-database",
                name=f"{glue_name(name)}_features",
                description=f"Offline store tables of the {name} feature store (created by SageMaker)",
                tags=tags,
                opts=child(self),
            )
            self.glue_database_name = self.glue_database.name
            self.offline_store_uri = pulumi.Output.concat("s3://", self.offline_bucket.bucket_name, "/", OFFLINE_PREFIX)
            policies = self._offline_store_policies()

        self.feature_groups = {}
        for group in args.feature_groups:
            self.feature_groups[group.name] = aws.sagemaker.FeatureGroup(
                f"{name}-{group.name}",
                feature_group_name=sagemaker_names[group.name],
                description=group.description or None,
                record_identifier_feature_name=group.record_identifier,
                event_time_feature_name=group.event_time_feature,
                feature_definitions=[{"feature_name": f.name, "feature_type": f.type} for f in group.features],
                role_arn=self.role.arn,
                online_store_config=self._online_store(group),
                offline_store_config=self._offline_store(group, sagemaker_names[group.name]),
                tags=tags,
                # SageMaker checks the role's access to the bucket (and its encryption) at creation.
                opts=child(self, protect=args.protect,
                           depends_on=[*policies, self.offline_bucket] if group.offline_store else []),
            )
        self.feature_group_names = {g: fg.feature_group_name for g, fg in self.feature_groups.items()}
        self.feature_group_arns = {g: fg.arn for g, fg in self.feature_groups.items()}
        self.register_outputs({
            "featureGroupNames": self.feature_group_names,
            "featureGroupArns": self.feature_group_arns,
            "roleArn": self.role_arn,
            "kmsKeyArn": self.kms_key_arn,
            "offlineStoreUri": self.offline_store_uri,
            "glueDatabaseName": self.glue_database_name,
        })

    # -- children's inputs ------------------------------------------------------------------------

    def _online_store(self, group: FeatureGroupSpec) -> Optional[dict]:
        if not group.online_store:
            return None
        config: dict = {"enable_online_store": True, "security_config": {"kms_key_id": self.kms_key_arn}}
        if group.online_ttl_value is not None:
            config["ttl_duration"] = {"unit": group.online_ttl_unit, "value": group.online_ttl_value}
        return config

    def _offline_store(self, group: FeatureGroupSpec, sagemaker_name: str) -> Optional[dict]:
        if not group.offline_store:
            return None
        return {
            "s3_storage_config": {"s3_uri": self._offline_uri(sagemaker_name), "kms_key_id": self.kms_key_arn},
            "data_catalog_config": {"catalog": GLUE_CATALOG, "database": self.glue_database.name,
                                    "table_name": glue_name(group.name)},
            "table_format": "Iceberg",
            # (pulumi_aws's docstrings swap this flag's and enable_online_store's descriptions)
            "disable_glue_table_creation": False,
        }

    def _offline_uri(self, sagemaker_name: str) -> pulumi.Output[str]:
        # SageMaker writes under <uri>/<account>/sagemaker/<region>/offline-store/<group>-<time>/.
        return pulumi.Output.concat(self.offline_store_uri, sagemaker_name)

    def _offline_objects(self, prefix: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(self.offline_bucket.arn, "/", prefix, "*")

    def _glue_arns(self, table: str) -> list[pulumi.Output[str]]:
        context = aws_context(self)
        return [context.arn("glue", "catalog"),
                context.arn("glue", pulumi.Output.concat("database/", self.glue_database.name)),
                context.arn("glue", pulumi.Output.concat("table/", self.glue_database.name, "/", table))]

    def _offline_store_policies(self) -> list[aws.iam.RolePolicy]:
        via_s3 = aws_context(self).service_endpoint("s3")
        bucket = self.offline_bucket.arn
        storage = self.role.add_policy("offline-store", [
            Statement(actions=["s3:GetBucketAcl"], resources=[bucket]),
            Statement(actions=["s3:ListBucket"], resources=[bucket],
                      conditions={"StringLike": {"s3:prefix": [f"{OFFLINE_PREFIX}*"]}}),
            Statement(actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"],
                      resources=[self._offline_objects(OFFLINE_PREFIX)]),
            kms_usage_statement(self.kms_key_arn, encrypt=True, decrypt=True, via_service=via_s3),
        ])
        catalog = self.role.add_policy("glue-catalog", [
            Statement(actions=["glue:CreateTable", "glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"],
                      resources=self._glue_arns("*")),
        ])
        return [storage, catalog]

    # -- grants -----------------------------------------------------------------------------------

    def _spec(self, group_name: str) -> FeatureGroupSpec:
        if group_name not in self._specs:
            raise ValueError(f"feature store {self._name!r} has no feature group {group_name!r}; "
                             f"it has: {', '.join(self._specs)}")
        return self._specs[group_name]

    def grant_read(self, role: ServiceRole, group_name: str) -> aws.iam.RolePolicy:
        """Let `role` read one group: online records (GetRecord, BatchGetRecord) and the offline
        store's objects and Glue table (e.g. through Athena), decrypting with the store's key."""
        group = self._spec(group_name)
        actions = ["sagemaker:DescribeFeatureGroup"]
        if group.online_store:
            actions = ["sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord"]
        statements = [Statement(actions=actions, resources=[self.feature_group_arns[group_name]])]
        if group.offline_store:
            prefix = f"{OFFLINE_PREFIX}{feature_group_name(self._name, group_name)}/"
            statements += [
                Statement(actions=["s3:ListBucket"], resources=[self.offline_bucket.arn],
                          conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}}),
                Statement(actions=["s3:GetObject"], resources=[self._offline_objects(prefix)]),
                Statement(actions=["glue:GetDatabase", "glue:GetTable"], resources=self._glue_arns(glue_name(group_name))),
            ]
        # The online store's readers need the key directly, which covers the offline objects too;
        # offline-only readers decrypt through S3 only.
        statements.append(self._online_key_statement() if group.online_store else kms_usage_statement(
            self.kms_key_arn, encrypt=False, decrypt=True, via_service=aws_context(self).service_endpoint("s3")))
        return role.add_policy(f"read-features-{name_token(feature_group_name(self._name, group_name))}", statements)

    def grant_write(self, role: ServiceRole, group_name: str) -> aws.iam.RolePolicy:
        """Let `role` put and delete records of one group (SageMaker itself writes the offline store)."""
        group = self._spec(group_name)
        statements = [Statement(actions=["sagemaker:DeleteRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"],
                                resources=[self.feature_group_arns[group_name]])]
        if group.online_store:
            statements.append(self._online_key_statement())
        return role.add_policy(f"write-features-{name_token(feature_group_name(self._name, group_name))}", statements)

    def _online_key_statement(self) -> Statement:
        # CreateFeatureGroup's docs: callers of PutRecord, GetRecord and DeleteRecord need kms:Decrypt on
        # the online store's key. AWS documents no kms:ViaService value for the Feature Store runtime.
        return kms_usage_statement(self.kms_key_arn, encrypt=False, decrypt=True)
