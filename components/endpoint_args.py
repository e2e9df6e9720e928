"""Arguments of `ModelEndpoint`, checked before anything is created."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

import pulumi

from emlops.components.settings import check_security_group_ids

if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket

UNKNOWN_PREFIX = "[unknown:"
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_S3_ARTIFACT = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S+)$")
# Instance families with local NVMe storage: their volumes are encrypted by the instance hardware and
# SageMaker rejects a KmsKeyId for them (CreateEndpointConfig, KmsKeyId).
_LOCAL_STORAGE = re.compile(r"^ml\.([a-z]+[0-9]+[a-z]*d[a-z]*|g4dn|g5|g6|g6e|p3dn|p4d|p4de|p5|p5e|p5en|trn1|trn1n|inf2)\.")


def is_unknown(value: object) -> bool:
    """A value the offline preview could not know (written as "[unknown: ...]", never invented)."""
    return isinstance(value, str) and value.startswith(UNKNOWN_PREFIX)


# The longest SageMaker child name is "<endpoint>-config" plus Pulumi's 8-character suffix.
MAX_ENDPOINT_NAME = 63 - len("-config") - 8


def check_endpoint_name(name: str) -> None:
    """SageMaker's name pattern, leaving room for the children's auto-named suffixes."""
    if not _SAGEMAKER_NAME.match(name) or len(name) > MAX_ENDPOINT_NAME:
        raise ValueError(f"endpoint name {name!r} must be at most {MAX_ENDPOINT_NAME} ASCII letters, digits and "
                         "'-', starting and ending with a letter or digit")


def has_local_storage(instance_type: str) -> bool:
    return bool(_LOCAL_STORAGE.match(instance_type))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI."""
    match = _S3_ARTIFACT.match(uri)
    if not match:
        raise ValueError(f"{uri!r} is not an s3://<bucket>/<key> URI")
    return match["bucket"], match["key"]


@dataclass(frozen=True)
class Variant:
    """A production variant on provisioned instances."""

    name: str
    """Variant name; blue/green updates need it to stay the same."""
    instance_type: str
    """Hosting instance type, e.g. `ml.m5.large`."""
    initial_instance_count: int = 1
    """Instances at creation. Default: 1."""
    weight: float = 1.0
    """Relative share of traffic. Default: 1."""

    def __post_init__(self) -> None:
        if not _SAGEMAKER_NAME.match(self.name):
            raise ValueError(f"variant name {self.name!r} must be letters, digits and '-' (at most 63)")
        if self.initial_instance_count < 1:
            raise ValueError(f"variant {self.name!r}: initial_instance_count ({self.initial_instance_count}) must be at least 1")
        if self.weight <= 0:
            raise ValueError(f"variant {self.name!r}: weight ({self.weight}) must be positive")


