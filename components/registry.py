"""ModelRegistry: SageMaker model package groups (readable by the promotion accounts) and an MLflow server.

Each model gets a model package group named exactly like the model: stack configs
(`source.model_package_group`) and the retraining pipeline refer to groups by that name. Staging and
production accounts may be granted, through a resource policy on each group, what AWS documents for
deploying a model version from a different account. The MLflow tracking server is SageMaker-managed
(default), self-hosted on the EKS cluster, or left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, policy_document
from emlops.components.options import child, merge_tags, type_token
from emlops.components.storage import SecureBucket, SecureBucketArgs

__all__ = ["ModelRegistry", "ModelRegistryArgs", "MLFLOW_IMAGE", "ARTIFACT_PREFIX"]

# botocore's `EntityName` (CreateModelPackageGroup.ModelPackageGroupName); a test keeps them equal.
ENTITY_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_ENTITY_NAME = re.compile(ENTITY_NAME_PATTERN)
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_WINDOW = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):([0-5]\d)")
_MLFLOW_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")
# Pinned to the MLflow client the toolkit itself uses (mlflow-skinny in pyproject.toml).
MLFLOW_IMAGE = "ghcr.io/mlflow/mlflow:v3.17.2"
ARTIFACT_PREFIX = "mlflow/"
# What AWS documents for deploying a model version from a different account ("Deploy a Model
# Version from a Different Account", SageMaker developer guide): the group, then its versions.
CONSUMER_GROUP_ACTIONS = ["sagemaker:DescribeModelPackageGroup"]
# Not sagemaker:UpdateModelPackage, which AWS's example includes: it approves and rejects versions, and
# approving is this (the registry's) account's decision, never a consumer's.
CONSUMER_PACKAGE_ACTIONS = ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                            "sagemaker:CreateModel"]
# What a publisher account's pipelines need to register a version into a group of this account.
PUBLISHER_ACTIONS = ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                     "sagemaker:DescribeModelPackageGroup"]
# What a SageMaker MLflow tracking server needs to register MLflow models in the model registry
# ("Set up IAM permissions for MLflow", automatic model registration).
REGISTRATION_ACTIONS = ["sagemaker:AddTags", "sagemaker:CreateModelPackageGroup", "sagemaker:CreateModelPackage",
                        "sagemaker:DescribeModelPackageGroup", "sagemaker:UpdateModelPackage"]


def check_account_ids(account_ids: Sequence[str], registry_account_id: Optional[str] = None,
                      role: str = "consumer") -> None:
    """Consumer (or publisher) accounts: 12-digit ids, each once, never the registry's own account."""
    if isinstance(account_ids, str):
        raise ValueError(f"{role}_account_ids must be a list, e.g. [{account_ids!r}]")
    for account in account_ids:
        if not isinstance(account, str) or not _ACCOUNT_ID.fullmatch(account):
            raise ValueError(f"{role} account id {account!r} must be a 12-digit AWS account id (quoted)")
    repeated = sorted({a for a in account_ids if list(account_ids).count(a) > 1})
    if repeated:
        raise ValueError(f"{role} account ids must be unique; repeated: {', '.join(repeated)}")
    if registry_account_id is not None and registry_account_id in account_ids:
        raise ValueError(f"{role} account {registry_account_id} is the registry's own account; "
                         f"list only the accounts models are {'promoted to' if role == 'consumer' else 'registered from'}")


