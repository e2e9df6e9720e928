"""FeatureStore: SageMaker feature groups from typed feature definitions, with encrypted stores.

Each feature group gets an online store (KMS, optional TTL) and/or an offline store: Iceberg tables
under `feature-store/<feature group>/` in a KMS-encrypted bucket, catalogued in the store's own Glue
database. One role, scoped to that prefix, that key and that database, lets SageMaker write the
offline store. Feature groups are stateful (`protect`) and immutable in their definitions.

Its settings (one `FeatureGroupSettings` per group) and context are in feature_store_args.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, kms_usage_statement, name_token
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.feature_store_args import (GLUE_CATALOG, OFFLINE_PREFIX, FeatureGroupSettings,
                                                  FeatureStoreContext, check_feature_groups, feature_group_name,
                                                  glue_name)
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.storage import SecureBucket, SecureBucketArgs

__all__ = ["FeatureGroupSettings", "FeatureStore", "FeatureStoreContext"]


class FeatureStore(pulumi.ComponentResource):
    """SageMaker feature groups, their KMS key, offline bucket, Glue database and offline store role."""

    key: Optional[KmsKey]
    store_name: str
    """Its name, which the SageMaker names of its groups start with (`<store>-<group>`)."""
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

    def __init__(self, name: str, groups: Sequence[FeatureGroupSettings], context: FeatureStoreContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        # Every name and child argument is checked before the first resource exists.
        if isinstance(groups, (str, FeatureGroupSettings)) or not groups:
            raise ValueError("a feature store needs at least one feature group (a list of FeatureGroupSettings)")
        problem = check_feature_groups(name, groups)
        if problem:
            raise ValueError(problem[1])
        sagemaker_names = {g.name: feature_group_name(name, g.name) for g in groups}
        governance = context.governance.with_tags({"feature-store": name})
        tags, protect = dict(governance.tags), governance.protect
        key_args = KmsKeyArgs(description=f"Encrypts the online and offline stores of the {name} feature store",
                              protect=protect, tags=tags)
        role_args = ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"SageMaker Feature Store: writes the offline store of {name}",
            permissions_boundary_arn=governance.permissions_boundary_arn,
            tags=tags,
        )
        super().__init__(type_token("FeatureStore"), name, None, opts)
        self._name = self.store_name = name
        self._specs = {g.name: g for g in groups}
        offline = any(group.offline.enabled for group in groups)

        self.key = None
        if context.kms_key_arn is None:
            self.key = KmsKey(f"{name}-key", key_args, opts=child(self))
        self.kms_key_arn = self.key.arn if self.key else pulumi.Output.from_input(context.kms_key_arn)

        self.offline_bucket = context.offline_bucket
        if self.offline_bucket is None and offline:
            self.offline_bucket = SecureBucket(f"{name}-offline", SecureBucketArgs(
                kms_key_arn=self.kms_key_arn, protect=protect, tags=tags,
            ), opts=child(self))

        self.role = ServiceRole(f"{name}-execution", role_args, opts=child(self))
        self.role_arn = self.role.arn

        self.glue_database = None
        self.glue_database_name = None
        self.offline_store_uri = None
        policies: list[pulumi.Resource] = []
        if offline:
            # Athena cannot query database names with '-'.
            self.glue_database = aws.glue.CatalogDatabase(
                f"{name}-database",
                name=f"{glue_name(name)}_features",
                description=f"Offline store tables of the {name} feature store (created by SageMaker)",
                tags=tags,
                # the offline store's tables are defined here: losing the database loses them
                opts=child(self, protect=protect),
            )
            self.glue_database_name = self.glue_database.name
            self.offline_store_uri = concat("s3://", self.offline_bucket.bucket_name, "/", OFFLINE_PREFIX)
            policies = self._offline_store_policies()

        self.feature_groups = {}
        for group in groups:
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
                opts=child(self, protect=protect,
                           depends_on=[*policies, self.offline_bucket] if group.offline.enabled else []),
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

    def _online_store(self, group: FeatureGroupSettings) -> Optional[dict]:
        if not group.online.enabled:
            return None
        config: dict = {"enable_online_store": True, "security_config": {"kms_key_id": self.kms_key_arn}}
        if group.ttl() is not None:
            config["ttl_duration"] = group.ttl()
        return config

    def _offline_store(self, group: FeatureGroupSettings, sagemaker_name: str) -> Optional[dict]:
        if not group.offline.enabled:
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
        return concat(self.offline_store_uri, sagemaker_name)

    def _offline_objects(self, prefix: str) -> pulumi.Output[str]:
        return concat(self.offline_bucket.arn, "/", prefix, "*")

    def _glue_arns(self, table: str) -> list[pulumi.Output[str]]:
        context = aws_context(self)
        return [context.arn("glue", "catalog"),
                context.arn("glue", concat("database/", self.glue_database.name)),
                context.arn("glue", concat("table/", self.glue_database.name, "/", table))]

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

    def spec(self, group_name: str) -> FeatureGroupSettings:
        """The settings of one of the store's groups (ValueError naming the groups it has)."""
        return self._spec(group_name)

    def _spec(self, group_name: str) -> FeatureGroupSettings:
        if group_name not in self._specs:
            raise ValueError(f"feature store {self._name!r} has no feature group {group_name!r}; "
                             f"it has: {', '.join(self._specs)}")
        return self._specs[group_name]

    def grant_read(self, role: ServiceRole, group_name: str) -> aws.iam.RolePolicy:
        """Let `role` read one group: online records (GetRecord, BatchGetRecord) and the offline
        store's objects and Glue table (e.g. through Athena), decrypting with the store's key."""
        group = self._spec(group_name)
        actions = ["sagemaker:DescribeFeatureGroup"]
        if group.online.enabled:
            actions = ["sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord"]
        statements = [Statement(actions=actions, resources=[self.feature_group_arns[group_name]])]
        if group.offline.enabled:
            prefix = f"{OFFLINE_PREFIX}{feature_group_name(self._name, group_name)}/"
            statements += [
                Statement(actions=["s3:ListBucket"], resources=[self.offline_bucket.arn],
                          conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}}),
                Statement(actions=["s3:GetObject"], resources=[self._offline_objects(prefix)]),
                Statement(actions=["glue:GetDatabase", "glue:GetTable"], resources=self._glue_arns(glue_name(group_name))),
            ]
        # The online store's readers need the key directly, which covers the offline objects too;
        # offline-only readers decrypt through S3 only.
        statements.append(self._online_key_statement() if group.online.enabled else kms_usage_statement(
            self.kms_key_arn, encrypt=False, decrypt=True, via_service=aws_context(self).service_endpoint("s3")))
        return role.add_policy(f"read-features-{name_token(feature_group_name(self._name, group_name))}", statements)

    def grant_write(self, role: ServiceRole, group_name: str) -> aws.iam.RolePolicy:
        """Let `role` put and delete records of one group (SageMaker itself writes the offline store)."""
        group = self._spec(group_name)
        statements = [Statement(actions=["sagemaker:DeleteRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"],
                                resources=[self.feature_group_arns[group_name]])]
        if group.online.enabled:
            statements.append(self._online_key_statement())
        return role.add_policy(f"write-features-{name_token(feature_group_name(self._name, group_name))}", statements)

    def _online_key_statement(self) -> Statement:
        # CreateFeatureGroup's docs: callers of PutRecord, GetRecord and DeleteRecord need kms:Decrypt on
        # the online store's key. AWS documents no kms:ViaService value for the Feature Store runtime.
        return kms_usage_statement(self.kms_key_arn, encrypt=False, decrypt=True)
