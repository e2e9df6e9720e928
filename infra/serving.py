"""What the platform serves: each `models[]` entry with its source and image resolved, and the model each
`batch_transforms[]` entry runs.

A source is resolved when the program runs (preview or deploy), never at import, and before any resource of
the platform exists: a source or image that cannot be resolved stops the program with one line naming the
stack file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Optional

import pulumi

from emlops.components.alerts import notification_topic
from emlops.components.endpoint_args import ModelArtifact
from emlops.components.images import framework_image_uri
from emlops.components.monitoring_args import DriftBaseline
from emlops.components.outputs import concat
from emlops.components.settings import Governance
from emlops.program import sources
from emlops.program.config import FULL_KEY, ConfigError, StackConfig
from emlops.program.config_models import BatchTransformConfig, ImageConfig, ModelConfig, ModelSourceConfig
from emlops.program.names import endpoint_component


@dataclass(frozen=True)
class SharedRegistryRef:
    """The shared stack as this environment sees it."""

    stack: str
    """Its stack name, e.g. `shared`."""
    account_id: str
    region: str
    partition: str
    groups: tuple[str, ...]
    """The model package groups it holds."""
    repositories: tuple[str, ...]
    """The ECR repositories it holds (images of registered versions)."""
    consumer: bool
    """This environment's account may deploy its approved versions."""
    publisher: bool
    """This environment's account may register new versions into its groups."""

    def group_arn(self, group: str) -> str:
        # SageMaker lower-cases names in its ARNs
        return (f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:"
                f"model-package-group/{group.lower()}")


@dataclass(frozen=True)
class SharedOutputs:
    """What the environment reads from the deployed shared stack (through its stack reference)."""

    artifacts_bucket: pulumi.Output[str]
    """The shared registry's artifacts bucket: approved versions are read, new versions written, under `models/`."""
    data_key_arn: pulumi.Output[str]
    """The key of that bucket."""


@dataclass(frozen=True)
class SharedRegistry:
    """The shared-services registry an environment deploys from and registers into."""

    ref: SharedRegistryRef
    """What its stack file says (account, region, groups, whether this account consumes or publishes)."""
    outputs: SharedOutputs
    """What its deployment holds."""


@dataclass(frozen=True)
class RegistryTarget:
    """Where a model's retraining registers new versions when that is a shared registry's group."""

    group_arn: str
    """The shared registry's package group."""
    model_output_s3_uri: pulumi.Input[str]
    """`models/<model>/` of the shared registry's bucket: the train step writes the model artifact there."""
    model_kms_key_arn: pulumi.Input[str]
    """The key of that bucket."""


@dataclass(frozen=True)
class ServedModel:
    """A `models[]` entry as the platform serves it."""

    settings: ModelConfig
    """The entry (its endpoint's settings, monitoring and retraining)."""
    artifact: ModelArtifact
    """The resolved model."""
    image_uri: Optional[str]
    """Its inference image (none for a model package, which names its own)."""
    captures_data: bool
    """The endpoint captures requests and responses (on by default except in `dev`)."""
    monitored: bool
    """A monitor compares the captured data with a baseline."""
    package_baseline: Optional[DriftBaseline] = None
    """The served package's drift-check baselines, when the monitoring settings name no baseline."""
    registry_target: Optional[RegistryTarget] = None
    """The shared registry's group its retraining registers into. Default: the platform's own registry."""
    secret_environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """`secret_environment`'s values, read as Pulumi secrets from the config keys it names. Default: none."""
    challenger: Optional[ModelArtifact] = None
    """What the shadow variant serves (`shadow.challenger`, resolved). Default: no shadow."""

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(frozen=True)
class ScoringModel:
    """A `batch_transforms[]` entry with the model it runs resolved."""

    settings: BatchTransformConfig
    """The entry (the batch transform's settings, its name and source)."""
    artifact: ModelArtifact
    """The resolved model."""
    image_uri: Optional[str]
    """Its inference image (none for a model package, which names its own)."""

    @property
    def name(self) -> str:
        return self.settings.name


