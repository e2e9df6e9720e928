"""The rules across sections of the stack file: what one component's settings cannot know about another's.

Each component's settings check themselves (their own bounds, patterns and combinations); a rule here relates
sections: a model and the network it runs in, retraining and the training it runs on, production and what it
demands. `PlatformConfig` runs them in this order after its sections validate, and a rule reports one key
(`AtKey`) with what is allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emlops.components.batch_transform_args import overlap
from emlops.components.feature_store_args import check_feature_groups
from emlops.components.model_card import RATED
from emlops.components.settings import AtKey
from emlops.program import data_pipelines, names, rules_iam
from emlops.program.config_models import ModelConfig

if TYPE_CHECKING:  # the settings that hold the sections; rules run while they validate
    from emlops.program.platform import PlatformConfig

ADD_NETWORK = "add network.managed (or network.vpc_id and network.private_subnet_ids)"
PRODUCTION_ZONES = 3


def check(config: PlatformConfig) -> None:
    """Every rule, in order; the first that fails raises `AtKey`."""
    models_fit_the_environment(config)
    batch_transforms_fit_the_environment(config)
    data_training_registry_fit(config)
    data_pipelines.check(config)
    data_pipelines.check_training_features(config)
    network_fits_the_environment(config)
    names.check(config)
    iam_fits_the_stack(config)
    production_is_audited(config)


def models_fit_the_environment(config: PlatformConfig) -> None:
    """Model names are unique; sources, network, monitoring and retraining have what they need; production
    models are highly available and monitored. (The names derived from them are checked by names.py.)"""
    seen: set[str] = set()
    for index, model in enumerate(config.models):
        at = f"models[{index}]"
        if model.name in seen:
            raise AtKey(f"{at}.name", f"model name {model.name!r} is used twice; names must be unique")
        seen.add(model.name)
        if model.source.mlflow and not config.registry.mlflow_tracking_uri:
            raise AtKey(f"{at}.source.mlflow", "needs registry.mlflow_tracking_uri to resolve the reference")
        if model.variants and config.network is None:
            raise AtKey(at, f"runs on instances in private subnets; {ADD_NETWORK}, or use serverless")
        if config.production:
            _check_production_model(model, at)
        # SageMaker Model Monitor does not monitor multi-model endpoints (the settings refuse enabling it)
        problem = None if model.mode == "multi_model" else model.monitoring.problem(
            model.captures_data(config.environment), config.production,
            package_source=bool(model.source.model_package_group or model.source.model_package_arn))
        if problem:
            raise AtKey(f"{at}.monitoring.{problem[0]}", problem[1])
        if model.retraining.enabled:
            if not model.monitored(config.environment):
                raise AtKey(f"{at}.retraining.enabled", "retraining starts on the monitor's violations; monitor "
                            "the model (data capture and monitoring on)")
            if config.training is None or config.training.kind != "sagemaker":
                raise AtKey(f"{at}.retraining.enabled", "retraining runs SageMaker jobs in the training "
                            "network and buckets; needs training.kind: sagemaker")
            if not model.retraining.training_image:
                raise AtKey(f"{at}.retraining.training_image", "field required when retraining is enabled "
                            "(an image of the training repository with an immutable tag)")


def production_is_audited(config: PlatformConfig) -> None:
    """A production environment's API activity is recorded: a trail of its own, or the organisation's."""
    if config.production and config.audit is None:
        raise AtKey("audit", "production stacks record their API activity: add audit.trail (a trail of the stack's "
                    "own) or audit.organization_trail (the organisation's trail, checked when deployed)")


def batch_transforms_fit_the_environment(config: PlatformConfig) -> None:
    """Batch transforms run in private subnets, take names no model's components have, write prefixes of their own,
    and in production run on a schedule and tell someone when a run fails."""
    environment = config.environment
    taken: dict[str, str] = {}
    for model in config.models:
        taken[names.endpoint_component(environment, model.name)] = f"model {model.name!r}'s endpoint"
        taken[names.monitor_component(environment, model.name)] = f"model {model.name!r}'s monitor"
        taken[names.retraining_component(environment, model.name)] = f"model {model.name!r}'s retraining pipeline"
    outputs: dict[str, int] = {}
    for index, entry in enumerate(config.batch_transforms):
        at = f"batch_transforms[{index}]"
        component = names.batch_transform_component(environment, entry.name)
        for mine in (component, f"{component}-monitor"):
            if mine in taken:
                raise AtKey(f"{at}.name", f"{entry.name!r} names the batch transform's resources {mine!r}, the name "
                            f"of {taken[mine]}; choose another name")
            taken[mine] = f"batch transform {entry.name!r}"
        if entry.source.mlflow and not config.registry.mlflow_tracking_uri:
            raise AtKey(f"{at}.source.mlflow", "needs registry.mlflow_tracking_uri to resolve the reference")
        if config.network is None:
            raise AtKey(at, f"runs in private subnets; {ADD_NETWORK}")
        for other, earlier in outputs.items():
            if overlap(entry.output_prefix, other):
                raise AtKey(f"{at}.output_prefix", f"{entry.output_prefix!r} overlaps batch_transforms[{earlier}]'s "
                            f"output_prefix {other!r}; each batch transform writes a prefix of its own")
        outputs[entry.output_prefix] = index
        if config.production and entry.schedule is None:
            raise AtKey(f"{at}.schedule", "production batch transforms run on a schedule (an EventBridge cron or "
                        "rate, e.g. 'cron(0 2 * * ? *)'); new data alone may never come")
    if config.production and config.batch_transforms and not config.alerts.subscriptions:
        raise AtKey("alerts", "production batch transforms tell the alerts topic about failed runs; subscribe "
                    "someone (alerts.email or alerts.https)")


def data_training_registry_fit(config: PlatformConfig) -> None:
    """Feature groups fit their store; training has a network; the registry shares with other accounts only;
    a self-hosted MLflow has the EKS cluster."""
    problem = check_feature_groups(f"{config.environment}-features", config.feature_groups)
    if problem:
        raise AtKey(f"feature_groups{problem[0]}", problem[1])
    if config.training is not None and config.network is None:
        raise AtKey("training", f"runs in private subnets; {ADD_NETWORK}")
    for key in ("consumer_account_ids", "publisher_account_ids"):
        if config.account_id in getattr(config.registry, key):
            raise AtKey(f"registry.{key}", f"{config.account_id!r} is this stack's own account; list only the "
                        f"accounts that {'consume' if key.startswith('consumer') else 'publish into'} it")
    if config.registry.mlflow.kind == "kubernetes" and (config.training is None or config.training.kind != "eks"):
        raise AtKey("registry.mlflow.kind", "kubernetes needs the EKS training cluster (training.kind: eks)")


def network_fits_the_environment(config: PlatformConfig) -> None:
    """A production network spans three zones and has private subnets only."""
    network = config.network
    if not config.production or network is None:
        return
    if network.managed is not None:
        if network.managed.az_count < PRODUCTION_ZONES:
            raise AtKey("network.managed.az_count", f"production networks span at least {PRODUCTION_ZONES} "
                        f"availability zones, got {network.managed.az_count}")
        if network.managed.public_subnets:
            raise AtKey("network.managed.public_subnets", "production networks have private subnets only; "
                        "workloads reach AWS through the VPC endpoints (set it to false)")
    elif network.zone_count < PRODUCTION_ZONES:
        raise AtKey("network.private_subnet_ids", f"production networks span at least {PRODUCTION_ZONES} "
                    f"availability zones: give {PRODUCTION_ZONES} private subnets in different zones, got "
                    f"{network.zone_count}")


def iam_fits_the_stack(config: PlatformConfig) -> None:
    """The deploy role outside the platform's roles, persona principals in known accounts, IAM's size quotas
    (`rules_iam.py`)."""
    rules_iam.check(config)


def _check_production_model(model: ModelConfig, at: str) -> None:
    """Production endpoints run on two instances or more, scale, stay up off hours and capture data."""
    if model.serverless:
        raise AtKey(f"{at}.serverless", "production endpoints run on at least 2 instances; use variants")
    for v_index, variant in enumerate(model.variants):
        if variant.initial_instance_count < 2:
            raise AtKey(f"{at}.variants[{v_index}].initial_instance_count",
                        f"production endpoints need at least 2 instances per variant, got "
                        f"{variant.initial_instance_count}")
    if model.autoscaling is None:
        raise AtKey(f"{at}.autoscaling", "production endpoints need autoscaling (min_instances >= 2)")
    if model.serving == "async":
        # a queue waits for capacity: asynchronous endpoints may scale to zero, and scale out to two or more
        if model.autoscaling.max_instances < 2:
            raise AtKey(f"{at}.autoscaling.max_instances", "production asynchronous endpoints scale out to at least "
                        f"2 instances, got {model.autoscaling.max_instances}")
    elif model.autoscaling.min_instances < 2:
        raise AtKey(f"{at}.autoscaling.min_instances",
                    f"production endpoints keep at least 2 instances, got {model.autoscaling.min_instances}")
    if model.autoscaling.off_hours is not None:
        raise AtKey(f"{at}.autoscaling.off_hours", "production endpoints are not scaled down off hours")
    if model.data_capture.enabled is False:
        raise AtKey(f"{at}.data_capture.enabled", "production endpoints capture data for monitoring")
    if model.data_capture.sampling_percentage == 0:
        raise AtKey(f"{at}.data_capture.sampling_percentage", "production endpoints capture data for monitoring: "
                    "sample at least 1 percent of requests, got 0")
    if model.model_card is None:
        raise AtKey(f"{at}.model_card", "production models need a model card (intended_uses, risk_rating, owner)")
    if model.model_card.risk_rating not in RATED:
        raise AtKey(f"{at}.model_card.risk_rating", f"production models need a risk rating: High, Medium or Low, got "
                    f"{model.model_card.risk_rating or 'none'}")
