"""ModelRegistry: SageMaker model package groups (readable by the promotion accounts) and an MLflow server.

Each model gets a model package group named exactly like the model: stack configs
(`source.model_package_group`) and the retraining pipeline refer to groups by that name. Staging and
production accounts may be granted, through a resource policy on each group, what AWS documents for
deploying a model version from a different account. The MLflow tracking server is SageMaker-managed
(default), self-hosted on the EKS cluster, or left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.resources_operations import EVENT_RULE
from emlops.components.alerts import announce_approvals, approvals_rule_name
from emlops.components.aws_context import AwsContext, aws_context
from emlops.components.iam import (APPROVAL_UNCHANGED, PENDING_APPROVAL_ONLY, ServiceRole, ServiceRoleArgs, Statement,
                                   policy_document)
from emlops.components.naming import DerivedName, auto_named
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.registry_args import ARTIFACT_PREFIX, RegistryContext, RegistrySettings
from emlops.components.storage import SecureBucket, SecureBucketArgs

__all__ = ["ModelRegistry", "RegistryContext", "RegistrySettings", "ARTIFACT_PREFIX"]

# What AWS documents for deploying a model version from a different account ("Deploy a Model
# Version from a Different Account", SageMaker developer guide): the group, then its versions.
CONSUMER_GROUP_ACTIONS = ["sagemaker:DescribeModelPackageGroup"]
# Not sagemaker:UpdateModelPackage, which AWS's example includes: it approves and rejects versions, and
# approving is this (the registry's) account's decision, never a consumer's.
CONSUMER_PACKAGE_ACTIONS = ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                            "sagemaker:CreateModel"]
# What a publisher account's pipelines need to register a version into a group of this account; the
# registration itself (CreateModelPackage) only as `PendingManualApproval`.
PUBLISHER_ACTIONS = ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"]
# What a SageMaker MLflow tracking server needs to register MLflow models in the model registry
# ("Set up IAM permissions for MLflow", automatic model registration). A request that names an approval status
# must name `PendingManualApproval` (a version registered without one waits for approval too), and updates carry
# none (UpdateModelPackage is split out): approving stays a person's.
REGISTRATION_ACTIONS = ["sagemaker:AddTags", "sagemaker:CreateModelPackageGroup", "sagemaker:CreateModelPackage",
                        "sagemaker:DescribeModelPackageGroup"]


def check_registry_name(name: str, kind: str) -> None:
    """The component name becomes the tracking server's name and, on Kubernetes, a Service name."""
    if kind == "kubernetes":
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,48}[a-z0-9])?", name):
            raise ValueError(f"registry name {name!r} must be at most 50 lowercase letters, digits and '-', starting "
                             "with a letter (it names Kubernetes objects)")
    elif not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}", name):
        raise ValueError(f"registry name {name!r} must be at most 64 ASCII letters, digits and '-', starting and "
                         "ending with a letter or digit")


def group_component_name(name: str, group: str) -> str:
    """What a registry called `name` names the children of package group `group`: `<registry>-<group>`."""
    return f"{name}-{group}"


def derived_names(name: str, group: str, *, announced: bool) -> list[DerivedName]:
    """The physical names a ModelRegistry called `name` derives from a group it holds (naming.py): the rule that
    announces its approvals, when `announced`."""
    return [auto_named(EVENT_RULE.token, approvals_rule_name(group_component_name(name, group)))] if announced else []


