"""What a `ModelMonitor` takes: its settings (a stack file's `models[].monitoring`) and its context.

    monitoring:
      schedule: cron(0 * ? * * *)
      instance_type: ml.m5.xlarge
      baseline:
        statistics_s3_uri: s3://ml-baselines/churn/statistics.json
        constraints_s3_uri: s3://ml-baselines/churn/constraints.json
      drift_features: [age, tenure_months]
      model_quality:
        ground_truth_s3_uri: s3://ml-ground-truth/churn
        problem_type: BinaryClassification
        probability_attribute: "0"
        probability_threshold: 0.5
        threshold: 0.75            # alarm when auc (the default metric) drops below it
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

import pulumi
from pydantic import Field, field_validator

from emlops.components.api_limits import check_instance_type
from emlops.components.clarify_args import BiasSettings, ExplainabilitySettings
from emlops.components.locations import S3ObjectUri
from emlops.components.model_quality import ModelQualitySettings
from emlops.components.schedules import parse_cron
from emlops.components.settings import Governance, Placement, Settings, error_message

if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket

HOURLY = "cron(0 * ? * * *)"
DAILY = "cron(0 0 ? * * *)"
# SageMaker's monitoring schedules accept only these (MonitoringScheduleConfig.ScheduleConfig docs):
# hourly `cron(0 * ? * * *)`, daily `cron(0 H ? * * *)` and every N hours `cron(0 H/N ? * * *)`.
# `NOW` (one run) also needs a data-analysis window, which pulumi_aws cannot set.
_SCHEDULE = re.compile(r"^cron\(0 (?P<hour>\*|[01]?[0-9]|2[0-3])(/(?P<every>[01]?[0-9]|2[0-4]))? \? \* \* \*\)$")
SCHEDULE_HELP = ("must be one of SageMaker's monitoring schedules: hourly 'cron(0 * ? * * *)', daily "
                 "'cron(0 H ? * * *)' or every N hours 'cron(0 H/N ? * * *)' (H 0-23, N 1-24)")
_FEATURE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
PRODUCTION_NEEDS_BASELINE = ("production monitors need a baseline: add statistics_s3_uri and constraints_s3_uri "
                             "from a baselining job (models served from a model package may use the package's "
                             "drift-check baselines instead)")
PRODUCTION_NEEDS_MONITORING = "production endpoints are monitored; remove enabled: false"


def schedule_interval_seconds(expression: str) -> int:
    """Seconds between two runs of a monitoring schedule; ValueError if SageMaker would reject it: a cron
    outside the grammar names its field, a valid cron outside SageMaker's few gets SCHEDULE_HELP."""
    if expression.startswith("cron("):
        parse_cron(expression)
    match = _SCHEDULE.match(expression)
    if not match or match["every"] in ("0", "00"):
        raise ValueError(f"{expression!r} {SCHEDULE_HELP}")
    if match["hour"] == "*":
        return 3600
    return int(match["every"]) * 3600 if match["every"] else 86400


def check_drift_feature(feature: str) -> str:
    """`feature` if the analyzer's drift metric can be named after it (`feature_baseline_drift_<feature>`), else
    ValueError."""
    if not isinstance(feature, str) or not _FEATURE.match(feature):
        raise ValueError(f"drift feature {feature!r} must be 1-128 letters, digits, '_', '.' or '-'")
    return feature


def feature_token(feature: str) -> str:
    """A feature as it appears in resource names (its drift alarm's)."""
    return re.sub(r"[^a-z0-9]+", "-", feature.lower()).strip("-") or "feature"


class BaselineSettings(Settings):
    """The baseline the captured data is compared with (the output of a SageMaker baselining job)."""

    statistics_s3_uri: S3ObjectUri = Field(
        description="`statistics.json` of the baselining job.",
        json_schema_extra=error_message("must be an S3 object URI, s3://<bucket>/<key>"))
    constraints_s3_uri: S3ObjectUri = Field(
        description="`constraints.json` of the baselining job.",
        json_schema_extra=error_message("must be an S3 object URI, s3://<bucket>/<key>"))


