"""Model-quality monitoring: the job definition (pulumi-aws-native) and the model-quality rules.

pulumi_aws has SageMaker's data-quality job definition and monitoring schedule but no model-quality job
definition; pulumi-aws-native has it (`aws-native:sagemaker:ModelQualityJobDefinition`, AWS's own
CloudFormation resource through Cloud Control). Every property of it is create-only, so a change replaces
it; its name is left to the provider, so the replacement is created (under a new name) before the old one
is deleted, and the schedule that names it moves over without a gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.locations import S3ObjectUri, S3PrefixUri
from emlops.components.settings import Settings, error_message

__all__ = ["ModelQualitySettings", "QUALITY_METRICS", "check_model_quality", "default_metric",
           "metric_alarm_direction", "monitor_quality_job"]

RESOURCE_TYPE = "aws-native:sagemaker:ModelQualityJobDefinition"

# -- what the analyzer publishes --------------------------------------------------------------------

HIGHER_IS_BETTER, LOWER_IS_BETTER = "higher", "lower"
# Metrics the Model Monitor analyzer publishes per problem type (namespace
# aws/sagemaker/Endpoints/model-metrics, dimensions Endpoint and MonitoringSchedule), and which way is good.
QUALITY_METRICS: dict[str, dict[str, str]] = {
    "BinaryClassification": {
        **dict.fromkeys(("auc", "f1", "f0_5", "f2", "accuracy", "precision", "recall", "true_positive_rate",
                         "true_negative_rate"), HIGHER_IS_BETTER),
        **dict.fromkeys(("false_positive_rate", "false_negative_rate"), LOWER_IS_BETTER)},
    "MulticlassClassification": dict.fromkeys(
        ("accuracy", "weighted_f1", "weighted_f0_5", "weighted_f2", "weighted_precision", "weighted_recall"),
        HIGHER_IS_BETTER),
    "Regression": {"rmse": LOWER_IS_BETTER, "mae": LOWER_IS_BETTER, "mse": LOWER_IS_BETTER, "r2": HIGHER_IS_BETTER},
}
_DEFAULT_METRIC = {"BinaryClassification": "auc", "MulticlassClassification": "accuracy", "Regression": "rmse"}
_UNBOUNDED = {"rmse", "mae", "mse", "r2"}


def problem_types() -> tuple[str, ...]:
    """SageMaker's problem types (botocore's `MonitoringProblemType`)."""
    from emlops.catalog.aws import api_enum

    return api_enum("sagemaker", "MonitoringProblemType")


def default_metric(problem_type: str) -> str:
    return _DEFAULT_METRIC[problem_type]


def metric_alarm_direction(problem_type: str, metric: str) -> str:
    """`higher` if a higher value is better (alarm below the threshold), `lower` otherwise."""
    return QUALITY_METRICS[problem_type][metric]


def check_model_quality(problem_type: str, inference_attribute: Optional[str], probability_attribute: Optional[str],
                        probability_threshold: Optional[float], metric: Optional[str], threshold: Optional[float]) -> str:
    """The alarm's metric (given or the problem type's default); ValueError in one line if SageMaker or the
    analyzer would not accept the combination."""
    if problem_type not in problem_types():
        raise ValueError(f"problem_type {problem_type!r} must be one of {', '.join(problem_types())} "
                         "(SageMaker's MonitoringProblemType)")
    p_threshold = "probability_threshold"
    if problem_type == "BinaryClassification":
        if not probability_attribute or probability_threshold is None:
            raise ValueError(f"BinaryClassification needs probability_attribute and {p_threshold} (where the "
                             "captured response holds the probability, and the probability from which it is positive)")
    else:
        if not inference_attribute:
            raise ValueError(f"{problem_type} needs inference_attribute (where the captured response holds the "
                             "prediction)")
        if probability_threshold is not None:
            raise ValueError(f"{p_threshold} applies only to BinaryClassification; drop it for {problem_type}")
        if problem_type == "Regression" and probability_attribute:
            raise ValueError("probability_attribute applies only to classification; drop it for Regression")
    if probability_threshold is not None and not 0 < probability_threshold < 1:
        raise ValueError(f"{p_threshold} ({probability_threshold}) must be between 0 and 1, exclusive")
    metric = metric or _DEFAULT_METRIC[problem_type]
    allowed = QUALITY_METRICS[problem_type]
    if metric not in allowed:
        raise ValueError(f"metric {metric!r} is not published for {problem_type}; use one of "
                         f"{', '.join(allowed)}")
    label = "threshold"
    if threshold is None:
        raise ValueError(f"{label} is required: the alarm fires when {metric} goes "
                         f"{'below' if allowed[metric] == HIGHER_IS_BETTER else 'above'} it")
    if metric == "r2" and threshold >= 1:
        raise ValueError(f"{label} ({threshold}) must be below 1 for r2")
    if metric in _UNBOUNDED - {"r2"} and threshold <= 0:
        raise ValueError(f"{label} ({threshold}) must be above 0 for {metric}")
    if metric not in _UNBOUNDED and not 0 < threshold < 1:
        raise ValueError(f"{label} ({threshold}) must be between 0 and 1, exclusive, for {metric}")
    return metric


class ModelQualitySettings(Settings):
    """Model-quality monitoring: the endpoint's captured predictions compared with ground-truth labels."""

    ground_truth_s3_uri: S3PrefixUri = Field(
        description="Where the ground-truth labels are uploaded (read-only for the monitor).",
        json_schema_extra=error_message("must be an S3 URI, s3://<bucket>/[<prefix>]"))
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
    baseline_constraints_s3_uri: Optional[S3ObjectUri] = Field(
        None, description="`constraints.json` of a model-quality baselining job. Default: none "
        "(the alarm is the only check).",
        json_schema_extra=error_message("must be an S3 object URI, s3://<bucket>/<key>"))

    @field_validator("problem_type")
    @classmethod
    def _problem_type(cls, value: str) -> str:
        if value not in problem_types():
            raise ValueError(f"{value!r} is not one of {', '.join(problem_types())}")
        return value

    @model_validator(mode="after")
    def _combination(self) -> "ModelQualitySettings":
        check_model_quality(self.problem_type, self.inference_attribute, self.probability_attribute,
                            self.probability_threshold, self.metric, self.threshold)
        return self

    @property
    def alarm_metric(self) -> str:
        """The metric with an alarm: the one given, or the problem type's default."""
        return self.metric or default_metric(self.problem_type)