@dataclass
class ModelRegistryArgs:
    """Arguments of a `ModelRegistry`."""

    model_names: Sequence[str] = ()
    """Models to register; each gets a model package group of exactly this name. Default: none."""
    model_descriptions: Mapping[str, str] = field(default_factory=dict)
    """Description of each model's group. Default: "Versions of the <model> model"."""
    consumer_account_ids: Sequence[str] = ()
    """Accounts (e.g. staging, production) whose principals may describe the groups and deploy their
    versions (cross-account promotion). Default: none, no resource policy."""
    publisher_account_ids: Sequence[str] = ()
    """Accounts (e.g. production, whose retraining registers new versions) that may register versions
    into the groups. Default: none."""
    registry_account_id: Optional[str] = None
    """The account the registry deploys into (the stack's account). Required with
    `consumer_account_ids` or `publisher_account_ids`, which may not list it. Default: none."""
    image_repositories: Sequence[str] = ()
    """ECR repositories for the images the registered versions run on (created with exactly these names):
    immutable tags, scanned on push, encrypted with `kms_key_arn`, never expired (versions refer to their
    images); consumer and publisher accounts may pull. Default: none."""
    approval_topic_arn: Optional[pulumi.Input[str]] = None
    """SNS topic told when a version of a group is approved (the account's EventBridge sees approvals of
    its own groups only, so the rules live with the registry). Default: no notification."""
    announced_groups: Optional[Sequence[str]] = None
    """The groups whose approvals are announced on `approval_topic_arn`: those a deploy picks versions from.
    Default: every group."""
    mlflow_kind: Literal["sagemaker", "kubernetes", "none"] = "sagemaker"
    """Where the MLflow tracking server runs. Default: sagemaker (a managed tracking server)."""
    tracking_server_size: Literal["Small", "Medium", "Large"] = "Small"
    """Size of the SageMaker tracking server. Default: Small."""
    weekly_maintenance_window_start: Optional[str] = None
    """Start of the SageMaker tracking server's weekly maintenance, `Tue:03:30` (UTC). Default: AWS picks."""
    mlflow_version: Optional[str] = None
    """MLflow version of the SageMaker tracking server, e.g. `3.0`. Default: SageMaker's default."""
    kubernetes_provider: Optional[pulumi.ProviderResource] = None
    """Provider of the EKS cluster MLflow runs on. Required for kind kubernetes."""
    oidc_provider_arn: Optional[pulumi.Input[str]] = None
    """IAM OIDC provider of the cluster (IRSA). Required for kind kubernetes."""
    oidc_issuer_url: Optional[pulumi.Input[str]] = None
    """The cluster's OIDC issuer, `https://oidc.eks.<region>.amazonaws.com/id/<id>`. Required for kind kubernetes."""
    namespace: str = "mlflow"
    """Kubernetes namespace MLflow runs in (created). Default: mlflow."""
    backend_store_uri: Optional[pulumi.Input[str]] = None
    """Database URI of the MLflow backend store (with credentials): pass a Pulumi secret. Stored in a
    Kubernetes Secret, never in the pod spec. Required for kind kubernetes."""
    mlflow_image: str = MLFLOW_IMAGE
    """Image of the self-hosted server; it needs boto3 and the backend store's driver. Default: the
    upstream image, pinned."""
    replicas: int = 2
    """Pods of the self-hosted server (1-10). Default: 2."""
    cpu_request: str = "500m"
    """CPU request of the self-hosted server. Default: 500m."""
    cpu_limit: str = "2"
    """CPU limit of the self-hosted server. Default: 2."""
    memory: str = "2Gi"
    """Memory request and limit of the self-hosted server. Default: 2Gi."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the artifact bucket created here. Default: the bucket creates its own key."""
    artifact_bucket: Optional[SecureBucket] = None
    """Bucket whose `mlflow/` prefix holds MLflow artifacts. Default: a bucket is created."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of the roles created here. Default: none."""
    protect: bool = False
    """Protect the package groups, artifact bucket and tracking server, and retain them on delete. Default: false."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child. Default: none."""

    def __post_init__(self) -> None:
        if isinstance(self.model_names, str):
            raise ValueError(f"model_names must be a list, e.g. [{self.model_names!r}]")
        for model in self.model_names:
            if not isinstance(model, str) or not _ENTITY_NAME.fullmatch(model):
                raise ValueError(f"model name {model!r} must be 1-63 ASCII letters, digits and '-', starting and "
                                 "ending with a letter or digit (a SageMaker model package group name)")
        repeated = sorted({m for m in self.model_names if list(self.model_names).count(m) > 1})
        if repeated:
            raise ValueError(f"model names must be unique; repeated: {', '.join(repeated)}")
        unknown = sorted(set(self.model_descriptions) - set(self.model_names))
        if unknown:
            raise ValueError(f"model_descriptions names models not in model_names: {', '.join(unknown)}")
        if self.registry_account_id is not None and not _ACCOUNT_ID.fullmatch(self.registry_account_id):
            raise ValueError(f"registry_account_id {self.registry_account_id!r} must be a 12-digit AWS account id")
        check_account_ids(self.consumer_account_ids, self.registry_account_id)
        check_account_ids(self.publisher_account_ids, self.registry_account_id, "publisher")
        if (self.consumer_account_ids or self.publisher_account_ids) and self.registry_account_id is None:
            raise ValueError("consumer_account_ids and publisher_account_ids need registry_account_id (the account "
                             "the registry deploys into), which may not be listed")
        if self.mlflow_kind not in ("sagemaker", "kubernetes", "none"):
            raise ValueError(f"mlflow_kind {self.mlflow_kind!r} must be sagemaker, kubernetes or none")
        if isinstance(self.image_repositories, str):
            raise ValueError(f"image_repositories must be a list, e.g. [{self.image_repositories!r}]")
        for repository in self.image_repositories:
            if not (2 <= len(repository) <= 256 and _REPOSITORY.fullmatch(repository)):
                raise ValueError(f"image repository {repository!r} must be an ECR repository name (lowercase "
                                 "letters, digits and '.', '_', '-', '/' between them)")
        if self.announced_groups is not None:
            unknown = sorted(set(self.announced_groups) - set(self.model_names))
            if unknown:
                raise ValueError(f"announced_groups names groups not in model_names: {', '.join(unknown)}")
        self._check_sagemaker()
        if self.mlflow_kind == "kubernetes":
            self._check_kubernetes()

    def _check_sagemaker(self) -> None:
        if self.tracking_server_size not in ("Small", "Medium", "Large"):
            raise ValueError(f"tracking_server_size {self.tracking_server_size!r} must be Small, Medium or Large")
        window = self.weekly_maintenance_window_start
        if window is not None and not _WINDOW.fullmatch(window):
            raise ValueError(f"weekly_maintenance_window_start {window!r} must look like 'Tue:03:30' (UTC)")
        if self.mlflow_version is not None and (len(self.mlflow_version) > 16
                                                or not _MLFLOW_VERSION.fullmatch(self.mlflow_version)):
            raise ValueError(f"mlflow_version {self.mlflow_version!r} must look like '3.0' or '2.16.2'")

    def _check_kubernetes(self) -> None:
        missing = [label for label in ("kubernetes_provider", "oidc_provider_arn", "oidc_issuer_url",
                                       "backend_store_uri") if getattr(self, label) is None]
        if missing:
            raise ValueError(f"mlflow_kind 'kubernetes' needs {', '.join(missing)} (the EKS cluster's provider "
                             "and OIDC provider, and a secret backend store URI)")
        if not isinstance(self.kubernetes_provider, pulumi.ProviderResource):
            raise ValueError("kubernetes_provider must be a pulumi_kubernetes.Provider")
        if not _DNS_LABEL.fullmatch(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} must be at most 63 lowercase letters, digits and '-', "
                             "starting and ending with a letter or digit")
        if not 1 <= self.replicas <= 10:
            raise ValueError(f"replicas ({self.replicas}) must be 1-10")
        for label in ("cpu_request", "cpu_limit", "memory"):
            if not _QUANTITY.fullmatch(getattr(self, label)):
                raise ValueError(f"{label} {getattr(self, label)!r} must be a Kubernetes quantity like '500m' or '2Gi'")