class DataQualitySettings(Settings):
    """Scheduled data-quality monitoring: when and on what the analyzer runs, the baseline, and the drift alarms
    (what monitoring an endpoint and a batch transform's inputs share)."""

    schedule: Optional[str] = Field(None, description="When the job runs: hourly `cron(0 * ? * * *)`, daily "
                                    "`cron(0 H ? * * *)` or every N hours `cron(0 H/N ? * * *)`. Default: "
                                    "hourly in production stacks, daily `cron(0 0 ? * * *)` otherwise.")
    instance_type: str = Field("ml.m5.xlarge", description="Processing instance type (botocore's "
                               "`ProcessingInstanceType`). Default: ml.m5.xlarge.")
    instance_count: int = Field(1, ge=1, le=100, description="Processing instances. Default: 1.")
    volume_size_gb: int = Field(20, ge=1, le=16384, description="Volume per instance in GB. Default: 20.")
    max_runtime_minutes: int = Field(60, ge=1, le=1440, description="Longest a run may take; at most the "
                                     "schedule's interval. Default: 60.")
    baseline: Optional[BaselineSettings] = Field(None, description="Baseline statistics and constraints. Required "
                                                 "in production stacks, except for models served from a model "
                                                 "package: they default to the package's data-quality drift-check "
                                                 "baselines. Default: none (profiling only).")
    drift_features: list[str] = Field(default_factory=list, description="Features whose baseline drift gets a "
                                      "CloudWatch alarm. Default: none.")
    drift_threshold: float = Field(0.1, gt=0, le=1, description="Baseline drift (0-1) that trips a drift alarm. "
                                   "Default: 0.1.")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            schedule_interval_seconds(value)
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return check_instance_type(value, "processing")

    @field_validator("drift_features")
    @classmethod
    def _features(cls, values: list[str]) -> list[str]:
        for feature in values:
            check_drift_feature(feature)
        if len(set(values)) != len(values):
            raise ValueError(f"must be unique; got {', '.join(values)}")
        tokens = [feature_token(f) for f in values]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"{', '.join(values)} collide in resource names; rename one")
        return values

    def schedule_expression(self, production: bool) -> str:
        """The schedule the monitor runs on: the one given, else hourly in production and daily otherwise."""
        return self.schedule or (HOURLY if production else DAILY)


class _MonitoringSwitch(Settings):
    enabled: Optional[bool] = Field(None, description="Default: on when the model captures data.")


# DataQualitySettings first in the bases puts `enabled` first in the schema and in error messages.
class MonitoringSettings(DataQualitySettings, _MonitoringSwitch):
    """Scheduled data-quality (and, with ground truth, model-quality and bias; with a SHAP baseline, explainability)
    monitoring of a model's endpoint."""

    model_quality: Optional[ModelQualitySettings] = Field(
        None, description="Model-quality monitoring against ground truth, on the same schedule. Default: none "
        "(data quality only).")
    bias: Optional[BiasSettings] = Field(None, description="Bias drift on declared facets (SageMaker Clarify, against "
                                         "ground truth), on the same schedule. Default: none.")
    explainability: Optional[ExplainabilitySettings] = Field(None, description="Feature-attribution drift (SageMaker "
                                                             "Clarify, Kernel SHAP), on the same schedule. Default: none.")

    def is_enabled(self, captures_data: bool) -> bool:
        return self.enabled if self.enabled is not None else captures_data

    def problem(self, captures_data: bool, production: bool, package_source: bool = False) -> Optional[tuple[str, str]]:
        """The first problem of these settings in a platform, as (key under `monitoring`, message), or None.

        A production monitor without a baseline is a problem, unless the model comes from a model package
        (`package_source`): its drift-check baselines are used (and a package without them is reported when
        the source is resolved)."""
        if self.enabled and not captures_data:
            return "enabled", "monitoring reads captured data; enable data_capture"
        if production and self.enabled is False:
            return "enabled", PRODUCTION_NEEDS_MONITORING
        if production and self.is_enabled(captures_data) and self.baseline is None and not package_source:
            return "baseline", PRODUCTION_NEEDS_BASELINE
        interval = schedule_interval_seconds(self.schedule_expression(production))
        if self.max_runtime_minutes * 60 > interval:
            return ("max_runtime_minutes", f"{self.max_runtime_minutes} minutes is longer than the schedule's "
                    f"interval ({interval // 60} minutes)")
        return None


