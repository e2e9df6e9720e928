"""The typed stack configuration: everything a `stacks/Pulumi.<stack>.yaml` may say.

A stack's whole platform lives under one Pulumi config key, `emlops:platform`. It is validated here,
before any resource is registered, and every problem is reported as one line naming the stack file,
the key path and what is allowed::

    stacks/Pulumi.dev.yaml: emlops:platform.tags.owner: field required

Unknown keys are rejected so that a typo can never be silently ignored. Sections for models, feature
groups, training, the registry and the network join this schema with the issues that build them.
The one-line messages are worded from pydantic's errors in `infra.config_errors`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal, Optional

from pulumi import RunError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from emlops.catalog.aws import Partition, partition_of, regions_with
from emlops.components.iam import FULL_ACCESS_POLICY
from emlops.components.settings import AtKey, QuotedStr, Settings, error_message
from emlops.program.config_errors import CONFIG_KEY, CONFIG_NAMESPACE, FULL_KEY, describe
from emlops.program.config_guardrails import GuardrailsConfig
from emlops.components.personas_args import PersonasSettings
from emlops.components.feature_store_args import FeatureGroupSettings, check_feature_groups
from emlops.components.alerts import AlertsSettings
from emlops.components.kms import KmsSettings
from emlops.components.network_args import NetworkSettings
from emlops.components.storage import StorageSettings
from emlops.components.training_args import TrainingSettings
from emlops.program.config_models import (
    LONGEST_CHILD_SUFFIX,
    SAGEMAKER_NAME_LIMIT,
    ModelConfig,
    RegistryConfig,
)

# Secrets live in their own keys (`pulumi config set --secret ...`), never inside emlops:platform.
MLFLOW_BACKEND_KEY = "mlflowBackendStoreUri"
SCHEMA_ID = "https://emlops.dev/schemas/platform-config.json"
REQUIRED_TAGS = ("owner", "cost-center", "data-classification")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
ADD_NETWORK = "add network.managed (or network.vpc_id and network.private_subnet_ids)"
PRODUCTION_ZONES = 3


class ConfigError(RunError):
    """A stack configuration problem, reported as one line without a traceback.

    It is a `pulumi.RunError`, so the real `pulumi up` also prints just the message.
    """


class Tags(BaseModel):
    """Tags applied to every resource of the stack. `owner`, `cost-center` and
    `data-classification` are required; any other key is an extra tag."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=False)
    __pydantic_extra__: dict[str, str] = Field(init=False)  # extra tags are strings too

    owner: str = Field(
        min_length=1, max_length=256,
        description="Team or person accountable for the stack's resources (e.g. an e-mail or team alias).",
    )
    cost_center: QuotedStr = Field(
        alias="cost-center", min_length=1, max_length=256,
        description="Cost center that pays for the stack's resources.",
    )
    data_classification: Literal["public", "internal", "confidential", "restricted"] = Field(
        alias="data-classification",
        description="Highest classification of the data the platform processes.",
    )

    @model_validator(mode="after")
    def _check_extra_keys(self) -> "Tags":
        extra = self.__pydantic_extra__ or {}
        for key, value in extra.items():
            if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
                raise ValueError(
                    f"tag key {key!r} is not allowed: 1-128 letters, digits, spaces or _.:/=+-@, "
                    "not starting with 'aws:'"
                )
            if len(value) > 256:
                raise ValueError(f"tag {key!r}: value is longer than 256 characters")
        # AWS allows 50 tags per resource; emlops adds `environment`, `managed-by` and `pulumi-stack`.
        if len(extra) + len(REQUIRED_TAGS) + 3 > 50:
            raise ValueError(f"at most {50 - 3 - len(REQUIRED_TAGS)} extra tags are allowed (AWS limit 50)")
        return self

    def as_dict(self) -> dict[str, str]:
        """All tags, with AWS tag keys (`cost-center`, ...)."""
        return {**self.model_dump(by_alias=True), **(self.__pydantic_extra__ or {})}


