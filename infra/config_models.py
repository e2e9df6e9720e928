"""Stack config sections for serving: `models`, the network they run in, and the registry they come from."""

from __future__ import annotations

import functools
import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from emlops.components.settings import AtKey, Settings

from emlops.catalog.aws import api_enum
from emlops.program.config_monitoring import MonitoringConfig
from emlops.program.config_network import ManagedNetworkConfig
from emlops.program.config_retraining import RetrainingConfig
from emlops.program.config_registry import RegistryFields

MODEL_NAME = r"^[a-z0-9](-?[a-z0-9])*$"
# The longest SageMaker child name a model gets is "<environment>-<model>-config" plus Pulumi's
# 8-character auto-name suffix, and SageMaker names are at most 63 characters.
SAGEMAKER_NAME_LIMIT = 63
LONGEST_CHILD_SUFFIX = len("-config") + 8


@functools.lru_cache(maxsize=1)
def production_variant_instance_types() -> tuple[str, ...]:
    """SageMaker's own list of hosting instance types (botocore's `ProductionVariantInstanceType`)."""
    return api_enum("sagemaker", "ProductionVariantInstanceType")


class ModelSourceConfig(Settings):
    """Where the model artifact comes from: exactly one of the four keys."""

    mlflow: Optional[str] = Field(
        None, pattern=r"^models:/[^/@\s]+(@[A-Za-z0-9_-]+|/[0-9]+)$",
        description="MLflow registry reference, `models:/<name>@<alias>` or `models:/<name>/<version>`, "
        "resolved against `registry.mlflow_tracking_uri` when the stack is previewed or deployed.",
        json_schema_extra={"errorMessage": "must be 'models:/<name>@<alias>' or 'models:/<name>/<version>'"},
    )
    model_package_group: Optional[str] = Field(
        None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
        description="SageMaker model package group: its latest `Approved` package is deployed.",
        json_schema_extra={"errorMessage": "must be a SageMaker model package group name"},
    )
    model_package_arn: Optional[str] = Field(
        None, pattern=r"^arn:aws(-cn|-us-gov)?:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[A-Za-z0-9_-]{1,63}/[0-9]+$",
        description="A pinned SageMaker model package version (must be `Approved`).",
        json_schema_extra={"errorMessage": "must be a model package ARN, "
                           "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"},
    )
    s3_uri: Optional[str] = Field(
        None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+(\.tar\.gz|/)$",
        description="Explicit model artifact: a `.tar.gz` object or an S3 prefix ending in `/`.",
        json_schema_extra={"errorMessage": "must be s3://<bucket>/<key>.tar.gz or an S3 prefix ending in '/'"},
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "ModelSourceConfig":
        given = [key for key in ("mlflow", "model_package_group", "model_package_arn", "s3_uri") if getattr(self, key)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of mlflow, model_package_group, model_package_arn, s3_uri"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class ImageConfig(Settings):
    """The inference container: a SageMaker framework image for the stack's region, or your own ECR image."""

    framework: Optional[Literal["xgboost", "sklearn", "pytorch", "tensorflow", "huggingface"]] = Field(
        None, description="Built-in framework whose image URI comes from the SageMaker SDK's catalogue.")
    framework_version: Optional[str] = Field(None, description="Framework version, e.g. `1.7-1` for xgboost.")
    python_version: Optional[str] = Field(None, description="Python version tag (`py3`, `py310`) where the "
                                          "framework needs one. Default: the SDK's default.")
    base_framework_version: Optional[str] = Field(None, description="For huggingface: the framework underneath, "
                                                  "e.g. `pytorch2.6.0`. Default: none.")
    uri: Optional[str] = Field(
        None, pattern=r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$",
        description="Your own image in ECR (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`).",
        json_schema_extra={"errorMessage": "must be an ECR image URI, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"},
    )

    @model_validator(mode="after")
    def _framework_or_uri(self) -> "ImageConfig":
        if bool(self.framework) == bool(self.uri):
            raise ValueError("give either framework (with framework_version) or uri")
        if self.framework and not self.framework_version:
            raise ValueError(f"framework {self.framework!r} needs a framework_version")
        return self


class VariantConfig(Settings):
    """One production variant on provisioned instances."""

    name: str = Field("primary", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
                      description="Variant name; keep it stable (blue/green updates need the same name). Default: primary.")
    instance_type: str = Field(description="Hosting instance type, e.g. `ml.m5.large`.")
    initial_instance_count: int = Field(1, ge=1, le=100, description="Instances at creation. Default: 1.")
    weight: float = Field(1.0, gt=0, le=1000, description="Share of traffic relative to other variants. Default: 1.")

    @field_validator("instance_type")
    @classmethod
    def _known_instance_type(cls, value: str) -> str:
        allowed = production_variant_instance_types()
        if value not in allowed:
            import difflib

            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"{value!r} is not a SageMaker hosting instance type; {hint}"
                             "see ProductionVariantInstanceType in the SageMaker API")
        return value


class ServerlessConfig(Settings):
    """A serverless variant (cheap, scales to zero; no VPC, isolation or data capture)."""

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(2048, description="Memory. Default: 2048.")
    max_concurrency: int = Field(5, ge=1, le=200, description="Concurrent invocations. Default: 5.")


class DataCaptureConfig(Settings):
    """Capture of requests and responses into the platform's capture bucket (KMS-encrypted)."""

    enabled: Optional[bool] = Field(None, description="Default: on in every environment except `dev`.")
    sampling_percentage: int = Field(100, ge=0, le=100, description="Share of requests captured. Default: 100.")
    csv_content_types: list[str] = Field(default_factory=lambda: ["text/csv"],
                                         description="Content types captured as CSV. Default: text/csv.")
    json_content_types: list[str] = Field(default_factory=lambda: ["application/json"],
                                          description="Content types captured as JSON. Default: application/json.")


class DeploymentConfig(Settings):
    """How an update shifts traffic to the new fleet (blue/green) and when it rolls back."""

    strategy: Literal["all_at_once", "canary", "linear"] = Field(
        "all_at_once", description="Traffic shifting: all at once, a canary then the rest, or linear steps. "
        "Default: all_at_once (canary in production stacks is recommended).")
    canary_percent: int = Field(10, ge=1, le=50, description="Canary share of capacity (AWS: at most 50%). Default: 10.")
    linear_step_percent: int = Field(25, ge=10, le=50, description="Capacity per linear step (AWS: 10-50%). Default: 25.")
    wait_minutes: int = Field(10, ge=0, le=60, description="Baking time between steps, watching the rollback "
                              "alarms. Default: 10.")
    termination_wait_minutes: int = Field(5, ge=0, le=60, description="Time the old fleet is kept after the "
                                          "shift. Default: 5.")
    max_execution_timeout_minutes: int = Field(60, ge=10, le=480, description="Longest an update may take. Default: 60.")


class AlarmsConfig(Settings):
    """CloudWatch alarms that roll a deployment back (and later page people)."""

    model_latency_ms: int = Field(1000, ge=1, le=3_600_000, description="p99 model latency that counts as "
                                  "degraded, in milliseconds. Default: 1000.")
    invocation_5xx_errors: int = Field(5, ge=1, description="5XX errors per minute that count as failing. Default: 5.")


class ScaleDownSchedule(Settings):
    """Scale a non-production endpoint down outside working hours."""

    scale_down_cron: str = Field("cron(0 19 ? * MON-FRI *)", description="When to scale down (EventBridge cron).")
    scale_up_cron: str = Field("cron(0 7 ? * MON-FRI *)", description="When to scale back up (EventBridge cron).")
    timezone: str = Field("UTC", description="IANA time zone of the crons. Default: UTC.")
    off_hours_max_instances: int = Field(1, ge=1, description="Instance ceiling outside working hours. Default: 1.")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        import difflib
        import zoneinfo

        zones = zoneinfo.available_timezones()
        if value not in zones:
            close = difflib.get_close_matches(value, sorted(zones), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'Europe/Berlin'){hint}")
        return value

    @field_validator("scale_down_cron", "scale_up_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not re.fullmatch(r"cron\((\S+\s){5}\S+\)", value):
            raise ValueError(f"{value!r} must be an EventBridge cron with six fields, e.g. 'cron(0 19 ? * MON-FRI *)'")
        return value


class AutoscalingConfig(Settings):
    """Target tracking on invocations per instance."""

    min_instances: int = Field(1, ge=1, le=100, description="Fewest instances per variant. Default: 1.")
    max_instances: int = Field(2, ge=1, le=100, description="Most instances per variant. Default: 2.")
    target_invocations_per_instance: int = Field(100, ge=1, description="Invocations per instance per minute "
                                                 "to hold. Default: 100.")
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600, description="Default: 300.")
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600, description="Default: 60.")
    off_hours: Optional[ScaleDownSchedule] = Field(None, description="Non-production only. Default: none.")

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscalingConfig":
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances ({self.min_instances}) is larger than max_instances "
                             f"({self.max_instances}); lower min_instances or raise max_instances")
        if self.off_hours and self.off_hours.off_hours_max_instances > self.max_instances:
            raise ValueError(f"off_hours.off_hours_max_instances ({self.off_hours.off_hours_max_instances}) is larger "
                             f"than max_instances ({self.max_instances}); off hours scale down, never up")
        return self


