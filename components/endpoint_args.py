"""What a `ModelEndpoint` takes: its settings and its context.

The settings (`EndpointSettings`) say how a model is served, rolled out, rolled back and scaled; a stack
file's `models[]` entry embeds them as they are (the model's name, source, image, monitoring and retraining
sit beside them), so each knob is named, bounded and documented once, here. The context
(`EndpointContext`) is what the platform supplies: the resolved model (`ModelArtifact`), its image, key,
capture bucket, network, alerts topic and governance.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.api_limits import check_content_types, check_instance_type
from emlops.components.locations import parse_s3
from emlops.components.schedules import check_autoscaling_cron
from emlops.components.settings import AtKey, Governance, Placement, Settings, error_message

if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket

SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
# A container's environment as CreateModel takes it (botocore: EnvironmentMap, EnvironmentKey, EnvironmentValue;
# the 32 KB total is in the API reference of ContainerDefinition.Environment).
ENVIRONMENT_MAX_ENTRIES = 100
ENVIRONMENT_KEY = r"[a-zA-Z_][a-zA-Z0-9_]*"
ENVIRONMENT_KEY_MAX = ENVIRONMENT_VALUE_MAX = 1024
ENVIRONMENT_TOTAL_BYTES = 32 * 1024


def check_environment_names(names: Sequence[str], at: str = "") -> None:
    """SageMaker's rules for a container's environment variable names (ValueError, or AtKey at the name)."""
    if len(names) > ENVIRONMENT_MAX_ENTRIES:
        raise ValueError(f"has {len(names)} variables; SageMaker allows at most {ENVIRONMENT_MAX_ENTRIES} in a "
                         "container's environment (CreateModel)")
    for name in names:
        where = f"{at}{printable_key(name)}"
        if not re.fullmatch(ENVIRONMENT_KEY, name):
            raise AtKey(where, f"is not an environment variable name SageMaker accepts: a letter or '_', then "
                        f"letters, digits or '_' ({ENVIRONMENT_KEY})")
        if len(name) > ENVIRONMENT_KEY_MAX:
            raise AtKey(where, f"is {len(name)} characters long; SageMaker allows at most {ENVIRONMENT_KEY_MAX}")


def printable_key(key: str) -> str:
    """A key as a key path shows it: quoted when it holds characters that cannot be printed on one line."""
    return key if key.isprintable() else repr(key)


class VariantSettings(Settings):
    """One production variant on provisioned instances."""

    name: str = Field("primary", pattern=SAGEMAKER_NAME,
                      description="Variant name; keep it stable (blue/green updates need the same name). Default: primary.",
                      json_schema_extra=error_message("must be 1-63 letters, digits or '-', starting and ending with "
                                                      "a letter or digit"))
    instance_type: str = Field(description="Hosting instance type, e.g. `ml.m5.large` (botocore's "
                               "`ProductionVariantInstanceType`).")
    initial_instance_count: int = Field(1, ge=1, le=100, description="Instances at creation. Default: 1.")
    weight: float = Field(1.0, gt=0, le=1000, description="Share of traffic relative to other variants. Default: 1.")

    @field_validator("instance_type")
    @classmethod
    def _known_instance_type(cls, value: str) -> str:
        return check_instance_type(value, "hosting")


class ServerlessSettings(Settings):
    """A serverless variant (cheap, scales to zero; no VPC, isolation or data capture)."""

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(2048, description="Memory. Default: 2048.")
    max_concurrency: int = Field(5, ge=1, le=200, description="Concurrent invocations. Default: 5.")


class DataCaptureSettings(Settings):
    """Capture of requests and responses into the platform's capture bucket (KMS-encrypted)."""

    enabled: Optional[bool] = Field(None, description="Default: on in every environment except `dev`.")
    sampling_percentage: int = Field(100, ge=0, le=100, description="Share of requests captured. Default: 100.")
    csv_content_types: list[str] = Field(default_factory=lambda: ["text/csv"],
                                         description="MIME types captured as CSV (1-10, SageMaker's "
                                         "`CsvContentTypes`). Default: text/csv.")
    json_content_types: list[str] = Field(default_factory=lambda: ["application/json"],
                                          description="MIME types captured as JSON (1-10, SageMaker's "
                                          "`JsonContentTypes`). Default: application/json.")

    @field_validator("csv_content_types")
    @classmethod
    def _csv(cls, values: list[str]) -> list[str]:
        return check_content_types(values, "CsvContentTypes")

    @field_validator("json_content_types")
    @classmethod
    def _json(cls, values: list[str]) -> list[str]:
        return check_content_types(values, "JsonContentTypes")


class DeploymentSettings(Settings):
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


