"""The personas stage: the IAM roles people assume, each limited to what the platform's earlier stages built.

It runs last but one (before the budget and the audit trail): a persona's policy names the platform's keys, buckets,
feature groups, package groups, endpoints, monitors, pipelines and job placement, so everything it names exists.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Optional

from emlops.components.options import child
from emlops.components.personas import Personas, PersonasContext
from emlops.components.settings import Governance

if TYPE_CHECKING:  # the platform whose stages it reads; it is built by the platform
    from emlops.program.platform import MlPlatform, PlatformConfig
    from emlops.program.serving import SharedRegistry

__all__ = ["personas"]


def personas(platform: "MlPlatform", name: str, settings: "PlatformConfig", shared: Optional["SharedRegistry"],
             governance: Governance) -> Optional[Personas]:
    """The stack's persona roles (none without a `personas` section)."""
    if settings.personas is None:
        return None
    training, network = platform.training, platform.network
    return Personas(f"{name}-personas", settings.personas, PersonasContext(
        environment=settings.environment, data_key_arn=platform.data_key.arn,
        datasets_bucket_arn=platform.datasets.arn if platform.datasets is not None else None,
        artifacts_bucket_arn=platform.artifacts.arn,
        feature_group_arns=list(platform.feature_store.feature_group_arns.values()) if platform.feature_store else [],
        package_group_arns=list(platform.registry.package_group_arns.values()) if platform.registry else [],
        shared_group_arns=[shared.ref.group_arn(g) for g in settings.deployed_groups()] if shared else [],
        shared_group_publisher=bool(shared and shared.ref.publisher),
        endpoint_arns=[endpoint.endpoint_arn for endpoint in platform.endpoints.values()],
        monitoring_schedule_arns=[monitor.schedule_arn for monitor in platform.monitors.values()],
        pipeline_arns=[p.pipeline_arn for p in (*platform.retraining.values(), *platform.batch_transforms.values(),
                                                *platform.data_pipelines.values())],
        # SageMaker training only (an EKS cluster has no job role)
        training_role_arn=training.role_arn if training is not None else None,
        job_subnet_ids=[] if network is None else list(network.private_subnet_ids),
        # the training jobs' own group (the instances of a job talk to each other, HTTPS to the endpoints)
        job_security_group_ids=[training.security_group_id] if training is not None
        and training.security_group_id is not None else [],
        name_prefix=f"{name}-", production=settings.production,
        governance=replace(governance, protect=False)),
        opts=child(platform))