@dataclass
class ModelEndpointArgs:
    """Arguments of a `ModelEndpoint`: one model served by one SageMaker endpoint."""

    model_data_url: Optional[str] = None
    """S3 URI of a `.tar.gz` model artifact (or an "[unknown: ...]" marker offline)."""
    model_data_prefix: Optional[str] = None
    """S3 prefix of an uncompressed model directory, e.g. an MLflow model (or an unknown marker)."""
    model_package_arn: Optional[str] = None
    """A model package to deploy; the package names its image and artifact."""
    package_artifact_uri: Optional[str] = None
    """S3 artifact of `model_package_arn`, for the role's read grant (an unknown marker offline)."""
    package_image_uri: Optional[str] = None
    """Image of `model_package_arn`'s container, for the role's pull grant when it is in ECR (an unknown
    marker offline). Default: no pull grant."""
    image_uri: Optional[str] = None
    """Inference image. Required unless `model_package_arn` is given."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Container environment. Default: none."""
    variants: Sequence[Variant] = ()
    """Provisioned variants; give these or `serverless_memory_mb`."""
    serverless_memory_mb: Optional[int] = None
    """Memory of a single serverless variant (1024-6144 in 1024 steps). Default: not serverless."""
    serverless_max_concurrency: int = 5
    """Concurrency of the serverless variant (1-200). Default: 5."""
    vpc_id: Optional[pulumi.Input[str]] = None
    """VPC of `subnet_ids`; the endpoint's security group is created in it. Required for provisioned variants
    (MlPlatform fills in its network's); ModelEndpoint checks it is there before creating anything."""
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Private subnets for provisioned variants (required for them, with `vpc_id`)."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups of the model's network interfaces (provisioned variants), e.g. the platform's one
    no-inbound group for its SageMaker workloads. Default: one is created in `vpc_id` (no inbound rule,
    HTTPS out only)."""
    network_isolation: bool = True
    """No network access from the model container (not supported by serverless). Default: true."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key for instance volumes and captured data. Default: a key is created for the endpoint."""
    artifact_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the artifact's bucket. Default: decrypt with any key, only through S3, only for that bucket."""
    data_capture_bucket: Optional["SecureBucket"] = None
    """Bucket for captured requests and responses. Default: no capture."""
    data_capture_sampling_percentage: int = 100
    """Share of requests captured (0-100). Default: 100."""
    data_capture_csv_content_types: Sequence[str] = ("text/csv",)
    data_capture_json_content_types: Sequence[str] = ("application/json",)
    deployment_strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    """Blue/green traffic shifting. Default: all_at_once."""
    canary_percent: int = 10
    """Canary share of capacity (1-50). Default: 10."""
    linear_step_percent: int = 25
    """Capacity per linear step (10-50). Default: 25."""
    wait_seconds: int = 600
    """Baking time between steps (0-3600). Default: 600."""
    termination_wait_seconds: int = 300
    """Time the old fleet is kept after the shift (0-3600). Default: 300."""
    max_execution_timeout_seconds: int = 3600
    """Longest an update may take (600-28800). Default: 3600."""
    latency_threshold_ms: int = 1000
    """p99 ModelLatency that trips the rollback alarm. Default: 1000."""
    error_5xx_threshold: int = 5
    """5XX errors per minute that trip the rollback alarm. Default: 5."""
    alarm_topic_arn: Optional[pulumi.Input[str]] = None
    """SNS topic the rollback alarms notify when they fire and when they recover (the platform passes its
    alerts topic). Default: none (the alarms only roll deployments back)."""
    autoscaling_min: Optional[int] = None
    """Fewest instances per variant; with `autoscaling_max` turns autoscaling on. Default: off."""
    autoscaling_max: Optional[int] = None
    """Most instances per variant. Default: off."""
    target_invocations_per_instance: int = 100
    """Invocations per instance per minute to hold. Default: 100."""
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60
    off_hours_scale_down_cron: Optional[str] = None
    """When to scale down outside working hours (non-production). Default: never."""
    off_hours_scale_up_cron: Optional[str] = None
    """When to scale back up. Required with `off_hours_scale_down_cron`."""
    off_hours_timezone: str = "UTC"
    off_hours_max_instances: int = 1
    """Instance ceiling outside working hours. Default: 1."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of the execution role. Default: none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child. Default: none."""

    def __post_init__(self) -> None:
        sources = [s for s in (self.model_data_url, self.model_data_prefix, self.model_package_arn) if s]
        if len(sources) != 1:
            raise ValueError("give exactly one of model_data_url, model_data_prefix, model_package_arn")
        if not self.model_package_arn and not self.image_uri:
            raise ValueError("image_uri is required unless model_package_arn is given")
        for uri in (self.model_data_url, self.model_data_prefix, self.package_artifact_uri):
            if uri and not is_unknown(uri):
                parse_s3_uri(uri)
        if self.model_data_prefix and not is_unknown(self.model_data_prefix) and not self.model_data_prefix.endswith("/"):
            raise ValueError(f"model_data_prefix {self.model_data_prefix!r} must end with '/'")
        self._check_serving()
        self._check_rollout()
        self._check_scaling()

    @property
    def serverless(self) -> bool:
        return self.serverless_memory_mb is not None

    @property
    def captures_data(self) -> bool:
        return self.data_capture_bucket is not None

    def _check_serving(self) -> None:
        if bool(self.variants) == self.serverless:
            raise ValueError("give either variants or serverless_memory_mb")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique; got {', '.join(names)}")
        if self.serverless:
            if self.serverless_memory_mb not in (1024, 2048, 3072, 4096, 5120, 6144):
                raise ValueError(f"serverless_memory_mb ({self.serverless_memory_mb}) must be 1024-6144 in steps of 1024")
            if not 1 <= self.serverless_max_concurrency <= 200:
                raise ValueError(f"serverless_max_concurrency ({self.serverless_max_concurrency}) must be 1-200")
            if self.captures_data:
                raise ValueError("serverless endpoints cannot capture data; drop data_capture_bucket")
            if self.network_isolation:
                raise ValueError("serverless endpoints do not support network isolation; set network_isolation=False")
        elif self.vpc_id is not None or self.subnet_ids:
            # neither given: a platform fills in its network later; ModelEndpoint checks again
            self.check_network()
        check_security_group_ids(self.security_group_ids)
        if self.serverless and self.security_group_ids:
            raise ValueError("serverless endpoints have no VPC: drop security_group_ids")
        if not 0 <= self.data_capture_sampling_percentage <= 100:
            raise ValueError(f"data_capture_sampling_percentage ({self.data_capture_sampling_percentage}) must be 0-100")

    def check_network(self) -> None:
        """Provisioned variants need both `vpc_id` and `subnet_ids` (Outputs allowed)."""
        if not self.serverless and (not self.subnet_ids or not self.vpc_id or isinstance(self.subnet_ids, str)):
            raise ValueError("provisioned variants run in private subnets: give vpc_id and subnet_ids")

    def _check_rollout(self) -> None:
        if self.deployment_strategy not in ("all_at_once", "canary", "linear"):
            raise ValueError(f"deployment_strategy {self.deployment_strategy!r} must be all_at_once, canary or linear")
        bounds = {"canary_percent": (1, 50), "linear_step_percent": (10, 50), "wait_seconds": (0, 3600),
                  "termination_wait_seconds": (0, 3600), "max_execution_timeout_seconds": (600, 28800)}
        for label, (low, high) in bounds.items():
            value = getattr(self, label)
            if not low <= value <= high:
                raise ValueError(f"{label} ({value}) must be {low}-{high}")
        if self.latency_threshold_ms < 1 or self.error_5xx_threshold < 1:
            raise ValueError("latency_threshold_ms and error_5xx_threshold must be at least 1")

    def _check_scaling(self) -> None:
        if (self.autoscaling_min is None) != (self.autoscaling_max is None):
            raise ValueError("give both autoscaling_min and autoscaling_max, or neither")
        if self.autoscaling_min is not None:
            if self.serverless:
                raise ValueError("serverless endpoints scale by themselves; drop autoscaling_min/max")
            if self.autoscaling_min < 1:
                raise ValueError(f"autoscaling_min ({self.autoscaling_min}) must be at least 1")
            if self.autoscaling_min > self.autoscaling_max:
                raise ValueError(f"autoscaling_min ({self.autoscaling_min}) is larger than autoscaling_max "
                                 f"({self.autoscaling_max}); lower autoscaling_min or raise autoscaling_max")
        if bool(self.off_hours_scale_down_cron) != bool(self.off_hours_scale_up_cron):
            raise ValueError("give both off_hours_scale_down_cron and off_hours_scale_up_cron, or neither")
        if self.off_hours_scale_down_cron and self.autoscaling_min is None:
            raise ValueError("off-hours scaling needs autoscaling_min and autoscaling_max")
        if self.off_hours_scale_down_cron and not 1 <= self.off_hours_max_instances <= self.autoscaling_max:
            raise ValueError(f"off_hours_max_instances ({self.off_hours_max_instances}) must be 1-{self.autoscaling_max} "
                             "(at most autoscaling_max: off hours scale down, never up)")