class ModelRegistry(pulumi.ComponentResource):
    """Model package groups with cross-account read for promotion, and an MLflow tracking server."""

    package_groups: dict[str, aws.sagemaker.ModelPackageGroup]
    package_group_names: dict[str, pulumi.Output[str]]
    package_group_arns: dict[str, pulumi.Output[str]]
    artifact_bucket: Optional[SecureBucket]
    artifact_uri: Optional[pulumi.Output[str]]
    tracking_server: Optional[aws.sagemaker.MlflowTrackingServer]
    tracking_server_arn: Optional[pulumi.Output[str]]
    tracking_server_url: Optional[pulumi.Output[str]]
    tracking_uri: Optional[pulumi.Output[str]]

    def __init__(self, name: str, settings: RegistrySettings, context: RegistryContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        check_registry_name(name, settings.mlflow.kind)
        context.check(settings)
        super().__init__(type_token("ModelRegistry"), name, None, opts)
        governance = context.governance.with_tags({"model-registry": name})
        tags, protect = dict(governance.tags), governance.protect
        aws_facts = aws_context(self)
        groups = context.groups(settings)

        self.package_groups, self.package_group_names, self.package_group_arns = {}, {}, {}
        for model in groups:
            group = aws.sagemaker.ModelPackageGroup(
                f"{group_component_name(name, model)}-group",
                model_package_group_name=model,
                model_package_group_description=context.descriptions.get(model, f"Versions of the {model} model"),
                tags=tags,
                opts=child(self, protect=protect),
            )
            self.package_groups[model] = group
            self.package_group_names[model] = group.model_package_group_name
            self.package_group_arns[model] = group.arn
            if settings.promotion_accounts:
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{group_component_name(name, model)}-group-policy",
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=_consumer_policy(aws_facts, group, model, settings),
                    opts=child(self),
                )

        if context.approval_topic_arn is not None:
            # One EventBridge rule per group: a version approved (by a person, in this account) is announced.
            announced = groups if context.announced_groups is None else context.announced_groups
            for model in [m for m in groups if m in announced]:
                announce_approvals(self, group_component_name(name, model), model, context.approval_topic_arn, tags)
        self.repository_urls: dict[str, pulumi.Output[str]] = {}
        for repository in settings.image_repositories:
            self.repository_urls[repository] = self._image_repository(name, repository, settings, context, tags)

        self.artifact_bucket, self.artifact_uri = None, None
        self.tracking_server, self.tracking_server_arn, self.tracking_server_url, self.tracking_uri = (None,) * 4
        kind = settings.mlflow.kind
        if kind != "none":
            self.artifact_bucket = context.artifact_bucket or SecureBucket(f"{name}-artifacts", SecureBucketArgs(
                kms_key_arn=context.kms_key_arn, protect=protect, tags=tags,
            ), opts=child(self))
            self.artifact_uri = concat("s3://", self.artifact_bucket.bucket_name, "/", ARTIFACT_PREFIX)
        if kind == "sagemaker":
            self._sagemaker_mlflow(name, settings, groups, aws_facts, governance)
        elif kind == "kubernetes":
            from emlops.components.registry_mlflow_k8s import MlflowOnKubernetes, MlflowOnKubernetesArgs

            server = MlflowOnKubernetes(f"{name}-mlflow", MlflowOnKubernetesArgs(
                mlflow=settings.mlflow, cluster=context.cluster, backend_store_uri=context.backend_store_uri,
                bucket=self.artifact_bucket, artifact_uri=self.artifact_uri, governance=governance,
            ), opts=child(self, providers=[context.cluster.kubernetes_provider]))
            self.tracking_uri = server.tracking_uri

        self.register_outputs({
            "packageGroupNames": self.package_group_names,
            "packageGroupArns": self.package_group_arns,
            "artifactUri": self.artifact_uri,
            "trackingUri": self.tracking_uri,
            "trackingServerArn": self.tracking_server_arn,
            "trackingServerUrl": self.tracking_server_url,
            "repositoryUrls": self.repository_urls,
        })

    def _image_repository(self, name: str, repository: str, settings: RegistrySettings, context: RegistryContext,
                          tags: dict) -> pulumi.Output[str]:
        """A repository of the images registered versions run on; the other accounts of the promotion path pull."""
        token = repository.replace("/", "-").replace("_", "-").replace(".", "-")
        created = aws.ecr.Repository(
            f"{name}-{token}-repository",
            name=repository,
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="IMMUTABLE",
            # ECR decrypts layers for pulls through the grant it holds on the key
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": context.kms_key_arn}]
            if context.kms_key_arn is not None else [{"encryption_type": "KMS"}],
            force_delete=False,
            tags=tags,
            opts=child(self, protect=context.governance.protect),
        )
        pullers = settings.promotion_accounts
        if pullers:
            partition = aws_context(self).partition
            aws.ecr.RepositoryPolicy(
                f"{name}-{token}-repository-policy",
                repository=created.name,
                policy=policy_document([Statement(
                    sid="PromotionAccountsPullImages",
                    principals={"AWS": [concat("arn:", partition, ":iam::", account, ":root")
                                        for account in pullers]},
                    actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                )]),
                opts=child(self),
            )
        return created.repository_url

    def _sagemaker_mlflow(self, name: str, settings: RegistrySettings, groups: list[str], aws_facts,
                          governance) -> None:
        tags = dict(governance.tags)
        role = ServiceRole(f"{name}-mlflow", ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"SageMaker MLflow tracking server of the {name} registry",
            permissions_boundary_arn=governance.permissions_boundary_arn,
            tags=tags,
        ), opts=child(self))
        policies = [self.artifact_bucket.grant_read_write(role, prefix=ARTIFACT_PREFIX)]
        if groups:
            # automatic model registration, only into this registry's groups
            policies.append(role.add_policy("model-registration", mlflow_registration_statements(aws_facts, groups)))
        mlflow = settings.mlflow
        self.tracking_server = aws.sagemaker.MlflowTrackingServer(
            f"{name}-tracking-server",
            tracking_server_name=f"{name}-mlflow",
            artifact_store_uri=self.artifact_uri,
            role_arn=role.arn,
            tracking_server_size=mlflow.size,
            automatic_model_registration=True,
            weekly_maintenance_window_start=mlflow.maintenance_window,
            mlflow_version=mlflow.version,
            tags=tags,
            # the server checks its role's access to the artifact store when it starts
            opts=child(self, protect=governance.protect, depends_on=policies),
        )
        self.tracking_server_arn = self.tracking_server.arn
        self.tracking_server_url = self.tracking_server.tracking_server_url
        # the sagemaker-mlflow plugin takes the tracking server's ARN as the tracking URI
        self.tracking_uri = self.tracking_server.arn


