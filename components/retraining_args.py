"""What a `RetrainingPipeline` takes: its settings (a stack file's `models[].retraining`) and its context.

    retraining:
      enabled: true
      metric_name: auc
      metric_threshold: 0.8
      comparison: ">="
      schedule: cron(0 3 ? * MON *)
      training_image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-training:1.4.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

import pulumi
from pydantic import Field, field_validator

from emlops.components.api_limits import check_content_types, check_instance_type, check_instance_types
from emlops.components.locations import parse_s3
from emlops.components.monitoring_args import DriftBaseline
from emlops.components.schedules import check_eventbridge_schedule
from emlops.components.settings import Governance, Placement, Settings, error_message
from emlops.components.training_features import FeatureSource, TrainingFeaturesSettings

# Metrics that are fractions: a threshold outside 0-1 can never be met (or is always met).
FRACTION_METRICS = frozenset({"auc", "accuracy", "f1", "precision", "recall", "r2"})
_ECR_IMAGE = (r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+"
              r"(:[\w.-]+|@sha256:[0-9a-f]{64})$")
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_GROUP_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package-group/"
                        r"[a-z0-9](-*[a-z0-9]){0,62}$")
def check_threshold(metric_name: str, threshold: float) -> None:
    if not math.isfinite(threshold):
        raise ValueError(f"metric_threshold ({threshold!r}) must be a finite number")
    if metric_name.lower() in FRACTION_METRICS and not 0 <= threshold <= 1:
        raise ValueError(f"metric_threshold ({threshold}) for {metric_name} must be between 0 and 1")


class RetrainingSettings(Settings):
    """Automatic retraining of a model (a SageMaker pipeline built by the SageMaker SDK): prepare, train,
    evaluate, and register the new version for approval if its metric passes."""

    enabled: bool = Field(False, description="Create the model's retraining pipeline. Default: false.")
    metric_name: str = Field("auc", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
                             description="Metric of the evaluation report compared with the threshold. Default: auc.",
                             json_schema_extra=error_message("must be letters, digits and '_'"))
    metric_threshold: float = Field(0.8, description="Value the metric must reach for the new version to be "
                                    "registered (0-1 for auc, accuracy, f1, precision, recall, r2). Default: 0.8.")
    comparison: Literal[">=", ">", "<=", "<"] = Field(">=", description="How the metric is compared with the "
                                                       "threshold (`<`, `<=` for errors such as rmse). Default: `>=`.")
    schedule: Optional[str] = Field(None, description="EventBridge schedule that also starts the pipeline, e.g. "
                                    "`cron(0 3 ? * MON *)` or `rate(7 days)`. Default: started only by monitoring "
                                    "violations and `emlops retrain`.")
    processing_instance_type: str = Field("ml.m5.xlarge", description="Instance type of the prepare and evaluate "
                                          "steps (botocore's `ProcessingInstanceType`). Default: ml.m5.xlarge.")
    training_instance_type: str = Field("ml.m5.xlarge", description="Instance type of the training step "
                                        "(botocore's `TrainingInstanceType`). Default: ml.m5.xlarge.")
    training_instance_count: int = Field(1, ge=1, le=100, description="Training instances. Default: 1.")
    training_image: Optional[str] = Field(None, pattern=_ECR_IMAGE, description="ECR training image with a tag "
                                          "or digest; the registered version is served with it too. Required "
                                          "when enabled.",
                                          json_schema_extra=error_message(
                                              "must be an ECR image URI with a tag, "
                                              "<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"))
    processing_image: Optional[str] = Field(None, pattern=_ECR_IMAGE, description="ECR image of the prepare and "
                                            "evaluate steps, with a tag or digest. Default: the training image.",
                                            json_schema_extra=error_message(
                                                "must be an ECR image URI with a tag, "
                                                "<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"))
    prepare_command: list[str] = Field(["python3", "/opt/program/prepare.py"], min_length=1,
                                       description="Entrypoint of the prepare step (reads `/opt/ml/processing/input`, "
                                       "writes `train/` and `test/`). Default: `python3 /opt/program/prepare.py`.")
    evaluate_command: list[str] = Field(["python3", "/opt/program/evaluate.py"], min_length=1,
                                        description="Entrypoint of the evaluate step; it writes `evaluation.json` "
                                        "with `{\"metrics\": {\"<metric>\": {\"value\": x}}}`. Default: "
                                        "`python3 /opt/program/evaluate.py`.")
    volume_size_gb: int = Field(30, ge=1, le=16384, description="Volume per instance in GB. Default: 30.")
    max_runtime_hours: int = Field(24, ge=1, le=120, description="Longest each step's job may run, in hours. "
                                   "Default: 24.")
    content_types: list[str] = Field(["text/csv"], min_length=1, description="Request and response MIME types of "
                                     "the registered version (its `SupportedContentTypes` and "
                                     "`SupportedResponseMIMETypes`). Default: text/csv.")
    inference_instance_types: list[str] = Field(["ml.m5.large"], min_length=1, description="Instance types the "
                                                "registered version may be deployed to, for endpoints and batch "
                                                "transform (botocore's `ProductionVariantInstanceType` and "
                                                "`TransformInstanceType`). Default: ml.m5.large.")
    features: Optional[TrainingFeaturesSettings] = Field(
        None, description="Take the training set from the feature store (point in time, through an Athena workgroup "
        "of the pipeline's own) instead of `datasets/<model>/` of the datasets bucket. Default: the prefix.")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else check_eventbridge_schedule(value)

    @field_validator("metric_threshold")
    @classmethod
    def _threshold(cls, value: float, info) -> float:
        check_threshold(info.data.get("metric_name", "auc"), value)
        return value

    @field_validator("processing_instance_type")
    @classmethod
    def _processing_type(cls, value: str) -> str:
        return check_instance_type(value, "processing")

    @field_validator("training_instance_type")
    @classmethod
    def _training_type(cls, value: str) -> str:
        return check_instance_type(value, "training")

    @field_validator("inference_instance_types")
    @classmethod
    def _instance_types(cls, values: list[str]) -> list[str]:
        return check_instance_types(values, "hosting", "batch transform")

    @field_validator("content_types")
    @classmethod
    def _content_types(cls, values: list[str]) -> list[str]:
        return check_content_types(values, "ContentTypes", "ResponseMIMETypes")


def pipeline_name(environment: str, model_name: str) -> str:
    """`<environment>-<model>-retraining`: the name `emlops retrain` starts."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", f"{environment}-{model_name}-retraining")


