"""Builds the stack's platform from its validated config: one explicit AWS provider, one MlPlatform.

Model sources and framework images are resolved here, when the program runs (preview or deploy),
never at import time. A source or image that cannot be resolved stops the program with one line
naming the stack file and the key, before any resource of the platform is created.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components import model_source
from emlops.components.endpoint_args import ModelEndpointArgs, Variant
from emlops.components.platform import MlPlatform, MlPlatformArgs, PlatformModel
from emlops.program.config import CONFIG_NAMESPACE, FULL_KEY, MLFLOW_BACKEND_KEY, ConfigError, PlatformConfig, stack_file
from emlops.program.config_models import ModelConfig
from emlops.program.shared_registry import SharedRegistryRef, load_shared_registry, registry_groups


def build_platform(config: PlatformConfig) -> MlPlatform:
    """Create the stack's AWS provider (pinned to the stack's account and region) and platform."""
    source = stack_file(pulumi.get_stack())
    shared = load_shared_registry(config, pulumi.get_stack(), source, Path(pulumi.get_root_directory()))
    resolver = _resolver(config)
    outputs = _shared_outputs(shared) if shared is not None else None
    models = [_platform_model(config, resolver, index, model, source, shared, outputs)
              for index, model in enumerate(config.models)]
    mlflow_on_cluster = config.registry.mlflow.kind == "kubernetes"
    backend_store_uri = _mlflow_backend_store_uri(source) if mlflow_on_cluster else None
    try:
        args = MlPlatformArgs(
            environment=config.environment,
            tags=config.tags.as_dict(),
            production=config.production,
            permissions_boundary_arn=config.permission_boundary_arn,
            kms_deletion_window_days=config.kms.deletion_window_days,
            noncurrent_version_retention_days=config.storage.noncurrent_version_retention_days,
            access_log_retention_days=config.storage.access_log_retention_days,
            feature_store=_feature_store(config),
            training=_training(config),
            registry=_registry(config),
            mlflow_on_training_cluster=mlflow_on_cluster,
            mlflow_backend_store_uri=backend_store_uri,
            models=models,
            network=_network(config),
            region=config.region,
            personas=_personas(config),
            # a registry-only stack (shared services) holds no datasets and runs no jobs
            datasets=bool(config.models or config.training or config.feature_groups),
            alert_subscriptions=config.alerts.subscriptions,
            shared_package_group_arns=[shared.group_arn(group) for group in _shared_groups(config)] if shared else [],
            shared_registry_publisher=bool(shared and shared.publisher),
        )
    except ValueError as exc:
        raise ConfigError(f"{source}: {FULL_KEY}: {exc}") from None
    return MlPlatform(config.environment, args, opts=pulumi.ResourceOptions(providers=stack_providers(config)))


def stack_providers(config: PlatformConfig) -> list[pulumi.ProviderResource]:
    """The providers every resource of the stack uses: the stack's region, its account only
    (allowed_account_ids makes a mis-selected credential fail before it touches another account),
    the deploy role to assume there when one is configured, and the required tags as default tags.

    The AWS provider serves everything but SageMaker's model-quality job definitions, which only
    pulumi-aws-native (Cloud Control) has; its provider, configured the same way, exists only in stacks
    that monitor model quality."""
    stack = pulumi.get_stack()
    assume_roles = None
    if config.deploy_role_arn:
        assume_roles = [aws.ProviderAssumeRoleArgs(role_arn=config.deploy_role_arn, session_name=f"emlops-{stack}")]
    providers: list[pulumi.ProviderResource] = [aws.Provider(
        f"aws-{stack}",
        region=config.region,
        allowed_account_ids=[config.account_id],
        assume_roles=assume_roles,
        default_tags=aws.ProviderDefaultTagsArgs(tags=config.tags.as_dict()),
    )]
    if any(model.monitoring.model_quality for model in config.models):
        import pulumi_aws_native as aws_native

        assume_role = None
        if config.deploy_role_arn:
            assume_role = aws_native.ProviderAssumeRoleArgs(role_arn=config.deploy_role_arn,
                                                            session_name=f"emlops-{stack}")
        providers.append(aws_native.Provider(
            f"aws-native-{stack}",
            region=config.region,
            allowed_account_ids=[config.account_id],
            assume_role=assume_role,
            default_tags=aws_native.ProviderDefaultTagsArgs(tags=config.tags.as_dict()),
        ))
    return providers


def _resolver(config: PlatformConfig) -> model_source.Resolver:
    try:
        return model_source.current_resolver()
    except RuntimeError:  # not under `emlops preview`: the real `pulumi up` / `pulumi preview`
        return model_source.LiveResolver(region=config.region,
                                         mlflow_tracking_uri=config.registry.mlflow_tracking_uri,
                                         role_arn=config.deploy_role_arn)


@dataclass(frozen=True)
class SharedOutputs:
    """What the environment reads from the deployed shared stack (through its stack reference)."""

    artifacts_bucket: pulumi.Output[str]
    """The shared registry's artifacts bucket: approved versions are read, new versions written, under `models/`."""
    data_key_arn: pulumi.Output[str]
    """The key of that bucket."""


