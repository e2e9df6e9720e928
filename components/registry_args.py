"""What a `ModelRegistry` takes: its settings (a stack file's `registry` section) and its context.

The settings say what the registry holds (package groups besides one per served model, image
repositories), who consumes and publishes into it, and where MLflow runs; the context is what the
platform supplies (the groups its models need, which approvals to announce and where, the data key and
artifacts bucket, the EKS cluster a self-hosted MLflow runs on, governance).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.settings import Governance, Settings, error_message

if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket

# botocore's `EntityName` (CreateModelPackageGroup.ModelPackageGroupName); a test keeps them equal.
ENTITY_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
# botocore's `RepositoryName` pattern (ECR CreateRepository)
ECR_REPOSITORY_NAME = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
# The prefix of the artifacts bucket MLflow keeps its artifacts under.
ARTIFACT_PREFIX = "mlflow/"
# Pinned to the MLflow client the toolkit itself uses (mlflow-skinny in pyproject.toml).
MLFLOW_IMAGE = "ghcr.io/mlflow/mlflow:v3.17.2"


def _unique(values: list[str], what: str) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(repeated)}")
    return values


def check_account_ids(values: list[str]) -> list[str]:
    """12-digit account ids, each listed once."""
    for value in values:
        if not re.fullmatch(r"[0-9]{12}", value):
            raise ValueError(f"{value!r} is not a 12-digit AWS account id (quote it: '123456789012')")
    return _unique(values, "account ids")


class MlflowSettings(Settings):
    """The MLflow tracking server: SageMaker-managed, self-hosted on the EKS cluster, or none."""

    kind: Literal["sagemaker", "kubernetes", "none"] = Field(
        "sagemaker", description="Where the tracking server runs: a SageMaker managed server, a Deployment on "
        "the training EKS cluster, or none. Default: sagemaker.")
    size: Literal["Small", "Medium", "Large"] = Field(
        "Small", description="Size of the SageMaker tracking server (kind sagemaker). Default: Small.")
    maintenance_window: Optional[str] = Field(
        None, pattern=r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):([0-5]\d)$",
        description="Weekly maintenance start of the SageMaker tracking server, UTC, e.g. `Tue:03:30`. "
        "Default: AWS picks.",
        json_schema_extra=error_message("must look like 'Tue:03:30' (day, then UTC hour and minute)"))
    version: Optional[str] = Field(
        None, pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", max_length=16,
        description="MLflow version of the SageMaker tracking server, e.g. `3.0`. Default: SageMaker's default.",
        json_schema_extra=error_message("must be an MLflow version like '3.0' or '2.16.2'"))
    namespace: str = Field(
        "mlflow", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Kubernetes namespace of the self-hosted server (kind kubernetes). Default: mlflow.",
        json_schema_extra=error_message("must be a Kubernetes namespace name (lowercase letters, digits, '-')"))
    image: str = Field(MLFLOW_IMAGE, min_length=1, description="Image of the self-hosted server (kind kubernetes); "
                       "it needs boto3 and the backend store's driver. Default: the upstream image, pinned.")
    replicas: int = Field(2, ge=1, le=10, description="Pods of the self-hosted server (kind kubernetes). Default: 2.")
    cpu_request: str = Field("500m", pattern=_QUANTITY, description="CPU request of the self-hosted server. "
                             "Default: 500m.", json_schema_extra=error_message("must be a Kubernetes quantity like '500m'"))
    cpu_limit: str = Field("2", pattern=_QUANTITY, description="CPU limit of the self-hosted server. Default: 2.",
                           json_schema_extra=error_message("must be a Kubernetes quantity like '2'"))
    memory: str = Field("2Gi", pattern=_QUANTITY, description="Memory request and limit of the self-hosted server. "
                        "Default: 2Gi.", json_schema_extra=error_message("must be a Kubernetes quantity like '2Gi'"))

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> "MlflowSettings":
        managed_only = [key for key in ("maintenance_window", "version") if getattr(self, key) is not None]
        if self.kind != "sagemaker" and managed_only:
            raise ValueError(f"{', '.join(managed_only)} only apply to kind 'sagemaker' (got kind {self.kind!r})")
        return self


class RegistrySettings(Settings):
    """The model registry: package groups (with cross-account promotion), image repositories and MLflow."""

    mlflow: MlflowSettings = Field(default_factory=MlflowSettings,
                                   description="The MLflow tracking server. Default: SageMaker-managed, Small.")
    consumer_account_ids: list[str] = Field(
        default_factory=list,
        description="Accounts (staging, production) that may describe the model package groups and deploy their "
        "versions; never the registry's own account. Default: none.")
    publisher_account_ids: list[str] = Field(
        default_factory=list,
        description="Accounts whose pipelines and data scientists register new versions into the model package "
        "groups (write `models/` of the artifacts bucket, encrypting through S3); never the registry's own "
        "account. Default: none.")
    package_groups: list[str] = Field(
        default_factory=list,
        description="Model package groups the registry holds besides one per served model, e.g. the groups a "
        "shared-services registry holds for the environments. Default: none.")
    image_repositories: list[str] = Field(
        default_factory=list,
        description="ECR repositories the registry holds for the images its versions run on (e.g. the training "
        "images retraining registers with): immutable tags, scanned on push, encrypted with the data key, never "
        "expired (registered versions refer to them); consumer and publisher accounts may pull. Default: none.")

    @field_validator("consumer_account_ids", "publisher_account_ids")
    @classmethod
    def _account_ids(cls, values: list[str]) -> list[str]:
        return check_account_ids(values)

    @field_validator("package_groups")
    @classmethod
    def _group_names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(ENTITY_NAME_PATTERN, value):
                raise ValueError(f"{value!r} is not a model package group name (1-63 letters, digits and '-', "
                                 "starting and ending with a letter or digit)")
        return _unique(values, "group names")

    @field_validator("image_repositories")
    @classmethod
    def _repository_names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not (2 <= len(value) <= 256 and re.fullmatch(ECR_REPOSITORY_NAME, value)):
                raise ValueError(f"{value!r} is not an ECR repository name (2-256 lowercase letters, digits and "
                                 "'.', '_', '-', '/' between them)")
        return _unique(values, "repository names")

    @property
    def promotion_accounts(self) -> list[str]:
        """Consumer and publisher accounts, each once: the accounts of the promotion path."""
        return [*self.consumer_account_ids,
                *[a for a in self.publisher_account_ids if a not in self.consumer_account_ids]]


@dataclass(frozen=True)
class ClusterAccess:
    """The EKS cluster a self-hosted MLflow server runs on (IRSA through its OIDC provider)."""

    kubernetes_provider: pulumi.ProviderResource
    """The cluster's pulumi_kubernetes provider."""
    oidc_provider_arn: pulumi.Input[str]
    """IAM OIDC provider of the cluster."""
    oidc_issuer_url: pulumi.Input[str]
    """`https://oidc.eks.<region>.amazonaws.com/id/<id>`."""