def serve(config: StackConfig, resolver: sources.Resolver, index: int, model: ModelConfig, source: str,
          shared: Optional[SharedRegistry] = None) -> ServedModel:
    """Resolve `models[index]`'s source and image; ConfigError in one line at the entry's key if they do not."""
    at = f"{source}: {FULL_KEY}.models[{index}]"
    instance_type = model.variants[0].instance_type if model.variants else None
    resolved, artifact, image_uri = _resolve(config, resolver, model.name, model.source, model.image, instance_type,
                                             at, shared)
    captures = model.captures_data(config.environment)
    monitored = model.monitored(config.environment)
    return ServedModel(
        settings=model, artifact=artifact, image_uri=image_uri, captures_data=captures, monitored=monitored,
        challenger=_challenger(resolver, model, at, shared) if model.shadow is not None else None,
        package_baseline=_package_baseline(config, model, resolved, at) if monitored else None,
        registry_target=_registry_target(model, shared) if model.retraining.enabled else None)


def score(config: StackConfig, resolver: sources.Resolver, index: int, entry: BatchTransformConfig, source: str,
          shared: Optional[SharedRegistry] = None) -> ScoringModel:
    """Resolve `batch_transforms[index]`'s source and image, as a model's; ConfigError in one line at its key."""
    at = f"{source}: {FULL_KEY}.batch_transforms[{index}]"
    _, artifact, image_uri = _resolve(config, resolver, entry.name, entry.source, entry.image, entry.instance_type,
                                      at, shared)
    return ScoringModel(settings=entry, artifact=artifact, image_uri=image_uri)


def _resolve(config: StackConfig, resolver: sources.Resolver, name: str, src: ModelSourceConfig,
             image: Optional[ImageConfig], instance_type: Optional[str], at: str,
             shared: Optional[SharedRegistry]) -> tuple[sources.ResolvedModel, ModelArtifact, Optional[str]]:
    """A source (a shared registry's group when the stack uses one) resolved, as the artifact and image to run."""
    group = src.model_package_group
    from_shared = shared is not None and group is not None
    try:
        resolved = resolver.resolve(name, sources.ModelSource(
            mlflow=src.mlflow, model_package_group=shared.ref.group_arn(group) if from_shared else group,
            model_package_arn=src.model_package_arn, s3_uri=src.s3_uri,
        ))
    except sources.ModelSourceError as exc:
        key = next(k for k in ("mlflow", "model_package_group", "model_package_arn", "s3_uri") if getattr(src, k))
        raise ConfigError(f"{at}.source.{key}: {exc}") from None

    image_uri = None
    if image is not None:
        image_uri = image.uri or _framework_image(config, image, instance_type, at)
    package = resolved.model_package_arn if src.model_package_group or src.model_package_arn else None
    try:
        artifact = ModelArtifact(
            uri=resolved.artifact_uri, compressed=resolved.compressed, package_arn=package,
            image_uri=resolved.image_uri if package else None,
            # a shared registry's versions are encrypted with its key (decrypted through S3 only)
            kms_key_arn=shared.outputs.data_key_arn if from_shared else None,
            known=resolved.known)
    except ValueError as exc:
        raise ConfigError(f"{at}: {exc}") from None
    return resolved, artifact, image_uri