def monitor_quality_job(resource_name: str, quality: ModelQualitySettings, *, endpoint_input: Mapping[str, Any],
                        image_uri: pulumi.Input[str], output_key: pulumi.Input[str], reports_s3_uri: pulumi.Input[str],
                        tags: Mapping[str, str], opts: pulumi.ResourceOptions, **shared: Any):
    """A ModelMonitor's model-quality job definition: the analyzer merges the endpoint's captured predictions
    with the ground truth, publishes the problem type's metrics and checks the baseline's constraints (if any).
    `shared` are the arguments it shares with the data-quality definition (resources, network, role, ...)."""
    attributes = {key: value for key, value in (
        ("inference_attribute", quality.inference_attribute), ("probability_attribute", quality.probability_attribute),
        ("probability_threshold_attribute", quality.probability_threshold)) if value is not None}
    constraints = quality.baseline_constraints_s3_uri
    # imported here: only stacks that monitor model quality pay for the aws-native package
    import pulumi_aws_native as aws_native

    return aws_native.sagemaker.ModelQualityJobDefinition(
        resource_name,
        model_quality_app_specification={"image_uri": image_uri, "problem_type": quality.problem_type,
                                         "environment": {"publish_cloudwatch_metrics": "Enabled"}},
        model_quality_baseline_config={"constraints_resource": {"s3_uri": constraints}} if constraints else None,
        model_quality_job_input={"endpoint_input": {**endpoint_input, **attributes},
                                 "ground_truth_s3_input": {"s3_uri": quality.ground_truth_s3_uri}},
        model_quality_job_output_config={"kms_key_id": output_key, "monitoring_outputs": [{"s3_output": {
            "s3_uri": reports_s3_uri, "local_path": "/opt/ml/processing/output", "s3_upload_mode": "EndOfJob"}}]},
        # Cloud Control takes tags as a list of key/value pairs
        tags=[{"key": key, "value": value} for key, value in tags.items()],
        opts=opts,
        **shared,
    )