class AlarmSettings(Settings):
    """CloudWatch alarms that roll a deployment back (and later page people)."""

    model_latency_ms: int = Field(1000, ge=1, le=3_600_000, description="p99 model latency that counts as "
                                  "degraded, in milliseconds. Default: 1000.")
    invocation_5xx_errors: int = Field(5, ge=1, description="5XX errors per minute that count as failing. Default: 5.")


class OffHoursSettings(Settings):
    """Scale a non-production endpoint down outside working hours."""

    scale_down_cron: str = Field("cron(0 19 ? * MON-FRI *)", description="When to scale down (an Application Auto "
                                 "Scaling cron, six fields). Default: 19:00 Monday to Friday.")
    scale_up_cron: str = Field("cron(0 7 ? * MON-FRI *)", description="When to scale back up (an Application Auto "
                               "Scaling cron, six fields). Default: 07:00 Monday to Friday.")
    timezone: str = Field("UTC", description="IANA time zone of the crons. Default: UTC.")
    off_hours_max_instances: int = Field(1, ge=1, description="Instance ceiling outside working hours. Default: 1.")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
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
        return check_autoscaling_cron(value)


class AutoscalingSettings(Settings):
    """Target tracking on invocations per instance."""

    min_instances: int = Field(1, ge=1, le=100, description="Fewest instances per variant. Default: 1.")
    max_instances: int = Field(2, ge=1, le=100, description="Most instances per variant. Default: 2.")
    target_invocations_per_instance: int = Field(100, ge=1, description="Invocations per instance per minute "
                                                 "to hold. Default: 100.")
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600, description="Default: 300.")
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600, description="Default: 60.")
    off_hours: Optional[OffHoursSettings] = Field(None, description="Non-production only. Default: none.")

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscalingSettings":
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances ({self.min_instances}) is larger than max_instances "
                             f"({self.max_instances}); lower min_instances or raise max_instances")
        if self.off_hours and self.off_hours.off_hours_max_instances > self.max_instances:
            raise ValueError(f"off_hours.off_hours_max_instances ({self.off_hours.off_hours_max_instances}) is larger "
                             f"than max_instances ({self.max_instances}); off hours scale down, never up")
        return self


class EndpointSettings(Settings):
    """How one model is served: variants (or serverless), container environment, capture, rollout, rollback
    alarms and autoscaling."""

    environment: dict[str, str] = Field(
        default_factory=dict,
        description=f"Container environment variables (at most {ENVIRONMENT_MAX_ENTRIES}, names "
        f"`{ENVIRONMENT_KEY}`, values of at most {ENVIRONMENT_VALUE_MAX} characters, {ENVIRONMENT_TOTAL_BYTES // 1024} "
        "KB in all: SageMaker's limits). They are plaintext in the plan, the Pulumi state and the SageMaker model; "
        "secrets are passed as secret environment values. Default: none.")
    variants: list[VariantSettings] = Field(default_factory=list, description="Provisioned variants (or `serverless`).")
    serverless: Optional[ServerlessSettings] = Field(None, description="A single serverless variant instead of "
                                                     "`variants`.")
    network_isolation: Optional[bool] = Field(None, description="No network access from the container. Default: "
                                              "true on instances; serverless endpoints do not support it.")
    data_capture: DataCaptureSettings = Field(default_factory=DataCaptureSettings,
                                              description="Request/response capture.")
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings, description="Blue/green update policy.")
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="Rollback alarms.")
    autoscaling: Optional[AutoscalingSettings] = Field(None, description="Autoscaling of every provisioned variant. "
                                                       "Required in production stacks.")

    @field_validator("environment")
    @classmethod
    def _environment_limits(cls, environment: dict[str, str]) -> dict[str, str]:
        check_environment_names(list(environment))
        for name, value in environment.items():
            if len(value) > ENVIRONMENT_VALUE_MAX:
                raise AtKey(printable_key(name), f"is {len(value)} characters long; SageMaker allows at most "
                            f"{ENVIRONMENT_VALUE_MAX} in an environment value")
        total = sum(len(name.encode()) + len(value.encode()) for name, value in environment.items())
        if total > ENVIRONMENT_TOTAL_BYTES:
            raise ValueError(f"names and values add up to {total} bytes; SageMaker allows "
                             f"{ENVIRONMENT_TOTAL_BYTES // 1024} KB ({ENVIRONMENT_TOTAL_BYTES} bytes) per container")
        return environment

    @model_validator(mode="after")
    def _serving_shape(self) -> "EndpointSettings":
        if bool(self.variants) == bool(self.serverless):
            raise ValueError("give either variants (provisioned instances) or serverless")
        names = [v.name for v in self.variants]
        if len(names) != len(set(names)):
            raise ValueError(f"variant names must be unique; got {', '.join(names)}")
        if self.serverless and self.data_capture.enabled:
            raise ValueError("serverless endpoints cannot capture data; use variants or disable data_capture")
        if self.serverless and self.network_isolation:
            raise ValueError("serverless endpoints do not support network isolation; use variants or drop it")
        if self.serverless and self.autoscaling:
            raise ValueError("serverless endpoints scale by themselves; drop autoscaling")
        return self

    @property
    def isolated(self) -> bool:
        """Whether the container runs without network access (the default on instances)."""
        return self.serverless is None if self.network_isolation is None else self.network_isolation