@dataclass(frozen=True)
class RegistryContext:
    """What the platform supplies to a `ModelRegistry`."""

    account_id: str
    """The account the registry deploys into; consumer and publisher accounts may not list it."""
    model_groups: Sequence[str] = ()
    """Groups the platform's models need (one per served model, the groups models are sourced from); the
    registry holds these and the settings' `package_groups`. Default: none."""
    descriptions: Mapping[str, str] = field(default_factory=dict)
    """Description of a group. Default: "Versions of the <group> model"."""
    approval_topic_arn: Optional[pulumi.Input[str]] = None
    """SNS topic told when a version is approved (the account's EventBridge sees approvals of its own groups
    only, so the rules live with the registry). Default: no announcements."""
    announced_groups: Optional[Sequence[str]] = None
    """The groups whose approvals are announced: those a deploy picks versions from. Default: every group."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the repositories and of the artifacts bucket created here. Default: AWS-managed for repositories,
    the bucket's own key."""
    artifact_bucket: Optional["SecureBucket"] = None
    """Bucket whose `mlflow/` prefix holds MLflow artifacts. Default: a bucket is created."""
    cluster: Optional[ClusterAccess] = None
    """The EKS cluster MLflow runs on. Required for mlflow kind kubernetes."""
    backend_store_uri: Optional[pulumi.Input[str]] = None
    """Database URI of the self-hosted MLflow server's backend store (with credentials): a Pulumi secret, stored
    in a Kubernetes Secret, never in the pod spec. Required for mlflow kind kubernetes."""
    governance: Governance = field(default_factory=Governance)
    """Tags, the roles' permissions boundary, and protection of the groups, repositories, bucket and server."""

    def groups(self, settings: RegistrySettings) -> list[str]:
        """Every group the registry holds, each once: the models' groups, then the settings' `package_groups`."""
        return list(dict.fromkeys([*self.model_groups, *settings.package_groups]))

    def check(self, settings: RegistrySettings) -> None:
        """ValueError in one line when the context cannot work with the settings (before anything exists)."""
        if not re.fullmatch(r"[0-9]{12}", self.account_id):
            raise ValueError(f"account_id {self.account_id!r} must be a 12-digit AWS account id")
        if isinstance(self.model_groups, str):
            raise ValueError(f"model_groups must be a list, e.g. [{self.model_groups!r}]")
        repeated = sorted({g for g in self.model_groups if list(self.model_groups).count(g) > 1})
        if repeated:
            raise ValueError(f"model_groups must be unique; repeated: {', '.join(repeated)}")
        if self.cluster is not None and not isinstance(self.cluster.kubernetes_provider, pulumi.ProviderResource):
            raise ValueError("cluster.kubernetes_provider must be the cluster's pulumi_kubernetes.Provider")
        for key in ("consumer_account_ids", "publisher_account_ids"):
            if self.account_id in getattr(settings, key):
                raise ValueError(f"{key}: {self.account_id!r} is the registry's own account; list only the "
                                 f"accounts that {'consume' if key.startswith('consumer') else 'publish into'} it")
        groups = self.groups(settings)
        for group in groups:
            if not re.fullmatch(ENTITY_NAME_PATTERN, group):
                raise ValueError(f"model package group {group!r} must be 1-63 ASCII letters, digits and '-', "
                                 "starting and ending with a letter or digit")
        unknown = sorted((set(self.announced_groups or ()) | set(self.descriptions)) - set(groups))
        if unknown:
            raise ValueError(f"announced_groups and descriptions name groups the registry does not hold: "
                             f"{', '.join(unknown)}")
        if settings.mlflow.kind == "kubernetes" and (self.cluster is None or self.backend_store_uri is None):
            raise ValueError("mlflow kind 'kubernetes' needs the EKS cluster (cluster) and a secret backend store "
                             "URI (backend_store_uri)")