@dataclass(frozen=True)
class DriftBaseline:
    """The data-quality drift-check baselines of a model package, as its source resolved."""

    statistics_s3_uri: pulumi.Input[str]
    constraints_s3_uri: pulumi.Input[str]
    known: bool = True
    """Whether they were resolved; a registry look-up the offline preview cannot make leaves them as it shows
    them, and the role's grants name those values as they are. Default: true."""


@dataclass(frozen=True)
class MonitorContext:
    """What the platform supplies to a `ModelMonitor`: the endpoint it monitors, or a batch transform's data."""

    capture_s3_uri: pulumi.Input[str]
    """The data capture destination of the endpoint (or batch transform), `s3://<bucket>/<prefix>` (read-only
    for the monitor)."""
    reports_bucket: "SecureBucket"
    """Bucket the reports go to, under `monitoring/<name>/`."""
    placement: Placement
    """Private subnets (and security groups) the monitoring jobs run in."""
    endpoint_name: Optional[pulumi.Input[str]] = None
    """The monitored endpoint (it must capture its input). Give it or `batch_input_format`."""
    batch_input_format: Optional[Literal["csv", "json"]] = None
    """The monitor reads what a batch transform job captured (its `DataCaptureConfig`, at `capture_s3_uri`) instead
    of an endpoint's traffic: CSV records without a header, or JSON Lines. Default: an endpoint is monitored."""
    production: bool = False
    """Production monitors run hourly by default and need a baseline. Default: false."""
    package_baseline: Optional[DriftBaseline] = None
    """The served package's drift-check baselines, used when the settings name no baseline. Default: none."""
    capture_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the captured data. Default: any key, only through S3, only for the capture bucket."""
    baseline_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the baseline objects. Default: any key, only through S3, only for the baseline buckets."""
    ground_truth_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the ground-truth objects. Default: any key, only through S3, only for the ground-truth bucket."""
    volume_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the instances' volumes. Default: the reports bucket's key."""
    output_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key the reports are written with. Default: the reports bucket's key."""
    alarm_topic_arn: Optional[pulumi.Input[str]] = None
    """Topic alarms and events notify (its policy must let cloudwatch and events publish). Default: a
    KMS-encrypted topic is created for this monitor, with `subscriptions`."""
    subscriptions: Sequence[str] = ()
    """E-mail addresses and https:// URLs subscribed to the topic this monitor creates. Default: none."""
    region: Optional[str] = None
    """Region of the analyzer image. Default: the region of the component's provider."""
    model_name: Optional[pulumi.Input[str]] = None
    """The SageMaker model the endpoint serves; explainability monitoring makes its shadow endpoints from it.
    Default: none (required with `explainability`)."""
    governance: Governance = field(default_factory=Governance)
    """Tags of every child, the role's permissions boundary, and protection of the topic it creates."""

    def baseline(self, settings: MonitoringSettings) -> Optional[DriftBaseline]:
        """The baseline the captured data is compared with: the settings', else the package's, else none."""
        if settings.baseline is not None:
            return DriftBaseline(settings.baseline.statistics_s3_uri, settings.baseline.constraints_s3_uri)
        return self.package_baseline