def mlflow_registration_statements(aws_facts: AwsContext, groups: Sequence[str]) -> list[Statement]:
    """What the MLflow server's role may do in the registry: register versions for approval into `groups` only."""
    resources = [resource for model in groups for resource in (
        aws_facts.arn("sagemaker", f"model-package-group/{model.lower()}"), _package_arns(aws_facts, model))]
    return [
        Statement(sid="RegisterForApprovalOnly", actions=REGISTRATION_ACTIONS, resources=resources,
                  conditions={"StringEqualsIfExists": PENDING_APPROVAL_ONLY["StringEquals"]}),
        Statement(sid="UpdateWithoutApproving", actions=["sagemaker:UpdateModelPackage"], resources=resources,
                  conditions=APPROVAL_UNCHANGED),
    ]


def _consumer_policy(context, group: aws.sagemaker.ModelPackageGroup, model: str,
                     args: RegistrySettings) -> pulumi.Output[str]:
    def roots(accounts: Sequence[str]) -> dict:
        return {"AWS": [concat("arn:", context.partition, ":iam::", account, ":root")
                        for account in accounts]}

    statements = []
    if args.consumer_account_ids:
        consumers = roots(args.consumer_account_ids)
        statements += [
            Statement(sid="ConsumerAccountsDescribeGroup", principals=consumers, actions=CONSUMER_GROUP_ACTIONS,
                      resources=[group.arn]),
            Statement(sid="ConsumerAccountsDeployVersions", principals=consumers, actions=CONSUMER_PACKAGE_ACTIONS,
                      resources=[_package_arns(context, model)]),
        ]
    if args.publisher_account_ids:
        # registering a version names the group; the new version is a package of the group
        publishers = roots(args.publisher_account_ids)
        statements += [
            Statement(sid="PublisherAccountsRegisterVersions", principals=publishers, actions=PUBLISHER_ACTIONS,
                      resources=[group.arn, _package_arns(context, model)]),
            # a version registered from another account waits for this account's approvers
            Statement(sid="PublisherAccountsRegisterForApprovalOnly", principals=publishers,
                      actions=["sagemaker:CreateModelPackage"], resources=[group.arn, _package_arns(context, model)],
                      conditions=PENDING_APPROVAL_ONLY),
        ]
    return policy_document(statements)


def _package_arns(context, model: str) -> pulumi.Output[str]:
    # SageMaker lower-cases names in its ARNs (the group's ARN too).
    return context.arn("sagemaker", f"model-package/{model.lower()}/*")