def _shared_outputs(shared: SharedRegistryRef) -> SharedOutputs:
    """Read the shared stack's outputs. The real CLI reads its last deployment; `emlops preview` previews it."""
    reference = pulumi.StackReference(f"{pulumi.get_organization()}/{pulumi.get_project()}/{shared.stack}")
    return SharedOutputs(artifacts_bucket=reference.require_output("artifactsBucket"),
                         data_key_arn=reference.require_output("dataKeyArn"))


def _shared_groups(config: PlatformConfig) -> list[str]:
    """The groups this environment deploys from or registers into (the shared registry's, when it uses one)."""
    groups = [m.source.model_package_group for m in config.models if m.source.model_package_group]
    groups += [m.name for m in config.models if m.retraining.enabled]
    return list(dict.fromkeys(groups))


def _platform_model(config: PlatformConfig, resolver: model_source.Resolver, index: int, model: ModelConfig,
                    source: str, shared: Optional[SharedRegistryRef] = None,
                    outputs: Optional[SharedOutputs] = None) -> PlatformModel:
    at = f"{source}: {FULL_KEY}.models[{index}]"
    src = model.source
    group = src.model_package_group
    from_shared = shared is not None and group is not None
    try:
        resolved = resolver.resolve(model.name, model_source.ModelSource(
            mlflow=src.mlflow, model_package_group=shared.group_arn(group) if from_shared else group,
            model_package_arn=src.model_package_arn, s3_uri=src.s3_uri,
        ))
    except model_source.ModelSourceError as exc:
        key = next(k for k in ("mlflow", "model_package_group", "model_package_arn", "s3_uri") if getattr(src, k))
        raise ConfigError(f"{at}.source.{key}: {exc}") from None

    image_uri = None
    if model.image is not None:
        image_uri = model.image.uri or _framework_image(config, model, at)
    capture = model.captures_data(config.environment)
    scaling = model.autoscaling
    off_hours = scaling.off_hours if scaling else None
    package = None
    if src.model_package_group or src.model_package_arn:
        # offline, a group's latest approved package is not known: the plan says so
        package = resolved.model_package_arn or f"[unknown: {resolved.reference}]"
    try:
        endpoint = ModelEndpointArgs(
            model_package_arn=package,
            package_artifact_uri=resolved.artifact_uri if package else None,
            package_image_uri=resolved.image_uri if package else None,
            model_data_url=None if package or not resolved.compressed else resolved.artifact_uri,
            model_data_prefix=None if package or resolved.compressed else resolved.artifact_uri,
            image_uri=image_uri,
            # a shared registry's versions are encrypted with its key (decrypted through S3 only)
            artifact_kms_key_arn=outputs.data_key_arn if from_shared else None,
            environment=model.environment,
            variants=[Variant(v.name, v.instance_type, v.initial_instance_count, v.weight) for v in model.variants],
            serverless_memory_mb=model.serverless.memory_mb if model.serverless else None,
            serverless_max_concurrency=model.serverless.max_concurrency if model.serverless else 5,
            network_isolation=model.serverless is None if model.network_isolation is None else model.network_isolation,
            data_capture_sampling_percentage=model.data_capture.sampling_percentage,
            data_capture_csv_content_types=model.data_capture.csv_content_types,
            data_capture_json_content_types=model.data_capture.json_content_types,
            deployment_strategy=model.deployment.strategy,
            canary_percent=model.deployment.canary_percent,
            linear_step_percent=model.deployment.linear_step_percent,
            wait_seconds=model.deployment.wait_minutes * 60,
            termination_wait_seconds=model.deployment.termination_wait_minutes * 60,
            max_execution_timeout_seconds=model.deployment.max_execution_timeout_minutes * 60,
            latency_threshold_ms=model.alarms.model_latency_ms,
            error_5xx_threshold=model.alarms.invocation_5xx_errors,
            autoscaling_min=scaling.min_instances if scaling else None,
            autoscaling_max=scaling.max_instances if scaling else None,
            target_invocations_per_instance=scaling.target_invocations_per_instance if scaling else 100,
            scale_in_cooldown_seconds=scaling.scale_in_cooldown_seconds if scaling else 300,
            scale_out_cooldown_seconds=scaling.scale_out_cooldown_seconds if scaling else 60,
            off_hours_scale_down_cron=off_hours.scale_down_cron if off_hours else None,
            off_hours_scale_up_cron=off_hours.scale_up_cron if off_hours else None,
            off_hours_timezone=off_hours.timezone if off_hours else "UTC",
            off_hours_max_instances=off_hours.off_hours_max_instances if off_hours else 1,
        )
        monitor = _monitor(config, model, resolved, at) if model.monitoring.is_enabled(capture) else None
        retraining = _retraining(config, model, shared, outputs) if model.retraining.enabled else None
        return PlatformModel(name=model.name, endpoint=endpoint, capture_data=capture, monitor=monitor,
                             retraining=retraining)
    except ValueError as exc:
        raise ConfigError(f"{at}: {exc}") from None


