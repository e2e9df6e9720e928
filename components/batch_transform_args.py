"""What a `BatchTransform` takes: its settings (a stack file's `batch_transforms[]` entry) and its context.

    batch_transforms:
      - name: churn-nightly-scoring                # name, source and image: infra/config_models.py
        source: {model_package_group: churn}
        schedule: cron(0 2 * * ? *)
        input_prefix: scoring/churn/
        output_prefix: churn-nightly-scoring/
        instance_type: ml.m5.xlarge
        monitoring:
          baseline:
            statistics_s3_uri: s3://ml-baselines/churn/statistics.json
            constraints_s3_uri: s3://ml-baselines/churn/constraints.json

The transform job's knobs are SageMaker's own (`CreateTransformJob`), with their defaults and bounds from
botocore's service model (its enums, `TransformEnvironmentMap`, `TransformInstanceType`) and the API reference
where botocore has none (a payload of at most 100 MB, also times the concurrent requests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.catalog.aws import api_limits
from emlops.components.api_limits import check_content_type, check_instance_type
from emlops.components.endpoint_args import ModelArtifact, printable_key
from emlops.components.locations import check_key_prefix
from emlops.components.monitoring_args import DAILY, BaselineSettings, DataQualitySettings
from emlops.components.schedules import EXPECTED_RUN_TAG, check_eventbridge_schedule
from emlops.components.settings import AtKey, Governance, Placement, Settings, error_message

if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket

# Folders of S3's safe characters (and '=' of Hive-style folders), none of them '.' or '..': the prefixes become
# IAM grants and EventBridge patterns, where '*', '?' and '${' would mean more than they say.
KEY_PREFIX = r"^([A-Za-z0-9][A-Za-z0-9._=-]*/)+$"
KEY_PREFIX_HELP = ("must be folders of letters, digits, '.', '_', '=' and '-', each starting with a letter or digit "
                   "and ending in '/', e.g. 'scoring/churn/'")
# Prefixes of the output bucket the platform writes itself: what a transform captured, and monitoring reports.
CAPTURE_FOLDER, REPORTS_FOLDER = "datacapture/", "monitoring/"
# The API reference of CreateTransformJob (botocore has only the minimum): MaxPayloadInMB is at most 100, and
# so is MaxPayloadInMB times MaxConcurrentTransforms.
MAX_PAYLOAD_MB = 100
# What the monitor's analyzer reads of a transform's captured records (CSV without a header, or JSON Lines).
MONITORED_FORMATS = {"text/csv": "csv", "application/jsonlines": "json", "application/json": "json"}


def overlap(first: str, second: str) -> bool:
    """Two key prefixes of which one contains the other."""
    return first.startswith(second) or second.startswith(first)


class InputMonitoringSettings(DataQualitySettings):
    """Data-quality monitoring of what a batch transform's runs read: the transform captures its inputs, and a
    monitoring schedule compares them with the baseline (the endpoint monitor's analyzer, role and alarms)."""

    schedule: Optional[str] = Field(None, description="When the analyzer runs over what the transform captured "
                                    "since: daily `cron(0 H ? * * *)`, every N hours `cron(0 H/N ? * * *)` or hourly "
                                    "`cron(0 * ? * * *)`. Default: daily `cron(0 0 ? * * *)`.")
    baseline: BaselineSettings = Field(description="Baseline statistics and constraints of the inputs, from a "
                                       "baselining job over data like them.")

    def schedule_expression(self, production: bool) -> str:
        """The schedule given, else daily in every environment: a batch transform's data arrives run by run."""
        return self.schedule or DAILY


class BatchTransformSettings(Settings):
    """How one batch transform runs: a SageMaker pipeline (built by the SageMaker SDK) whose transform job scores
    every object under `input_prefix` of the datasets bucket into `output_prefix` of the inference bucket, started
    on a schedule and/or when data lands; failed runs notify the alerts topic. (Which model it runs, and its name,
    the stack file's entry says beside these.)"""

    schedule: Optional[str] = Field(None, description="EventBridge schedule that starts a run, e.g. "
                                    "`cron(0 2 * * ? *)` (02:00 UTC daily) or `rate(12 hours)`. Required in "
                                    "production stacks. Default: none.")
    start_on_new_data: bool = Field(False, description="Also start a run whenever an object is created under "
                                    "`input_prefix` (S3 events through EventBridge); every object starts one, so "
                                    "land a batch as one object. Default: false.")
    input_prefix: str = Field(pattern=KEY_PREFIX, max_length=256, description="Key prefix of the datasets bucket "
                              "whose objects each run scores, e.g. `scoring/churn/` (at most 256 characters).",
                              json_schema_extra=error_message(KEY_PREFIX_HELP))
    output_prefix: str = Field(pattern=KEY_PREFIX, max_length=256, description="Key prefix of the inference bucket "
                               "the results are written to (`<input object>.out`), e.g. `churn-nightly-scoring/` (at "
                               f"most 256 characters); not `{CAPTURE_FOLDER}` or `{REPORTS_FOLDER}`, which the "
                               "platform writes.",
                               json_schema_extra=error_message(KEY_PREFIX_HELP))
    instance_type: str = Field("ml.m5.xlarge", description="Instance type of the transform job (botocore's "
                               "`TransformInstanceType`). Default: ml.m5.xlarge.")
    instance_count: int = Field(1, ge=1, le=100, description="Instances of the transform job (SageMaker: 1-100). "
                                "Default: 1.")
    expected_run_minutes: Optional[int] = Field(
        None, ge=1, le=10080, description="How long a run is expected to take, in minutes: `emlops cost` prices each "
        "scheduled run at it, as a stated assumption (SageMaker sets no time limit on a transform job). The pipeline "
        "carries it as its `expected-run-minutes` tag. Default: none (runs are listed as billed by use).")
    max_payload_mb: int = Field(6, ge=0, le=MAX_PAYLOAD_MB, description="Largest request to the container, in MB "
                                "(SageMaker: 0-100; 0 streams records of any size, for containers that take "
                                "chunked requests). Default: 6.")
    max_concurrent_transforms: int = Field(0, ge=0, description="Requests sent to each "
                                           "instance at once; times `max_payload_mb` at most 100. Default: 0 "
                                           "(SageMaker asks the container, else 1).")
    batch_strategy: Literal["MultiRecord", "SingleRecord"] = Field(
        "MultiRecord", description="Records per request: as many as fit `max_payload_mb`, or one (botocore's "
        "`BatchStrategy`); needs a `split_type` other than `None`. Default: MultiRecord.")
    split_type: Literal["None", "Line", "RecordIO", "TFRecord"] = Field(
        "Line", description="How input objects are split into records (botocore's `SplitType`); `None` sends each "
        "object whole. Default: Line.")
    content_type: str = Field("text/csv", description="MIME type of the input records. Default: text/csv.")
    accept: str = Field("text/csv", description="MIME type the container writes. Default: text/csv.")
    assemble_with: Literal["None", "Line"] = Field("Line", description="How results are joined in an output "
                                                   "object: a line each, or as written (botocore's "
                                                   "`AssemblyType`). Default: Line.")
    environment: dict[str, str] = Field(default_factory=dict, description="Environment variables of the transform "
                                        "job's container (at most 16, names `[a-zA-Z_][a-zA-Z0-9_]*`, values of at "
                                        "most 10240 characters: botocore's `TransformEnvironmentMap`). Plaintext in "
                                        "the plan and the pipeline definition: no secrets. Default: none.")
    monitoring: Optional[InputMonitoringSettings] = Field(
        None, description="Data-quality monitoring of the inputs against a baseline. Default: none.")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else check_eventbridge_schedule(value)

    @field_validator("input_prefix", "output_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_key_prefix(value)

    @field_validator("output_prefix")
    @classmethod
    def _not_the_platforms(cls, value: str) -> str:
        for folder in (CAPTURE_FOLDER, REPORTS_FOLDER):
            if overlap(value, folder):
                raise ValueError(f"{value!r} overlaps {folder!r}, where the platform keeps what transforms capture "
                                 "and their monitoring reports; choose another prefix")
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return check_instance_type(value, "batch transform")

    @field_validator("content_type")
    @classmethod
    def _content_type(cls, value: str) -> str:
        return check_content_type(value, "ContentType")

    @field_validator("accept")
    @classmethod
    def _accept(cls, value: str) -> str:
        return check_content_type(value, "Accept")

    @field_validator("environment")
    @classmethod
    def _environment(cls, environment: dict[str, str]) -> dict[str, str]:
        limits = api_limits("sagemaker", "TransformEnvironmentMap")
        if len(environment) > limits.max:
            raise ValueError(f"has {len(environment)} variables; SageMaker allows at most {limits.max} in a transform "
                             f"job's environment ({limits.key.removesuffix('Key')}Map)")
        key, value_limits = api_limits("sagemaker", limits.key), api_limits("sagemaker", limits.value)
        for name, value in environment.items():
            if not re.fullmatch(key.pattern, name):
                raise AtKey(printable_key(name), "is not an environment variable name SageMaker accepts: a letter or "
                            f"'_', then letters, digits or '_' ({key.pattern})")
            if len(value) > value_limits.max:
                raise AtKey(printable_key(name), f"is {len(value)} characters long; SageMaker allows at most "
                            f"{value_limits.max} in a transform job's environment value")
        return environment

    @model_validator(mode="after")
    def _fits_together(self) -> "BatchTransformSettings":
        if overlap(self.input_prefix, self.output_prefix):
            raise AtKey("output_prefix", f"{self.output_prefix!r} overlaps input_prefix {self.input_prefix!r}; a run "
                        "would read its own results wherever both are in one bucket: keep them apart")
        if self.split_type == "None" and "batch_strategy" in self.model_fields_set:
            raise AtKey("batch_strategy", "needs split_type Line, RecordIO or TFRecord (with None, each object is "
                        "one request)")
        if self.max_concurrent_transforms * self.max_payload_mb > MAX_PAYLOAD_MB:
            raise AtKey("max_concurrent_transforms", f"{self.max_concurrent_transforms} requests of up to "
                        f"{self.max_payload_mb} MB is {self.max_concurrent_transforms * self.max_payload_mb} MB at "
                        f"once; SageMaker allows {MAX_PAYLOAD_MB} MB (lower max_concurrent_transforms or "
                        "max_payload_mb)")
        if self.monitoring is not None and self.content_type not in MONITORED_FORMATS:
            raise AtKey("monitoring", f"the analyzer reads CSV or JSON Lines records ({', '.join(MONITORED_FORMATS)}); "
                        f"content_type is {self.content_type!r}")
        return self

    @property
    def monitored_format(self) -> Optional[str]:
        """What the monitor reads of the captured records, or None without monitoring."""
        return MONITORED_FORMATS[self.content_type] if self.monitoring is not None else None


def expected_run(settings: BatchTransformSettings) -> dict[str, str]:
    """The pipeline's tag stating how long a run is expected to take (none when the stack file does not say)."""
    minutes = settings.expected_run_minutes
    return {} if minutes is None else {EXPECTED_RUN_TAG: str(minutes)}


def pipeline_name(environment: str, name: str) -> str:
    """`<environment>-<name>`: the batch transform's SageMaker pipeline."""
    return f"{environment}-{name}"


@dataclass(frozen=True)
class BatchTransformContext:
    """What the platform supplies to a `BatchTransform`."""

    pipeline_name: str
    """SageMaker pipeline name; the platform uses `<environment>-<name>` (`pipeline_name(...)`)."""
    artifact: ModelArtifact
    """The resolved model: a model package (the latest Approved of a group, or a pinned version), or model data
    in S3 served with `image_uri`."""
    input_bucket: "SecureBucket"
    """The bucket of the inputs (the platform's datasets bucket); the job reads only under `input_prefix`."""
    output_bucket: "SecureBucket"
    """The bucket of the results (the platform's inference bucket); the job writes only under `output_prefix`
    (and, monitored, `datacapture/<name>/`; the monitor's reports go to `monitoring/<name>-monitor/`)."""
    placement: Placement
    """Private subnets (and security groups) of the transform's containers (and its monitor's jobs)."""
    alerts_topic_arn: pulumi.Input[str]
    """SNS topic told when a run fails (and of the monitor's drift and outcomes); its policy must let EventBridge
    and CloudWatch publish."""
    image_uri: Optional[pulumi.Input[str]] = None
    """Inference image. Required unless the artifact is a model package (which names its own)."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the results, the captured inputs and the instances' volumes. Default: the output bucket's key."""
    region: Optional[str] = None
    """Region of the monitor's analyzer image. Default: the region of the component's provider."""
    governance: Governance = field(default_factory=Governance)
    """Tags of every child, the roles' permissions boundary and path (the events role)."""

    def check(self) -> None:
        """ValueError in one line when the context cannot work (before anything is created)."""
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", self.pipeline_name):
            raise ValueError(f"pipeline_name {self.pipeline_name!r} must be letters, digits and '-' (at most 256)")
        if self.artifact.package_arn is None and self.image_uri is None:
            raise ValueError("an image_uri is required unless the artifact is a model package")
        if self.artifact.package_arn is not None and self.image_uri is not None:
            raise ValueError("a model package names its own image; drop image_uri")
        if self.kms_key_arn is None and self.output_bucket.kms_key_arn is None:
            raise ValueError("the output bucket has no KMS key: give kms_key_arn")
