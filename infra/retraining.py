"""The retraining stage: a RetrainingPipeline per served model with `retraining.enabled`, started by its monitors'
violations, training from the datasets (or the feature store) into the artifacts bucket, and registering new versions
in the package group that holds the model (here, or in the shared stack's registry)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING

from emlops.components.monitoring_args import DriftBaseline
from emlops.components.options import child
from emlops.components.outputs import concat
from emlops.components.retraining import RetrainingContext, RetrainingPipeline
from emlops.components.retraining_args import pipeline_name
from emlops.components.settings import Governance
from emlops.program.data_pipelines import training_features
from emlops.program.names import retraining_component
from emlops.program.serving import ServedModel

if TYPE_CHECKING:  # the platform whose stages built the monitors, buckets and network it uses
    from emlops.program.platform import MlPlatform


def retraining(platform: MlPlatform, name: str, environment: str, models: Sequence[ServedModel],
               governance: Governance) -> Generator[None, None, dict[str, RetrainingPipeline]]:
    """The pipelines, one model at a time (the platform lets what is built register after each)."""
    groups = [platform.training.security_group_id, *platform.network.security_group_ids] if platform.training else []
    pipelines = {}
    for model in [m for m in models if m.settings.retraining.enabled]:
        monitor, target = platform.monitors[model.name], model.registry_target
        baseline = model.settings.monitoring.baseline
        pipelines[model.name] = RetrainingPipeline(retraining_component(name, model.name), model.settings.retraining,
                                                   RetrainingContext(
            model_name=model.name, pipeline_name=pipeline_name(environment, model.name),
            input_s3_uri=concat("s3://", platform.datasets.bucket_name, f"/datasets/{model.name}/"),
            output_s3_uri=concat("s3://", platform.artifacts.bucket_name, f"/models/{model.name}/"),
            # with a shared registry, new versions go to its group, bucket and key
            package_group_arn=target.group_arn if target else None,
            model_output_s3_uri=target.model_output_s3_uri if target else None,
            model_kms_key_arn=target.model_kms_key_arn if target else None,
            baseline=DriftBaseline(baseline.statistics_s3_uri, baseline.constraints_s3_uri) if baseline else None,
            monitoring_schedule_arn=monitor.schedule_arn,
            # a model that got worse against ground truth is retrained too
            quality_schedule_arn=monitor.quality_schedule_arn, clarify_schedule_arns=monitor.clarify_schedule_arns,
            # approvals are announced by the registry that holds the group (here, or the shared stack)
            features=training_features(platform.feature_store, model.settings.retraining),
            placement=platform.placement(groups), kms_key_arn=platform.data_key.arn,
            governance=governance), opts=child(platform))
        yield
    return pipelines