def _framework_image(config: PlatformConfig, model: ModelConfig, at: str) -> str:
    from emlops.components.images import framework_image_uri

    image = model.image
    instance_type = model.variants[0].instance_type if model.variants else None
    try:
        return framework_image_uri(image.framework, image.framework_version, config.region, instance_type,
                                   image.python_version, image.base_framework_version)
    except ValueError as exc:
        raise ConfigError(f"{at}.image: {exc}") from None


def _feature_store(config: PlatformConfig):
    if not config.feature_groups:
        return None
    from emlops.program.config_features import feature_store_args

    # key, offline bucket, tags, boundary and protection are the platform's (MlPlatform fills them in)
    return feature_store_args(config.feature_groups, tags={}, protect=False, boundary=None)


def _training(config: PlatformConfig):
    if config.training is None:
        return None
    from emlops.program.config_training import training_cluster_args

    # the VPC and subnets are the platform's network's (MlPlatform fills them in)
    return training_cluster_args(config.training, vpc_id=None, subnet_ids=(), region=config.region)


def _network(config: PlatformConfig):
    """The stack's VPC: managed (the platform adds its flow-log key, boundary, protection and tags) or yours."""
    network = config.network
    if network is None:
        return None
    if network.managed is not None:
        from emlops.program.config_network import managed_network_args

        return managed_network_args(network.managed)
    from emlops.components.network import NetworkArgs

    return NetworkArgs.existing(network.vpc_id, network.private_subnet_ids)


def _personas(config: PlatformConfig):
    """The persona roles; the platform fills in what they act on."""
    if config.personas is None:
        return None
    from emlops.program.config_personas import personas_args

    return personas_args(config.personas, environment=config.environment, production=config.production)