@dataclass(frozen=True)
class RetrainingContext:
    """What the platform supplies to a `RetrainingPipeline`."""

    model_name: str
    """The model, e.g. `churn`."""
    pipeline_name: str
    """SageMaker pipeline name; the platform uses `<environment>-<model>-retraining` (`pipeline_name(...)`)."""
    input_s3_uri: pulumi.Input[str]
    """S3 prefix of the datasets the prepare step reads, e.g. `s3://<datasets bucket>/datasets/churn/`."""
    output_s3_uri: pulumi.Input[str]
    """S3 prefix the steps write to (splits, evaluation), e.g. `s3://<artifacts bucket>/models/churn/`."""
    package_group_name: Optional[str] = None
    """Model package group new versions are registered in. Default: `model_name`."""
    package_group_arn: Optional[str] = None
    """ARN of that group when it lives in another account (a shared-services registry that lists this
    account among its publishers). Default: the group of that name in this account."""
    model_output_s3_uri: Optional[pulumi.Input[str]] = None
    """S3 prefix the train step writes the model artifact to, e.g. `models/<model>/` of a shared registry's
    bucket, where the accounts deploying the version read it. Default: `<output_s3_uri>/training`."""
    model_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the model artifact (with `model_output_s3_uri`). Default: `kms_key_arn`."""
    baseline: Optional[DriftBaseline] = None
    """The data-quality baseline, attached to registered versions as their drift-check baselines. Default: none."""
    monitoring_schedule_arn: Optional[pulumi.Input[str]] = None
    """The model's monitoring schedule; runs that find violations start the pipeline. Default: not started by
    monitoring."""
    quality_schedule_arn: Optional[pulumi.Input[str]] = None
    """The model's model-quality schedule (with `monitoring_schedule_arn`): runs that find the model got worse
    against ground truth start the pipeline too. Default: none."""
    clarify_schedule_arns: Sequence[pulumi.Input[str]] = ()
    """The model's bias and explainability schedules (with `monitoring_schedule_arn`): runs that find the model's
    predictions grew biased, or its attributions drifted, start the pipeline too. Default: none."""
    approval_topic_arn: Optional[pulumi.Input[str]] = None
    """SNS topic told when a version of the group is approved. Default: none (the registry's account announces
    approvals)."""
    placement: Optional[Placement] = None
    """Private subnets and security groups of the jobs. Default: SageMaker's managed network."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the datasets and artifacts, used for the jobs' volumes and outputs. Default: a key is created."""
    features: Optional[FeatureSource] = None
    """The feature groups the prepare step reads its training set from (with `settings.features`), instead of
    `input_s3_uri`. Default: none."""
    governance: Governance = field(default_factory=Governance)
    """Tags of every child, the roles' permissions boundary, and protection of a created key."""

    @property
    def group_name(self) -> str:
        return self.package_group_name or self.model_name

    def check(self) -> None:
        """ValueError in one line when the context cannot work (before anything is created)."""
        if not _NAME.match(self.model_name):
            raise ValueError(f"model_name {self.model_name!r} must be letters, digits and '-' (at most 63)")
        if not _PIPELINE_NAME.match(self.pipeline_name):
            raise ValueError(f"pipeline_name {self.pipeline_name!r} must be letters, digits and '-' (at most 256)")
        if not _NAME.match(self.group_name):
            raise ValueError(f"package_group_name {self.group_name!r} must be letters, digits and '-' (at most 63)")
        arn = self.package_group_arn
        if arn is not None and not (_GROUP_ARN.match(arn) and arn.rsplit("/", 1)[1] == self.group_name.lower()):
            raise ValueError(f"package_group_arn {arn!r} must be the ARN of model package group "
                             f"{self.group_name!r}: arn:<partition>:sagemaker:<region>:<account>:"
                             f"model-package-group/{self.group_name.lower()}")
        if (self.model_output_s3_uri is None) != (self.model_kms_key_arn is None):
            raise ValueError("model_output_s3_uri and model_kms_key_arn go together: give both or neither")
        for label in ("input_s3_uri", "output_s3_uri", "model_output_s3_uri"):
            value = getattr(self, label)
            if isinstance(value, str):
                parse_s3(value, label, prefix=True)
        if self.baseline is not None:
            for uri in (self.baseline.statistics_s3_uri, self.baseline.constraints_s3_uri):
                if isinstance(uri, str):
                    parse_s3(uri, "baseline")
        if self.quality_schedule_arn is not None and self.monitoring_schedule_arn is None:
            raise ValueError("quality_schedule_arn needs monitoring_schedule_arn (the data-quality schedule)")
        if self.clarify_schedule_arns and self.monitoring_schedule_arn is None:
            raise ValueError("clarify_schedule_arns needs monitoring_schedule_arn (the data-quality schedule)")
