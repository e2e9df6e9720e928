"""The data stage: a DataPipeline per `data_pipelines[]` entry, feeding the platform's feature store, and the feature
source of each retraining that trains from it (`training_features`).

Its rules across sections (`check`, `check_training_features`, run by rules.py): a pipeline runs in the private
subnets, feeds one of the stack's feature groups, lands on a prefix of its own, and in production quarantines what
fails validation and tells someone; a retraining names groups of the stack with offline stores and a label among
their features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import pulumi

from emlops.components.batch_transform_args import overlap
from emlops.components.data_pipeline import DataPipeline, DataPipelineContext
from emlops.components.data_pipeline_args import DataPipelineSettings, pipeline_name
from emlops.components.feature_store import FeatureStore
from emlops.components.feature_store_args import OFFLINE_PREFIX, feature_group_name
from emlops.components.network import Network
from emlops.components.options import child
from emlops.components.retraining_args import RetrainingSettings
from emlops.components.settings import AtKey, Governance, Placement
from emlops.components.storage import SecureBucket
from emlops.components.training_features import FeatureSource, feature_tables

if TYPE_CHECKING:  # the settings that hold the sections; the rules run while they validate
    from emlops.program.platform import PlatformConfig

__all__ = ["DataPipelineSettings", "check", "check_training_features", "data_pipeline_component", "data_pipelines",
           "training_features"]


def data_pipeline_component(environment: str, name: str) -> str:
    """The name of a DataPipeline (also its SageMaker pipeline's name)."""
    return pipeline_name(environment, name)


def check(config: PlatformConfig) -> None:
    """AtKey for the first data pipeline that cannot work in this stack."""
    groups = [group.name for group in config.feature_groups]
    landing: dict[str, int] = {}
    for index, entry in enumerate(config.data_pipelines):
        at = f"data_pipelines[{index}]"
        if any(other.name == entry.name for other in config.data_pipelines[:index]):
            raise AtKey(f"{at}.name", f"data pipeline name {entry.name!r} is used twice; names must be unique")
        if entry.feature_group not in groups:
            raise AtKey(f"{at}.feature_group", f"{entry.feature_group!r} is not one of the stack's feature_groups "
                        f"({', '.join(groups) or 'none'}); declare it in feature_groups or name one of them")
        for other, earlier in landing.items():
            if overlap(entry.landing_prefix, other):
                raise AtKey(f"{at}.landing_prefix", f"{entry.landing_prefix!r} overlaps data_pipelines[{earlier}]'s "
                            f"landing_prefix {other!r}; each data pipeline claims what lands under a prefix of its own")
        landing[entry.landing_prefix] = index
        for number, batch in enumerate(config.batch_transforms):
            if overlap(entry.landing_prefix, batch.input_prefix):
                raise AtKey(f"{at}.landing_prefix", f"{entry.landing_prefix!r} overlaps batch_transforms[{number}]'s "
                            f"input_prefix {batch.input_prefix!r}; the pipeline would move the objects it scores")
        if config.network is None:
            raise AtKey(at, "runs in private subnets; add network.managed (or network.vpc_id and "
                        "network.private_subnet_ids)")
        if config.production and not entry.quarantine:
            raise AtKey(f"{at}.quarantine", "production data pipelines quarantine batches that fail validation; "
                        "set quarantine: true")
    if config.production and config.data_pipelines and not config.alerts.subscriptions:
        raise AtKey("alerts", "production data pipelines tell the alerts topic about failed runs and quarantined "
                    "batches; subscribe someone (alerts.email or alerts.https)")


def data_pipelines(parent: pulumi.Resource, config: PlatformConfig, datasets: Optional[SecureBucket],
                   feature_store: Optional[FeatureStore], network: Optional[Network],
                   workloads: Sequence[pulumi.Input[str]], alerts_topic_arn: Optional[pulumi.Input[str]],
                   governance: Governance) -> dict[str, DataPipeline]:
    """A DataPipeline per `data_pipelines[]` entry, writing to its group of `feature_store`, in the private subnets of
    `network`, in the workloads' security group (or, in a stack without one, a group of its own: HTTPS to the VPC
    endpoints only)."""
    built, environment = {}, config.environment
    for entry in config.data_pipelines:
        placement = Placement(network.vpc_id, list(network.private_subnet_ids), list(workloads))
        group = feature_store.spec(entry.feature_group)
        built[entry.name] = DataPipeline(data_pipeline_component(environment, entry.name), entry, DataPipelineContext(
            pipeline_name=pipeline_name(environment, entry.name), datasets_bucket=datasets,
            feature_group_name=feature_store.feature_group_names[entry.feature_group],
            feature_group_arn=feature_store.feature_group_arns[entry.feature_group],
            feature_store_key_arn=feature_store.kms_key_arn if group.online.enabled else None,
            placement=placement, endpoint_egress=network.endpoint_egress, alerts_topic_arn=alerts_topic_arn,
            kms=config.kms, governance=governance), opts=child(parent))
    return built


def check_training_features(config: PlatformConfig) -> None:
    """AtKey for the first retraining whose feature source the stack's feature groups cannot give."""
    for index, model in enumerate(config.models):
        features = model.retraining.features
        problem = features.problem(config.feature_groups) if features is not None and model.retraining.enabled else None
        if problem:
            raise AtKey(f"models[{index}].retraining.features.{problem[0]}", problem[1])


def training_features(feature_store: Optional[FeatureStore], settings: RetrainingSettings) -> Optional[FeatureSource]:
    """The feature source of a retraining that trains from the feature store (None for one that reads a prefix)."""
    if settings.features is None:
        return None
    groups = [feature_store.spec(name) for name in feature_store.feature_group_names]
    return FeatureSource(
        database=feature_store.glue_database_name, label=settings.features.label,
        tables=feature_tables(groups, settings.features, {g.name: feature_group_name(feature_store.store_name, g.name)
                                                          for g in groups},
                              feature_store.feature_group_arns, OFFLINE_PREFIX),
        offline_bucket_arn=feature_store.offline_bucket.arn, kms_key_arn=feature_store.kms_key_arn)
