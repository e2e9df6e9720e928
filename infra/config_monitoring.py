"""Stack config for model monitoring: a `monitoring:` section per model and the stack's `alerts:`.

    models:
      - name: churn
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
    alerts:
      email: [ml-oncall@example.com]
      https: [https://hooks.example.com/sagemaker]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.settings import Settings

from emlops.components.model_quality import check_model_quality, problem_types
from emlops.components.monitoring import (
    SCHEDULE_HELP,
    ModelMonitorArgs,
    check_instance_type,
    schedule_interval_seconds,
)
from emlops.components.monitoring_alarms import subscription_protocol


if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket

_S3_OBJECT = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S*[^/\s]$"
_S3_PREFIX = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S*$"
PRODUCTION_NEEDS_BASELINE = ("production monitors need a baseline: add statistics_s3_uri and constraints_s3_uri "
                             "from a baselining job (models served from a model package may use the package's "
                             "drift-check baselines instead)")
PRODUCTION_NEEDS_MONITORING = "production endpoints are monitored; remove enabled: false"


class BaselineConfig(Settings):
    """The baseline the captured data is compared with (the output of a SageMaker baselining job)."""

    statistics_s3_uri: str = Field(
        pattern=_S3_OBJECT, description="`statistics.json` of the baselining job.",
        json_schema_extra={"errorMessage": "must be an S3 object URI, s3://<bucket>/<key>"})
    constraints_s3_uri: str = Field(
        pattern=_S3_OBJECT, description="`constraints.json` of the baselining job.",
        json_schema_extra={"errorMessage": "must be an S3 object URI, s3://<bucket>/<key>"})


class ModelQualityConfig(Settings):
    """Model-quality monitoring: the endpoint's captured predictions compared with ground-truth labels."""

    ground_truth_s3_uri: str = Field(
        pattern=_S3_PREFIX, description="Where the ground-truth labels are uploaded (read-only for the monitor).",
        json_schema_extra={"errorMessage": "must be an S3 URI, s3://<bucket>/[<prefix>]"})
    problem_type: str = Field(description="BinaryClassification, MulticlassClassification or Regression.")
    inference_attribute: Optional[str] = Field(
        None, min_length=1, description="Index (CSV) or JSONPath (JSON) of the prediction in the captured "
        "response; required for MulticlassClassification and Regression. Default: none.")
    probability_attribute: Optional[str] = Field(
        None, min_length=1, description="Index or JSONPath of the probability in the captured response; required "
        "for BinaryClassification. Default: none.")
    probability_threshold: Optional[float] = Field(
        None, gt=0, lt=1, description="Probability from which a binary prediction is positive; required for "
        "BinaryClassification. Default: none.")
    metric: Optional[str] = Field(None, description="Metric with an alarm (e.g. auc, f1, accuracy, weighted_f1, "
                                  "rmse, mae, r2). Default: auc (binary), accuracy (multiclass), rmse (regression).")
    threshold: float = Field(description="Value that trips the alarm: below it for scores (auc, f1, accuracy, r2, "
                             "...), above it for errors (rmse, mae, mse, false_positive_rate, false_negative_rate).")
    baseline_constraints_s3_uri: Optional[str] = Field(
        None, pattern=_S3_OBJECT, description="`constraints.json` of a model-quality baselining job. Default: none "
        "(the alarm is the only check).",
        json_schema_extra={"errorMessage": "must be an S3 object URI, s3://<bucket>/<key>"})

    @field_validator("problem_type")
    @classmethod
    def _problem_type(cls, value: str) -> str:
        if value not in problem_types():
            raise ValueError(f"{value!r} is not one of {', '.join(problem_types())}")
        return value

    @model_validator(mode="after")
    def _combination(self) -> "ModelQualityConfig":
        check_model_quality(self.problem_type, self.inference_attribute, self.probability_attribute,
                            self.probability_threshold, self.metric, self.threshold,
                            labels={"probability_threshold": "probability_threshold", "metric": "metric",
                                    "threshold": "threshold"})
        return self


class MonitoringConfig(Settings):
    """Scheduled data-quality (and, with ground truth, model-quality) monitoring of a model's endpoint."""

    enabled: Optional[bool] = Field(None, description="Default: on when the model captures data.")
    schedule: Optional[str] = Field(None, description="When the job runs: hourly `cron(0 * ? * * *)`, daily "
                                    "`cron(0 H ? * * *)` or every N hours `cron(0 H/N ? * * *)`. Default: "
                                    "hourly in production stacks, daily `cron(0 0 ? * * *)` otherwise.")
    instance_type: str = Field("ml.m5.xlarge", description="Processing instance type. Default: ml.m5.xlarge.")
    instance_count: int = Field(1, ge=1, le=100, description="Processing instances. Default: 1.")
    volume_size_gb: int = Field(20, ge=1, le=16384, description="Volume per instance in GB. Default: 20.")
    max_runtime_minutes: int = Field(60, ge=1, le=1440, description="Longest a run may take; at most the "
                                     "schedule's interval. Default: 60.")
    baseline: Optional[BaselineConfig] = Field(None, description="Baseline statistics and constraints. Required "
                                               "in production stacks, except for models served from a model "
                                               "package: they default to the package's data-quality drift-check "
                                               "baselines. Default: none (profiling only).")
    drift_features: list[str] = Field(default_factory=list, description="Features whose baseline drift gets a "
                                      "CloudWatch alarm. Default: none.")
    drift_threshold: float = Field(0.1, gt=0, le=1, description="Baseline drift (0-1) that trips a drift alarm. "
                                   "Default: 0.1.")
    model_quality: Optional[ModelQualityConfig] = Field(
        None, description="Model-quality monitoring against ground truth, on the same schedule. Default: none "
        "(data quality only).")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            try:
                schedule_interval_seconds(value)
            except ValueError:
                raise ValueError(f"{value!r} {SCHEDULE_HELP}") from None
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        check_instance_type(value)
        return value

    def is_enabled(self, captures_data: bool) -> bool:
        return self.enabled if self.enabled is not None else captures_data