def check_registry_name(name: str, kind: str) -> None:
    """The component name becomes the tracking server's name and, on Kubernetes, a Service name."""
    if kind == "kubernetes":
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,48}[a-z0-9])?", name):
            raise ValueError(f"registry name {name!r} must be at most 50 lowercase letters, digits and '-', starting "
                             "with a letter (it names Kubernetes objects)")
    elif not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}", name):
        raise ValueError(f"registry name {name!r} must be at most 64 ASCII letters, digits and '-', starting and "
                         "ending with a letter or digit")


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

    def __init__(self, name: str, args: ModelRegistryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_registry_name(name, args.mlflow_kind)
        super().__init__(type_token("ModelRegistry"), name, None, opts)
        tags = merge_tags(args.tags, {"model-registry": name})
        context = aws_context(self)

        self.package_groups, self.package_group_names, self.package_group_arns = {}, {}, {}
        for model in args.model_names:
            group = aws.sagemaker.ModelPackageGroup(
                f"{name}-{model}-group",
                model_package_group_name=model,
                model_package_group_description=args.model_descriptions.get(model, f"Versions of the {model} model"),
                tags=tags,
                opts=child(self, protect=args.protect),
            )
            self.package_groups[model] = group
            self.package_group_names[model] = group.model_package_group_name
            self.package_group_arns[model] = group.arn
            if args.consumer_account_ids or args.publisher_account_ids:
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{name}-{model}-group-policy",
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=_consumer_policy(context, group, model, args),
                    opts=child(self),
                )

        if args.approval_topic_arn is not None:
            self._approval_notifications(name, args, tags)
        self.repository_urls: dict[str, pulumi.Output[str]] = {}
        for repository in args.image_repositories:
            self.repository_urls[repository] = self._image_repository(name, repository, args, tags)

        self.artifact_bucket, self.artifact_uri = None, None
        self.tracking_server, self.tracking_server_arn, self.tracking_server_url, self.tracking_uri = (None,) * 4
        if args.mlflow_kind != "none":
            self.artifact_bucket = args.artifact_bucket or SecureBucket(f"{name}-artifacts", SecureBucketArgs(
                kms_key_arn=args.kms_key_arn, protect=args.protect, tags=tags,
            ), opts=child(self))
            self.artifact_uri = pulumi.Output.concat("s3://", self.artifact_bucket.bucket_name, "/", ARTIFACT_PREFIX)
        if args.mlflow_kind == "sagemaker":
            self._sagemaker_mlflow(name, args, context, tags)
        elif args.mlflow_kind == "kubernetes":
            from emlops.components.registry_mlflow_k8s import MlflowOnKubernetes, MlflowOnKubernetesArgs

            server = MlflowOnKubernetes(f"{name}-mlflow", MlflowOnKubernetesArgs(
                registry=args, bucket=self.artifact_bucket, artifact_uri=self.artifact_uri, tags=tags,
            ), opts=child(self, providers=[args.kubernetes_provider]))
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

    def _image_repository(self, name: str, repository: str, args: ModelRegistryArgs, tags: dict) -> pulumi.Output[str]:
        """A repository of the images registered versions run on; the other accounts of the promotion path pull."""
        token = repository.replace("/", "-").replace("_", "-").replace(".", "-")
        created = aws.ecr.Repository(
            f"{name}-{token}-repository",
            name=repository,
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="IMMUTABLE",
            # ECR decrypts layers for pulls through the grant it holds on the key
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}]
            if args.kms_key_arn is not None else [{"encryption_type": "KMS"}],
            force_delete=False,
            tags=tags,
            opts=child(self, protect=args.protect),
        )
        pullers = [*args.consumer_account_ids,
                   *[a for a in args.publisher_account_ids if a not in args.consumer_account_ids]]
        if pullers:
            partition = aws_context(self).partition
            aws.ecr.RepositoryPolicy(
                f"{name}-{token}-repository-policy",
                repository=created.name,
                policy=policy_document([Statement(
                    sid="PromotionAccountsPullImages",
                    principals={"AWS": [pulumi.Output.concat("arn:", partition, ":iam::", account, ":root")
                                        for account in pullers]},
                    actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                )]),
                opts=child(self),
            )
        return created.repository_url

    def _approval_notifications(self, name: str, args: ModelRegistryArgs, tags: dict) -> None:
        """One EventBridge rule per group: a version approved (by a person, in this account) is announced."""
        announced = args.model_names if args.announced_groups is None else args.announced_groups
        for model in [m for m in args.model_names if m in announced]:
            announce_approvals(self, f"{name}-{model}", model, args.approval_topic_arn, tags)

    def _sagemaker_mlflow(self, name: str, args: ModelRegistryArgs, context, tags: dict) -> None:
        role = ServiceRole(f"{name}-mlflow", ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"SageMaker MLflow tracking server of the {name} registry",
            permissions_boundary_arn=args.permissions_boundary_arn,
            tags=tags,
        ), opts=child(self))
        policies = [self.artifact_bucket.grant_read_write(role, prefix=ARTIFACT_PREFIX)]
        if args.model_names:
            # automatic model registration, only into this registry's groups
            policies.append(role.add_policy("model-registration", [Statement(
                actions=REGISTRATION_ACTIONS,
                resources=[resource for model in args.model_names for resource in (
                    context.arn("sagemaker", f"model-package-group/{model.lower()}"), _package_arns(context, model))],
            )]))
        self.tracking_server = aws.sagemaker.MlflowTrackingServer(
            f"{name}-tracking-server",
            tracking_server_name=f"{name}-mlflow",
            artifact_store_uri=self.artifact_uri,
            role_arn=role.arn,
            tracking_server_size=args.tracking_server_size,
            automatic_model_registration=True,
            weekly_maintenance_window_start=args.weekly_maintenance_window_start,
            mlflow_version=args.mlflow_version,
            tags=tags,
            # the server checks its role's access to the artifact store when it starts
            opts=child(self, protect=args.protect, depends_on=policies),
        )
        self.tracking_server_arn = self.tracking_server.arn
        self.tracking_server_url = self.tracking_server.tracking_server_url
        # the sagemaker-mlflow plugin takes the tracking server's ARN as the tracking URI
        self.tracking_uri = self.tracking_server.arn