def _registry(config: PlatformConfig):
    """A package group per served model, per group a model is sourced from and per `registry.package_groups`
    (none when the stack uses a shared registry, which holds them); MLflow as configured."""
    from emlops.components.registry import ModelRegistryArgs

    groups = [] if config.registry.shared_stack else registry_groups(config)
    deployed = _shared_groups(config)
    mlflow = config.registry.mlflow
    if not groups and not config.registry.image_repositories and mlflow.kind == "none":
        return None
    return ModelRegistryArgs(
        model_names=groups,
        # approvals are announced for the groups a deploy picks versions from: sourced, retrained, held for others
        announced_groups=[g for g in groups if g in deployed or g in config.registry.package_groups],
        consumer_account_ids=list(config.registry.consumer_account_ids),
        publisher_account_ids=list(config.registry.publisher_account_ids),
        image_repositories=list(config.registry.image_repositories),
        registry_account_id=config.account_id,
        # a self-hosted server is switched on by the platform once the EKS cluster exists
        mlflow_kind="none" if mlflow.kind == "kubernetes" else mlflow.kind,
        tracking_server_size=mlflow.size,
        weekly_maintenance_window_start=mlflow.maintenance_window,
        mlflow_version=mlflow.version,
        namespace=mlflow.namespace,
    )


def _mlflow_backend_store_uri(source: str) -> pulumi.Output[str]:
    uri = pulumi.Config(CONFIG_NAMESPACE).get_secret(MLFLOW_BACKEND_KEY)
    if uri is None:
        raise ConfigError(
            f"{source}: {CONFIG_NAMESPACE}:{MLFLOW_BACKEND_KEY}: field required when registry.mlflow.kind is "
            f"kubernetes; set it with `pulumi config set --secret {CONFIG_NAMESPACE}:{MLFLOW_BACKEND_KEY} "
            "postgresql://...`")
    return uri


def _monitor(config: PlatformConfig, model: ModelConfig, resolved: model_source.ResolvedModel, at: str):
    """The model's monitor; the platform fills in the capture URI, reports bucket, keys and topic.

    Without a configured baseline, a model served from a package is compared with the package's
    data-quality drift-check baselines (retraining attaches them when it registers a version)."""
    baselines = None
    if model.monitoring.baseline is None and resolved.model_package_arn is not None:
        baselines = resolved.drift_baselines
        if baselines is None and config.production:
            raise ConfigError(f"{at}.monitoring.baseline: model {model.name!r}: {resolved.reference} has no "
                              "data-quality drift-check baselines; add statistics_s3_uri and constraints_s3_uri")
    return _monitor_args(config, model, baselines)


def _monitor_args(config: PlatformConfig, model: ModelConfig, baselines):
    from emlops.program.config_monitoring import monitor_args

    return monitor_args(
        model.monitoring, config.alerts, endpoint_name=f"{config.environment}-{model.name}",
        capture_s3_uri=None, reports_bucket=None, vpc_id=None, subnet_ids=(), production=config.production, region=config.region,
        baseline_s3_uris=baselines)


def _retraining(config: PlatformConfig, model: ModelConfig, shared: Optional[SharedRegistryRef] = None,
                outputs: Optional[SharedOutputs] = None):
    """The model's retraining pipeline; the platform fills in buckets, network, monitor and topic.

    With a shared registry, new versions are registered into its group and their model artifact is
    written to `models/<model>/` of its bucket with its key, where the consumer accounts read it; the
    data splits and evaluation reports stay in this environment's artifacts bucket."""
    from emlops.program.config_retraining import retraining_args

    baseline = model.monitoring.baseline
    args = retraining_args(
        model.retraining, model_name=model.name, environment=config.environment,
        training_image_uri=model.retraining.training_image, input_s3_uri=None, output_s3_uri=None,
        baseline_statistics_s3_uri=baseline.statistics_s3_uri if baseline else None,
        baseline_constraints_s3_uri=baseline.constraints_s3_uri if baseline else None,
        production=config.production)
    if shared is None:
        return args
    return dataclasses.replace(
        args, package_group_arn=shared.group_arn(model.name),
        model_output_s3_uri=pulumi.Output.concat("s3://", outputs.artifacts_bucket, f"/models/{model.name}/"),
        model_kms_key_arn=outputs.data_key_arn)
