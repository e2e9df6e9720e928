"""Stack config for the model registry: its MLflow tracking server and the accounts models are promoted to.

These fields join `registry` (`RegistryConfig` in config_models.py): `registry.mlflow`, the accounts
that consume (`consumer_account_ids`) and publish into (`publisher_account_ids`) a registry, the groups a
registry holds for other stacks (`package_groups`), and `shared_stack`, the shared-services stack whose
registry an environment deploys from and registers into. `RegistryFields` holds them so `RegistryConfig`
can inherit them.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from emlops.components.settings import Settings

# botocore's `RepositoryName` pattern (ECR CreateRepository)
ECR_REPOSITORY_NAME = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"


class RegistryMlflowConfig(Settings):
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
        json_schema_extra={"errorMessage": "must look like 'Tue:03:30' (day, then UTC hour and minute)"})
    version: Optional[str] = Field(
        None, pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", max_length=16,
        description="MLflow version of the SageMaker tracking server, e.g. `3.0`. Default: SageMaker's default.",
        json_schema_extra={"errorMessage": "must be an MLflow version like '3.0' or '2.16.2'"})
    namespace: str = Field(
        "mlflow", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Kubernetes namespace of the self-hosted server (kind kubernetes). Default: mlflow.",
        json_schema_extra={"errorMessage": "must be a Kubernetes namespace name (lowercase letters, digits, '-')"})

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> "RegistryMlflowConfig":
        managed_only = [key for key in ("maintenance_window", "version") if getattr(self, key) is not None]
        if self.kind != "sagemaker" and managed_only:
            raise ValueError(f"{', '.join(managed_only)} only apply to kind 'sagemaker' (got kind {self.kind!r})")
        return self


def _unique(values: list[str], what: str) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(repeated)}")
    return values


def check_consumer_account_ids(values: list[str]) -> list[str]:
    """12-digit account ids, each listed once."""
    for value in values:
        if not re.fullmatch(r"[0-9]{12}", value):
            raise ValueError(f"{value!r} is not a 12-digit AWS account id (quote it: '123456789012')")
    return _unique(values, "account ids")


class RegistryFields(Settings):
    """The registry fields this module adds; `RegistryConfig` inherits them."""

    mlflow: RegistryMlflowConfig = Field(default_factory=RegistryMlflowConfig,
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
    shared_stack: Optional[str] = Field(
        None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$",
        description="Stack (in this project) of the shared-services registry this environment deploys from and "
        "registers into, e.g. `shared`: `source.model_package_group` and retraining name its groups, and the "
        "environment reads its outputs through a stack reference. Default: the stack's own registry.",
        json_schema_extra={"errorMessage": "must be a stack name of this project, e.g. 'shared'"})

    @field_validator("consumer_account_ids", "publisher_account_ids")
    @classmethod
    def _account_ids(cls, values: list[str]) -> list[str]:
        return check_consumer_account_ids(values)

    @field_validator("package_groups")
    @classmethod
    def _group_names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", value):
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

    @model_validator(mode="after")
    def _shared_or_own(self) -> "RegistryFields":
        own = [key for key in ("consumer_account_ids", "publisher_account_ids", "package_groups",
                               "image_repositories") if getattr(self, key)]
        if self.shared_stack is not None and own:
            raise ValueError(f"{', '.join(own)} belong to the shared stack {self.shared_stack!r} when shared_stack "
                             "is set (this stack holds no package groups)")
        return self