def announce_approvals(parent: pulumi.Resource, name: str, group: str, topic_arn: pulumi.Input[str],
                       tags: Mapping[str, str]) -> aws.cloudwatch.EventRule:
    """An EventBridge rule `<name>-approved` sending the approvals of GROUP's versions to TOPIC_ARN. Only the
    account that holds the group sees its events."""
    rule = aws.cloudwatch.EventRule(
        f"{name}-approved",
        description=f"{name}: a model package of {group} was approved",
        event_pattern=json.dumps({
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
        }),
        tags=dict(tags),
        opts=child(parent),
    )
    aws.cloudwatch.EventTarget(f"{name}-approved-notify", rule=rule.name, arn=topic_arn, opts=child(parent))
    return rule


def _consumer_policy(context, group: aws.sagemaker.ModelPackageGroup, model: str,
                     args: ModelRegistryArgs) -> pulumi.Output[str]:
    def roots(accounts: Sequence[str]) -> dict:
        return {"AWS": [pulumi.Output.concat("arn:", context.partition, ":iam::", account, ":root")
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
        statements.append(Statement(
            sid="PublisherAccountsRegisterVersions", principals=roots(args.publisher_account_ids),
            actions=PUBLISHER_ACTIONS, resources=[group.arn, _package_arns(context, model)]))
    return policy_document(statements)


def _package_arns(context, model: str) -> pulumi.Output[str]:
    # SageMaker lower-cases names in its ARNs (the group's ARN too).
    return context.arn("sagemaker", f"model-package/{model.lower()}/*")