@dataclass(frozen=True)
class ModelArtifact:
    """What an endpoint serves, as the model's source resolved: model data in S3, or a model package."""

    uri: pulumi.Input[str]
    """The model data: a `.tar.gz` object, an uncompressed model directory (a prefix ending in `/`, e.g. an
    MLflow model), or the package's artifact when `package_arn` is given."""
    compressed: bool = True
    """`uri` is a `.tar.gz` object (true) or a directory SageMaker loads uncompressed (false). Default: true."""
    package_arn: Optional[pulumi.Input[str]] = None
    """Serve this model package; it names its own image and artifact. Default: serve `uri` with the context's
    image."""
    image_uri: Optional[pulumi.Input[str]] = None
    """The package's image, for the role's pull grant when it is in ECR. Default: no pull grant."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the artifact's bucket (e.g. a shared registry's). Default: decrypt with any key, only through S3,
    only for that bucket."""
    known: bool = True
    """Whether `uri` and `image_uri` were resolved. A registry look-up the offline preview cannot make leaves
    them as it shows them: the role's grants then name those values as they are. Default: true."""

    def __post_init__(self) -> None:
        if self.known and isinstance(self.uri, str):
            bucket, key = parse_s3(self.uri, "model artifact", prefix=not self.compressed)
            if not self.compressed and not key:
                raise ValueError(f"model artifact {self.uri!r} is a whole bucket; give the model's prefix, e.g. "
                                 f"s3://{bucket}/models/<model>/")
            if not self.compressed and not key.endswith("/"):
                raise ValueError(f"model artifact {self.uri!r} is a directory: it must end with '/'")

    @property
    def location(self) -> Optional[tuple[str, str]]:
        """(bucket, key) of `uri` when it is known before deploy, else None."""
        if not self.known or not isinstance(self.uri, str):
            return None
        return parse_s3(self.uri, "model artifact", prefix=True)


def model_container(artifact: ModelArtifact, image_uri: Optional[pulumi.Input[str]],
                    environment: Mapping[str, pulumi.Input[str]]) -> dict:
    """A SageMaker Model's primary container: the model package, or the image with the model data (and
    `environment`)."""
    if artifact.package_arn is not None:
        return {"model_package_name": artifact.package_arn}
    container: dict = {"image": image_uri, "mode": "SingleModel"}
    if environment:
        container["environment"] = dict(environment)
    if artifact.compressed:
        container["model_data_url"] = artifact.uri
    else:
        # MLflow models are directories: SageMaker loads them uncompressed from the prefix.
        # (the provider models the API's single S3DataSource as a one-element list)
        container["model_data_source"] = {"s3_data_sources": [{
            "s3_uri": artifact.uri, "s3_data_type": "S3Prefix", "compression_type": "None",
        }]}
    return container


@dataclass(frozen=True)
class EndpointContext:
    """What the platform supplies to a `ModelEndpoint`."""

    artifact: ModelArtifact
    """The resolved model to serve."""
    image_uri: Optional[pulumi.Input[str]] = None
    """Inference image. Required unless the artifact is a model package (which names its own)."""
    placement: Optional[Placement] = None
    """Private subnets (and security groups) of the model's network interfaces. Required for provisioned
    variants; serverless endpoints have no VPC."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key for instance volumes and captured data. Default: a key is created for the endpoint."""
    capture_bucket: Optional["SecureBucket"] = None
    """Bucket captured requests and responses go to, under `datacapture/<name>/`. Default: no capture."""
    alarm_topic_arn: Optional[pulumi.Input[str]] = None
    """SNS topic the rollback alarms notify when they fire and when they recover. Default: none (the alarms
    only roll deployments back)."""
    governance: Governance = field(default_factory=Governance)
    """Tags of every child and the execution role's permissions boundary."""
    secret_environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Container environment variables whose values are secrets (e.g. `pulumi.Config().require_secret(...)`):
    the model gets them beside the settings' `environment`, Pulumi keeps them encrypted in its state and the plan
    shows them as `[secret]`. SageMaker itself shows a model's environment to whoever may describe the model.
    Default: none."""