class PlatformConfig(Settings):
    """The whole platform of one stack (`emlops:platform` in `stacks/Pulumi.<stack>.yaml`)."""

    environment: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$",
        description="Environment name, used in resource names and tags (e.g. `dev`, `prod`).",
        json_schema_extra=error_message(
            "must be 2-16 lowercase letters, digits or '-', starting with a letter"
        ),
    )
    production: bool = Field(
        False,
        description="Production stacks protect and retain every stateful resource. Default: false.",
    )
    account_id: QuotedStr = Field(
        pattern=r"^[0-9]{12}$",
        description="The 12-digit AWS account the stack deploys into.",
        json_schema_extra=error_message("must be a 12-digit AWS account id, e.g. '123456789012'"),
    )
    region: str = Field(
        description="AWS region of the stack; must be a region where SageMaker is available.",
    )
    deploy_role_arn: Optional[str] = Field(
        None,
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$",
        description="IAM role in `account_id` that the stack's AWS provider assumes (for example from CI's "
        "OIDC session in a tooling account). Default: the caller's credentials are used as they are.",
        json_schema_extra=error_message(
            "must be an IAM role ARN, e.g. 'arn:aws:iam::123456789012:role/emlops-deploy'"),
    )
    tags: Tags = Field(description="Tags every resource carries.")
    permission_boundary_arn: Optional[str] = Field(
        None,
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::([0-9]{12}|aws):policy/[A-Za-z0-9_+=,.@/-]{1,128}$",
        description="Managed policy set as the permissions boundary of every IAM role the platform "
        "creates. Default: no boundary.",
        json_schema_extra=error_message(
            "must be an IAM policy ARN, e.g. 'arn:aws:iam::123456789012:policy/ml-boundary'"
        ),
    )
    kms: KmsSettings = Field(default_factory=KmsSettings, description="KMS key settings of the platform's keys.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="S3 bucket settings.")
    network: Optional[NetworkSettings] = Field(
        None, description="The VPC whose private subnets models run in. Required when a model runs on instances.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Model registry settings.")
    feature_groups: list[FeatureGroupSettings] = Field(
        default_factory=list, description="SageMaker feature groups of the platform's feature store. Default: none.")
    training: Optional[TrainingSettings] = Field(
        None, description="Training infrastructure (SageMaker jobs or an EKS GPU cluster). Default: none.")
    models: list[ModelConfig] = Field(default_factory=list, description="Models, each served by its own endpoint.")
    personas: Optional[PersonasSettings] = Field(
        None, description="IAM roles people assume (data-scientist, ml-engineer, platform-admin), each with its "
        "own least-privilege policy. Default: none.")
    guardrails: GuardrailsConfig = Field(
        default_factory=GuardrailsConfig,
        description="Guardrails: allowed SageMaker instance types and accepted exceptions to policy rules "
        "(`emlops check`, `policy/`). Default: every instance type botocore allows, no exceptions.")
    alerts: AlertsSettings = Field(default_factory=AlertsSettings,
                                 description="Subscribers of the stack's alerts topic (drift, violations, failures).")

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        known = regions_with("sagemaker")
        if region not in known:
            close = difflib.get_close_matches(region, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"{region!r} is not a region with SageMaker; {hint}allowed: {', '.join(known)}")
        return region

    @field_validator("permission_boundary_arn")
    @classmethod
    def _not_full_access(cls, arn: Optional[str]) -> Optional[str]:
        if arn is not None and FULL_ACCESS_POLICY.search(arn):
            raise ValueError("a *FullAccess managed policy cannot serve as a permissions boundary")
        return arn

    @model_validator(mode="after")
    def _boundary_in_partition(self) -> "PlatformConfig":
        arn = self.permission_boundary_arn
        if arn and arn.split(":")[1] != self.partition.name:
            raise ValueError(
                f"permission_boundary_arn is in partition {arn.split(':')[1]!r} but region "
                f"{self.region!r} is in {self.partition.name!r}"
            )
        return self

    @model_validator(mode="after")
    def _deploy_role_in_the_account(self) -> "PlatformConfig":
        arn = self.deploy_role_arn
        if arn and arn.split(":")[4] != self.account_id:
            raise AtKey("deploy_role_arn", f"is in account {arn.split(':')[4]!r} but the stack deploys into "
                        f"{self.account_id!r}; the provider assumes a role in the stack's own account")
        if arn and arn.split(":")[1] != self.partition.name:
            raise AtKey("deploy_role_arn", f"is in partition {arn.split(':')[1]!r} but region {self.region!r} "
                        f"is in {self.partition.name!r}")
        return self

    @model_validator(mode="after")
    def _models_fit_the_environment(self) -> "PlatformConfig":
        seen: set[str] = set()
        for index, model in enumerate(self.models):
            at = f"models[{index}]"
            if model.name in seen:
                raise AtKey(f"{at}.name", f"model name {model.name!r} is used twice; names must be unique")
            seen.add(model.name)
            longest = f"{self.environment}-{model.name}-config-1a2b3c4"
            if len(longest) > SAGEMAKER_NAME_LIMIT:
                room = SAGEMAKER_NAME_LIMIT - LONGEST_CHILD_SUFFIX - len(self.environment) - 1
                raise AtKey(f"{at}.name", f"{model.name!r} is too long for environment {self.environment!r}: "
                            f"SageMaker names are at most {SAGEMAKER_NAME_LIMIT} characters, so at most {room} here")
            if model.source.mlflow and not self.registry.mlflow_tracking_uri:
                raise AtKey(f"{at}.source.mlflow", "needs registry.mlflow_tracking_uri to resolve the reference")
            if model.variants and self.network is None:
                raise AtKey(at, f"runs on instances in private subnets; {ADD_NETWORK}, or use serverless")
            if self.production:
                self._check_production_model(model, at)
            problem = model.monitoring.problem(model.captures_data(self.environment), self.production,
                                               package_source=bool(model.source.model_package_group
                                                                   or model.source.model_package_arn))
            if problem:
                raise AtKey(f"{at}.monitoring.{problem[0]}", problem[1])
            if model.retraining.enabled:
                if not model.monitoring.is_enabled(model.captures_data(self.environment)):
                    raise AtKey(f"{at}.retraining.enabled", "retraining starts on the monitor's violations; monitor "
                                "the model (data capture and monitoring on)")
                if self.training is None or self.training.kind != "sagemaker":
                    raise AtKey(f"{at}.retraining.enabled", "retraining runs SageMaker jobs in the training "
                                "network and buckets; needs training.kind: sagemaker")
                if not model.retraining.training_image:
                    raise AtKey(f"{at}.retraining.training_image", "field required when retraining is enabled "
                                "(an image of the training repository with an immutable tag)")
        return self

    @model_validator(mode="after")
    def _data_training_registry_fit(self) -> "PlatformConfig":
        problem = check_feature_groups(f"{self.environment}-features", self.feature_groups)
        if problem:
            raise AtKey(f"feature_groups{problem[0]}", problem[1])
        if self.training is not None and self.network is None:
            raise AtKey("training", f"runs in private subnets; {ADD_NETWORK}")
        for key in ("consumer_account_ids", "publisher_account_ids"):
            if self.account_id in getattr(self.registry, key):
                raise AtKey(f"registry.{key}", f"{self.account_id!r} is this stack's own account; list only the "
                            f"accounts that {'consume' if key.startswith('consumer') else 'publish into'} it")
        if self.registry.mlflow.kind == "kubernetes" and (self.training is None or self.training.kind != "eks"):
            raise AtKey("registry.mlflow.kind", "kubernetes needs the EKS training cluster (training.kind: eks)")
        return self

    @model_validator(mode="after")
    def _network_fits_the_environment(self) -> "PlatformConfig":
        network = self.network
        if not self.production or network is None:
            return self
        if network.managed is not None:
            if network.managed.az_count < PRODUCTION_ZONES:
                raise AtKey("network.managed.az_count", f"production networks span at least {PRODUCTION_ZONES} "
                            f"availability zones, got {network.managed.az_count}")
            if network.managed.public_subnets:
                raise AtKey("network.managed.public_subnets", "production networks have private subnets only; "
                            "workloads reach AWS through the VPC endpoints (set it to false)")
        elif network.zone_count < PRODUCTION_ZONES:
            raise AtKey("network.private_subnet_ids", f"production networks span at least {PRODUCTION_ZONES} "
                        f"availability zones: give {PRODUCTION_ZONES} private subnets in different zones, got "
                        f"{network.zone_count}")
        return self

    @staticmethod
    def _check_production_model(model: ModelConfig, at: str) -> None:
        if model.serverless:
            raise AtKey(f"{at}.serverless", "production endpoints run on at least 2 instances; use variants")
        for v_index, variant in enumerate(model.variants):
            if variant.initial_instance_count < 2:
                raise AtKey(f"{at}.variants[{v_index}].initial_instance_count",
                            f"production endpoints need at least 2 instances per variant, got "
                            f"{variant.initial_instance_count}")
        if model.autoscaling is None:
            raise AtKey(f"{at}.autoscaling", "production endpoints need autoscaling (min_instances >= 2)")
        if model.autoscaling.min_instances < 2:
            raise AtKey(f"{at}.autoscaling.min_instances",
                        f"production endpoints keep at least 2 instances, got {model.autoscaling.min_instances}")
        if model.autoscaling.off_hours is not None:
            raise AtKey(f"{at}.autoscaling.off_hours", "production endpoints are not scaled down off hours")
        if model.data_capture.enabled is False:
            raise AtKey(f"{at}.data_capture.enabled", "production endpoints capture data for monitoring")

    @property
    def partition(self) -> Partition:
        """The AWS partition of the stack's region."""
        return partition_of(self.region)


# --------------------------------------------------------------------------------------------------
# Loading and one-line errors


def stack_file(stack: str) -> str:
    """The stack file a stack's config comes from, as users see it (relative to the project)."""
    return f"stacks/Pulumi.{stack}.yaml"


def parse_platform_config(raw: Any, source: str) -> PlatformConfig:
    """Validate the `emlops:platform` value of a stack; raise ConfigError with one line on failure."""
    if raw is None:
        raise ConfigError(f"{source}: {FULL_KEY}: field required")
    try:
        return PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        # A misspelt key also makes the real key "missing"; the unknown key explains both.
        errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
        raise ConfigError(f"{source}: {describe(errors[0], PlatformConfig)}") from None


def load_platform_config() -> PlatformConfig:
    """Read and validate the running Pulumi program's stack config."""
    import json

    import pulumi

    source = stack_file(pulumi.get_stack())
    text = pulumi.Config(CONFIG_NAMESPACE).get(CONFIG_KEY)
    if text is None:
        raise ConfigError(f"{source}: {FULL_KEY}: field required")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(f"{source}: {FULL_KEY}: must be a mapping of settings, got {text!r}") from None
    return parse_platform_config(raw, source)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `emlops:platform`, for editors and the README's config reference."""
    schema = PlatformConfig.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