class ModelConfig(Settings):
    """One model and the SageMaker endpoint that serves it."""

    name: str = Field(pattern=MODEL_NAME, max_length=32,
                      description="Model name (lowercase letters, digits, single '-'); used in resource names.",
                      json_schema_extra={"errorMessage": "must be lowercase letters and digits, single '-' between"})
    source: ModelSourceConfig = Field(description="Where the model artifact comes from.")
    image: Optional[ImageConfig] = Field(None, description="Inference container; not used with a model package "
                                         "source (the package names its image).")
    environment: dict[str, str] = Field(default_factory=dict, description="Container environment variables.")
    variants: list[VariantConfig] = Field(default_factory=list, description="Provisioned variants (or `serverless`).")
    serverless: Optional[ServerlessConfig] = Field(None, description="A single serverless variant instead of `variants`.")
    network_isolation: Optional[bool] = Field(None, description="No network access from the container. Default: "
                                              "true on instances; serverless endpoints do not support it.")
    data_capture: DataCaptureConfig = Field(default_factory=DataCaptureConfig, description="Request/response capture.")
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig, description="Blue/green update policy.")
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig, description="Rollback alarms.")
    autoscaling: Optional[AutoscalingConfig] = Field(None, description="Autoscaling of every provisioned variant. "
                                                     "Required in production stacks.")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig,
                                         description="Data-quality monitoring of the captured traffic.")
    retraining: RetrainingConfig = Field(default_factory=RetrainingConfig,
                                         description="A retraining pipeline started on drift or on a schedule.")

    def captures_data(self, environment: str) -> bool:
        """Whether the endpoint captures data (on by default except in `dev` and for serverless)."""
        if self.data_capture.enabled is not None:
            return self.data_capture.enabled
        return self.serverless is None and environment != "dev"

    @model_validator(mode="after")
    def _serving_shape(self) -> "ModelConfig":
        if bool(self.variants) == bool(self.serverless):
            raise ValueError("give either variants (provisioned instances) or serverless")
        names = [v.name for v in self.variants]
        if len(names) != len(set(names)):
            raise ValueError(f"variant names must be unique; got {', '.join(names)}")
        package = self.source.model_package_group or self.source.model_package_arn
        if package and self.image:
            raise ValueError("a model package names its own image; drop image")
        if not package and not self.image:
            raise ValueError("image is required unless the source is a model package")
        if self.serverless and self.data_capture.enabled:
            raise ValueError("serverless endpoints cannot capture data; use variants or disable data_capture")
        if self.serverless and self.network_isolation:
            raise ValueError("serverless endpoints do not support network isolation; use variants or drop it")
        if self.serverless and self.autoscaling:
            raise ValueError("serverless endpoints scale by themselves; drop autoscaling")
        return self


