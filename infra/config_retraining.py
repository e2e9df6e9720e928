"""Stack config for retraining: a `retraining:` section per model.

    models:
      - name: churn
        retraining:
          enabled: true
          metric_name: auc
          metric_threshold: 0.8
          comparison: ">="
          schedule: cron(0 3 ? * MON *)
          training_image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-training:1.4.0

The pipeline is `<environment>-<model>-retraining` (what `emlops retrain` starts); it is started by the
model's monitoring violations (when the model is monitored) and by `schedule`, and registers versions
in the model's package group for approval.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal, Optional

import pulumi
from pydantic import Field, field_validator

from emlops.components.settings import Settings

from emlops.components.retraining import RetrainingPipelineArgs, check_schedule_expression, check_threshold

_INSTANCE = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
_ECR_IMAGE = (r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+"
              r"(:[\w.-]+|@sha256:[0-9a-f]{64})$")


class RetrainingConfig(Settings):
    """Automatic retraining of a model (a SageMaker pipeline built by the SageMaker SDK)."""

    enabled: bool = Field(False, description="Create the model's retraining pipeline. Default: false.")
    metric_name: str = Field("auc", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
                             description="Metric of the evaluation report compared with the threshold. Default: auc.",
                             json_schema_extra={"errorMessage": "must be letters, digits and '_'"})
    metric_threshold: float = Field(0.8, description="Value the metric must reach for the new version to be "
                                    "registered (0-1 for auc, accuracy, f1, precision, recall, r2). Default: 0.8.")
    comparison: Literal[">=", ">", "<=", "<"] = Field(">=", description="How the metric is compared with the "
                                                       "threshold (`<`, `<=` for errors such as rmse). Default: `>=`.")
    schedule: Optional[str] = Field(None, description="EventBridge schedule that also starts the pipeline, e.g. "
                                    "`cron(0 3 ? * MON *)` or `rate(7 days)`. Default: started only by monitoring "
                                    "violations and `emlops retrain`.")
    processing_instance_type: str = Field("ml.m5.xlarge", pattern=_INSTANCE, description="Instance type of the "
                                          "prepare and evaluate steps. Default: ml.m5.xlarge.",
                                          json_schema_extra={"errorMessage": "must look like 'ml.m5.xlarge'"})
    training_instance_type: str = Field("ml.m5.xlarge", pattern=_INSTANCE, description="Instance type of the "
                                        "training step. Default: ml.m5.xlarge.",
                                        json_schema_extra={"errorMessage": "must look like 'ml.m5.xlarge'"})
    training_instance_count: int = Field(1, ge=1, le=100, description="Training instances. Default: 1.")
    training_image: Optional[str] = Field(None, pattern=_ECR_IMAGE, description="ECR training image with a tag "
                                          "or digest. Default: the training repository's image tagged with the "
                                          "model name.",
                                          json_schema_extra={"errorMessage": "must be an ECR image URI with a tag, "
                                                             "<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"})

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            try:
                check_schedule_expression(value)
            except ValueError as error:
                raise ValueError(str(error).removeprefix("schedule ")) from None
        return value

    @field_validator("metric_threshold")
    @classmethod
    def _threshold(cls, value: float, info) -> float:
        check_threshold(info.data.get("metric_name", "auc"), value)
        return value


def retraining_args(retraining: RetrainingConfig, *, model_name: str, environment: str,
                    training_image_uri: pulumi.Input[str], input_s3_uri: pulumi.Input[str],
                    output_s3_uri: pulumi.Input[str], baseline_statistics_s3_uri: Optional[str] = None,
                    baseline_constraints_s3_uri: Optional[str] = None,
                    monitoring_schedule_arn: Optional[pulumi.Input[str]] = None,
                    notification_topic_arn: Optional[pulumi.Input[str]] = None,
                    vpc_id: Optional[str] = None, subnet_ids: Sequence[str] = (),
                    security_group_ids: Sequence[str] = (), kms_key_arn: Optional[pulumi.Input[str]] = None,
                    permissions_boundary_arn: Optional[str] = None, production: bool = False,
                    tags: Optional[Mapping[str, str]] = None) -> RetrainingPipelineArgs:
    """The `RetrainingPipelineArgs` of one model's `retraining:` section.

    `training_image_uri` is used when the section names no `training_image` (e.g. the training
    repository's URL with a tag); `input_s3_uri`/`output_s3_uri` are the model's prefixes in the
    training buckets (`datasets/<model>/`, `models/<model>/`).
    """
    return RetrainingPipelineArgs(
        model_name=model_name,
        pipeline_name=pipeline_name(environment, model_name),
        training_image_uri=retraining.training_image or training_image_uri,
        input_s3_uri=input_s3_uri,
        output_s3_uri=output_s3_uri,
        processing_instance_type=retraining.processing_instance_type,
        training_instance_type=retraining.training_instance_type,
        training_instance_count=retraining.training_instance_count,
        metric_name=retraining.metric_name,
        metric_threshold=retraining.metric_threshold,
        comparison=retraining.comparison,
        baseline_statistics_s3_uri=baseline_statistics_s3_uri,
        baseline_constraints_s3_uri=baseline_constraints_s3_uri,
        monitoring_schedule_arn=monitoring_schedule_arn,
        schedule_expression=retraining.schedule,
        notification_topic_arn=notification_topic_arn,
        vpc_id=vpc_id if subnet_ids else None,
        subnet_ids=list(subnet_ids),
        security_group_ids=list(security_group_ids),
        kms_key_arn=kms_key_arn,
        permissions_boundary_arn=permissions_boundary_arn,
        protect=production,
        tags=dict(tags or {}),
    )


def pipeline_name(environment: str, model_name: str) -> str:
    """`<environment>-<model>-retraining`: the name `emlops retrain` starts."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", f"{environment}-{model_name}-retraining")

