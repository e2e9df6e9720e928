"""Builds the stack's platform: what the Pulumi runtime supplies (the stack, its secrets, the shared stack's
outputs, the model registries), the stack's providers, and the one MlPlatform.

Model sources and framework images are resolved here, when the program runs (preview or deploy), never at
import time and before any resource of the platform exists (serving.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pulumi
import pulumi_aws as aws
from pulumi.runtime.config import is_config_secret

from emlops.program import sources
from emlops.program.config import CONFIG_NAMESPACE, FULL_KEY, MLFLOW_BACKEND_KEY, ConfigError, stack_file
from emlops.program.config_models import ModelConfig
from emlops.program.governance import uses_cloud_control
from emlops.program.platform import MlPlatform, PlatformConfig, PlatformContext
from emlops.program.serving import SharedOutputs, SharedRegistry, SharedRegistryRef, score, serve
from emlops.program.shared_registry import load_shared_registry


async def build_platform(config: PlatformConfig) -> MlPlatform:
    """Create the stack's providers (pinned to the stack's account and region) and build the platform, stage by
    stage (`MlPlatform.build`)."""
    stack = pulumi.get_stack()
    source = stack_file(stack)
    ref = load_shared_registry(config, stack, source, Path(pulumi.get_root_directory()))
    resolver = _resolver(config)
    shared = SharedRegistry(ref, _shared_outputs(ref)) if ref is not None else None
    models = [replace(serve(config, resolver, index, model, source, shared),
                      secret_environment=_secret_environment(model, index, source))
              for index, model in enumerate(config.models)]
    batch_transforms = [score(config, resolver, index, entry, source, shared)
                        for index, entry in enumerate(config.batch_transforms)]
    backend_store_uri = _mlflow_backend_store_uri(source) if config.registry.mlflow.kind == "kubernetes" else None
    context = PlatformContext(models=models, batch_transforms=batch_transforms, shared=shared,
                              mlflow_backend_store_uri=backend_store_uri)
    try:
        return await MlPlatform.build(config.environment, config, context,
                                      opts=pulumi.ResourceOptions(providers=stack_providers(config)))
    except ValueError as exc:
        raise ConfigError(f"{source}: {FULL_KEY}: {exc}") from None


def stack_providers(config: PlatformConfig) -> list[pulumi.ProviderResource]:
    """The providers every resource of the stack uses: the stack's region, its account only
    (allowed_account_ids makes a mis-selected credential fail before it touches another account),
    the deploy role to assume there when one is configured, and the required tags as default tags.

    The AWS provider serves everything but what only pulumi-aws-native (Cloud Control) has: SageMaker's
    model-quality, bias and explainability job definitions, model cards, and the look-up of the organisation's
    trail; its provider, configured the same way, exists only in stacks that use them (governance.py)."""
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
    if uses_cloud_control(config):
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


def _resolver(config: PlatformConfig) -> sources.Resolver:
    try:
        return sources.current_resolver()
    except RuntimeError:  # not under `emlops preview`: the real `pulumi up` / `pulumi preview`
        return sources.LiveResolver(region=config.region, mlflow_tracking_uri=config.registry.mlflow_tracking_uri,
                                    role_arn=config.deploy_role_arn)


def _shared_outputs(shared: SharedRegistryRef) -> SharedOutputs:
    """Read the shared stack's outputs. The real CLI reads its last deployment; `emlops preview` previews it."""
    reference = pulumi.StackReference(f"{pulumi.get_organization()}/{pulumi.get_project()}/{shared.stack}")
    return SharedOutputs(artifacts_bucket=reference.require_output("artifactsBucket"),
                         data_key_arn=reference.require_output("dataKeyArn"))


def _mlflow_backend_store_uri(source: str) -> pulumi.Output[str]:
    full = f"{CONFIG_NAMESPACE}:{MLFLOW_BACKEND_KEY}"
    uri = pulumi.Config(CONFIG_NAMESPACE).get_secret(MLFLOW_BACKEND_KEY)
    if uri is None:
        raise ConfigError(
            f"{source}: {full}: field required when registry.mlflow.kind is kubernetes; set it with "
            f"`pulumi config set --secret {full} postgresql://...`")
    if not is_config_secret(full):
        raise ConfigError(f"{source}: {full}: is in plaintext, and a database URI holds its password; set it "
                          f"encrypted with `pulumi config set --secret {full} <uri>`")
    return uri


def _secret_environment(model: ModelConfig, index: int, source: str) -> dict[str, pulumi.Output[str]]:
    """The values of `secret_environment`, read as Pulumi secrets from the config keys it names; each must be set,
    and set as a secret (stack files keep it encrypted; `emlops preview` shows it as `[secret]`)."""
    values = {}
    for name, key in model.secret_environment.items():
        full = f"{CONFIG_NAMESPACE}:{key}"
        value = pulumi.Config(CONFIG_NAMESPACE).get_secret(key)
        if value is None:
            raise ConfigError(f"{source}: {FULL_KEY}.models[{index}].secret_environment.{name}: config key {full!r} "
                              f"is not set; set it with `pulumi config set --secret {full} <value>`")
        if not is_config_secret(full):
            raise ConfigError(f"{source}: {full}: is in plaintext, and it holds the secret {name} of "
                              f"model {model.name!r}; set it encrypted with `pulumi config set --secret {full} <value>`")
        values[name] = value
    return values