def _challenger(resolver: sources.Resolver, model: ModelConfig, at: str,
                shared: Optional[SharedRegistry]) -> ModelArtifact:
    """The shadow variant's model: an MLflow alias of the source's registered model (served with the model's
    image), or the newest package of the source's group waiting for approval (it names its own image)."""
    challenger = model.shadow.challenger
    key = "mlflow" if challenger.mlflow else "model_package_group"
    group = challenger.model_package_group
    if group is not None and shared is not None:
        group = shared.ref.group_arn(group)
    try:
        resolved = resolver.resolve(model.name, sources.ModelSource(mlflow=challenger.mlflow,
                                                                    pending_package_group=group))
        package = resolved.model_package_arn if group is not None else None
        return ModelArtifact(
            uri=resolved.artifact_uri, compressed=resolved.compressed, package_arn=package,
            image_uri=resolved.image_uri if package else None,
            kms_key_arn=shared.outputs.data_key_arn if group is not None and shared is not None else None,
            known=resolved.known)
    except (sources.ModelSourceError, ValueError) as exc:
        raise ConfigError(f"{at}.shadow.challenger.{key}: {exc}") from None


def _framework_image(config: StackConfig, image: ImageConfig, instance_type: Optional[str], at: str) -> str:
    try:
        return framework_image_uri(image.framework, image.framework_version, config.region, instance_type,
                                   image.python_version, image.base_framework_version)
    except ValueError as exc:
        raise ConfigError(f"{at}.image: {exc}") from None


def _package_baseline(config: StackConfig, model: ModelConfig, resolved: sources.ResolvedModel,
                      at: str) -> Optional[DriftBaseline]:
    """Without a configured baseline, a model served from a package is compared with the package's
    data-quality drift-check baselines (retraining attaches them when it registers a version)."""
    if model.monitoring.baseline is not None or resolved.model_package_arn is None:
        return None
    if resolved.drift_baselines is None:
        if config.production:
            raise ConfigError(f"{at}.monitoring.baseline: model {model.name!r}: {resolved.reference} has no "
                              "data-quality drift-check baselines; add statistics_s3_uri and constraints_s3_uri")
        return None
    return DriftBaseline(*resolved.drift_baselines, known=resolved.known)


def _registry_target(model: ModelConfig, shared: Optional[SharedRegistry]) -> Optional[RegistryTarget]:
    """With a shared registry, retraining registers new versions into its group and writes their model
    artifact to `models/<model>/` of its bucket with its key, where the consumer accounts read it; the
    data splits and evaluation reports stay in this environment's artifacts bucket."""
    if shared is None:
        return None
    return RegistryTarget(
        group_arn=shared.ref.group_arn(model.name),
        model_output_s3_uri=concat("s3://", shared.outputs.artifacts_bucket, f"/models/{model.name}/"),
        model_kms_key_arn=shared.outputs.data_key_arn)


@dataclass(frozen=True)
class PlatformContext:
    """What the program supplies to the platform besides its settings: the resolved models, and what lives
    outside the stack file (the shared registry, a secret)."""

    models: Sequence[ServedModel] = ()
    """`models[]`, resolved (serving.py), in the stack file's order."""
    batch_transforms: Sequence[ScoringModel] = ()
    """`batch_transforms[]`, their models resolved, in the stack file's order."""
    shared: Optional[SharedRegistry] = None
    """The shared-services registry the stack deploys from and registers into (`registry.shared_stack`)."""
    mlflow_backend_store_uri: Optional[pulumi.Input[str]] = None
    """Secret database URI of a self-hosted MLflow server (`registry.mlflow.kind: kubernetes`)."""


def success_topic(parent: pulumi.Resource, platform: str, model: ServedModel, governance: Governance,
                  kms_key_arn: pulumi.Input[str]) -> Optional[pulumi.Output[str]]:
    """The topic an asynchronous endpoint announces its responses on (`async_inference.notify_success`), encrypted
    with `kms_key_arn`; the callers subscribe to it, and it is kept like every stateful resource of the stack."""
    queue = model.settings.async_inference if model.settings.serving == "async" else None
    if queue is None or not queue.notify_success:
        return None
    name = endpoint_component(platform, model.name)
    return notification_topic(parent, f"{name}-async-success", replace(governance, permissions_boundary_arn=None),
                              purpose=f"the responses of the {name} endpoint", kms_key_arn=kms_key_arn)