class AlertsConfig(Settings):
    """Who is told about drift, violations and failed monitoring runs (subscribers of the alerts topic)."""

    email: list[str] = Field(default_factory=list, description="E-mail addresses (each confirms once). Default: none.")
    https: list[str] = Field(default_factory=list, description="https:// endpoints (e.g. a chat or paging "
                             "webhook). Default: none.")

    @field_validator("email", "https")
    @classmethod
    def _subscribers(cls, values: list[str], info) -> list[str]:
        wanted = "email" if info.field_name == "email" else "https"
        for value in values:
            try:
                protocol = subscription_protocol(value)
            except ValueError:
                protocol = None
            if protocol != wanted:
                raise ValueError(f"{value!r} is not {'an e-mail address' if wanted == 'email' else 'an https:// URL'}")
        if len(set(values)) != len(values):
            raise ValueError(f"must be unique; got {', '.join(values)}")
        return values

    @property
    def subscriptions(self) -> list[str]:
        return [*self.email, *self.https]


def monitoring_problem(at: str, monitoring: MonitoringConfig, captures_data: bool,
                       production: bool, package_source: bool = False) -> Optional[tuple[str, str]]:
    """The first problem of a model's monitoring as (key path, message), or None; for `PlatformConfig`.

    `at` is the model's path, e.g. `models[0]`. A production monitor without a baseline is a config error,
    unless the model comes from a model package (`package_source`): its drift-check baselines are used,
    and a package without them is reported when the source is resolved.
    """
    if monitoring.enabled and not captures_data:
        return f"{at}.monitoring.enabled", "monitoring reads captured data; enable data_capture"
    if production and monitoring.enabled is False:
        return f"{at}.monitoring.enabled", PRODUCTION_NEEDS_MONITORING
    if production and monitoring.is_enabled(captures_data) and monitoring.baseline is None and not package_source:
        return f"{at}.monitoring.baseline", PRODUCTION_NEEDS_BASELINE
    interval = schedule_interval_seconds(monitoring.schedule or ("cron(0 * ? * * *)" if production
                                                                 else "cron(0 0 ? * * *)"))
    if monitoring.max_runtime_minutes * 60 > interval:
        return (f"{at}.monitoring.max_runtime_minutes",
                f"{monitoring.max_runtime_minutes} minutes is longer than the schedule's interval "
                f"({interval // 60} minutes)")
    return None


def monitor_args(monitoring: MonitoringConfig, alerts: AlertsConfig, *, endpoint_name: pulumi.Input[str],
                 capture_s3_uri: pulumi.Input[str], reports_bucket: "SecureBucket", vpc_id: str,
                 subnet_ids: Sequence[str], production: bool, kms_key_arn: Optional[pulumi.Input[str]] = None,
                 notification_topic_arn: Optional[pulumi.Input[str]] = None,
                 permissions_boundary_arn: Optional[str] = None, region: Optional[str] = None,
                 baseline_s3_uris: Optional[tuple[str, str]] = None,
                 tags: Optional[Mapping[str, str]] = None) -> ModelMonitorArgs:
    """The `ModelMonitorArgs` of one model's `monitoring:` section and the stack's `alerts:`.

    With `notification_topic_arn` (e.g. the topic of the stack's first monitor) the alerts subscribers
    are not repeated: they are subscribed to the topic that is created.
    """
    baseline, quality = monitoring.baseline, monitoring.model_quality
    statistics, constraints = ((baseline.statistics_s3_uri, baseline.constraints_s3_uri) if baseline
                               else baseline_s3_uris or (None, None))
    return ModelMonitorArgs(
        endpoint_name=endpoint_name,
        capture_s3_uri=capture_s3_uri,
        reports_bucket=reports_bucket,
        vpc_id=vpc_id,
        subnet_ids=list(subnet_ids),
        production=production,
        baseline_statistics_s3_uri=statistics,
        baseline_constraints_s3_uri=constraints,
        capture_kms_key_arn=kms_key_arn,
        schedule_expression=monitoring.schedule,
        instance_type=monitoring.instance_type,
        instance_count=monitoring.instance_count,
        volume_size_gb=monitoring.volume_size_gb,
        max_runtime_seconds=monitoring.max_runtime_minutes * 60,
        volume_kms_key_arn=kms_key_arn,
        output_kms_key_arn=kms_key_arn,
        notification_topic_arn=notification_topic_arn,
        subscriptions=[] if notification_topic_arn is not None else alerts.subscriptions,
        drift_features=list(monitoring.drift_features),
        drift_threshold=monitoring.drift_threshold,
        ground_truth_s3_uri=quality.ground_truth_s3_uri if quality else None,
        problem_type=quality.problem_type if quality else None,
        inference_attribute=quality.inference_attribute if quality else None,
        probability_attribute=quality.probability_attribute if quality else None,
        probability_threshold_attribute=quality.probability_threshold if quality else None,
        model_quality_metric=quality.metric if quality else None,
        model_quality_threshold=quality.threshold if quality else None,
        model_quality_baseline_constraints_s3_uri=quality.baseline_constraints_s3_uri if quality else None,
        permissions_boundary_arn=permissions_boundary_arn,
        region=region,
        protect=production,
        tags=dict(tags or {}),
    )