class NetworkConfig(Settings):
    """The VPC the platform's workloads run in: one emlops builds (`managed`) or one you bring (`vpc_id` and
    `private_subnet_ids`); exactly one of the two."""

    managed: Optional[ManagedNetworkConfig] = Field(
        None, description="A VPC emlops builds: private subnets per zone, flow logs, VPC endpoints. "
        "Default: none (give vpc_id and private_subnet_ids instead).")
    vpc_id: Optional[str] = Field(None, pattern=r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$",
                                  description="(bring your own) VPC id. Default: none (use managed).",
                                  json_schema_extra={"errorMessage": "must be a VPC id like 'vpc-0123456789abcdef0'"})
    private_subnet_ids: Optional[list[str]] = Field(
        None, min_length=2, description="(bring your own) Private subnets in at least two AZs. Default: none.")

    @field_validator("private_subnet_ids")
    @classmethod
    def _subnets(cls, values: Optional[list[str]]) -> Optional[list[str]]:
        for value in values or ():
            if not re.fullmatch(r"subnet-([0-9a-f]{8}|[0-9a-f]{17})", value):
                raise ValueError(f"{value!r} is not a subnet id like 'subnet-0123456789abcdef0'")
        if values is not None and len(set(values)) != len(values):
            raise ValueError("subnet ids must be unique")
        return values

    @model_validator(mode="after")
    def _managed_or_your_own(self) -> "NetworkConfig":
        own = self.vpc_id is not None or self.private_subnet_ids is not None
        if self.managed is not None and own:
            given = " and ".join(k for k in ("vpc_id", "private_subnet_ids") if getattr(self, k) is not None)
            raise AtKey("managed", f"give either managed (a VPC emlops builds) or vpc_id and private_subnet_ids "
                        f"(your own VPC), not both; drop {given} or managed")
        if self.managed is None and not own:
            raise ValueError("give managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your own VPC)")
        if own and self.vpc_id is None:
            raise AtKey("vpc_id", "field required with private_subnet_ids (the VPC of your subnets)")
        if own and self.private_subnet_ids is None:
            raise AtKey("private_subnet_ids", "field required with vpc_id (your VPC's private subnets, in at "
                        "least two availability zones)")
        return self

    @property
    def zone_count(self) -> int:
        """Availability zones the private subnets span (a managed VPC's az_count, else the subnets given)."""
        return self.managed.az_count if self.managed else len(self.private_subnet_ids or ())


class RegistryConfig(RegistryFields):
    """The model registry: where model references are looked up, its MLflow server, who may consume it."""

    mlflow_tracking_uri: Optional[str] = Field(
        None, description="MLflow tracking/registry URI used to resolve `models:/...` sources. Default: none.")
