"""The platform's governance stage: a model card per served model that declares one (`models[].model_card`), linked to
the package group its versions are approved in (the shared registry's, when the stack deploys from one); and the
audit trail (`audit`): a trail of the stack's own over the platform's buckets, or the organisation's, looked up."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Optional

import pulumi

from emlops.components.audit import (AuditSettings, AuditTrail, AuditTrailContext, check_organization_trail)
from emlops.components.model_card import ModelCard, ModelCardContext
from emlops.components.options import child
from emlops.components.settings import Governance
from emlops.program.config import StackConfig
from emlops.program.names import endpoint_component
from emlops.program.serving import ServedModel, SharedRegistry

if TYPE_CHECKING:  # the settings that hold the sections; the stages run while the platform is built
    from emlops.program.platform import MlPlatform, PlatformConfig


def package_group(model: ServedModel, shared: Optional[SharedRegistry]) -> str:
    """The group a model's versions are approved in: its source's group, else its own (named after it); the shared
    registry's group ARN when a shared registry holds the groups."""
    group = model.settings.source.model_package_group or model.name
    return shared.ref.group_arn(group) if shared is not None else group


def model_cards(parent: pulumi.Resource, stack: StackConfig, models: Sequence[ServedModel],
                shared: Optional[SharedRegistry],
                governance: Governance) -> Generator[None, None, dict[str, ModelCard]]:
    """A ModelCard per served model with a `model_card` section, one at a time (the platform lets each register). Its
    content is encrypted by SageMaker's own key, not the data key: the business viewers who read cards may not use
    the data key (a card describes the model, it holds none of the data)."""
    environment, production = stack.environment, stack.production
    cards = {}
    for model in [m for m in models if m.settings.model_card is not None]:
        name = endpoint_component(environment, model.name)
        cards[model.name] = ModelCard(f"{name}-model-card", model.settings.model_card, ModelCardContext(
            card_name=name, model_name=model.name, endpoint_name=name, package_group=package_group(model, shared),
            production=production, governance=governance), opts=child(parent))
        yield
    return cards


def uses_cloud_control(config: PlatformConfig) -> bool:
    """Whether the stack registers pulumi-aws-native resources or calls its data sources (and needs its provider):
    model-quality, bias or explainability monitoring, model cards, or the organisation's trail."""
    monitors = [m.monitoring for m in config.models]
    return (any(m.model_quality or m.bias or m.explainability for m in monitors)
            or any(m.model_card for m in config.models)
            or bool(config.audit and config.audit.organization_trail))


def trail_name(environment: str) -> str:
    """The name of an environment's own trail: `emlops-<environment>`, unique in the account."""
    return f"emlops-{environment}"


AUDIT_DESCRIPTION = ("The environment's audit trail (CloudTrail): a trail of its own, or the organisation's. Required "
                     "in production stacks. Default: none.")


def audit(platform: MlPlatform, stack: PlatformConfig, governance: Governance) -> Optional[pulumi.Output[str]]:
    """The ARN of the trail that records the environment's API activity: the stack's own `AuditTrail` over the S3 data
    events of the platform's data buckets (datasets, artifacts, capture, inference: those it has), or the
    organisation's, looked up when the stack is deployed (and the deploy stops unless it logs across regions with
    log-file validation). None without `audit`."""
    settings, parent = stack.audit, platform
    buckets = [platform.datasets, platform.artifacts, platform.capture, platform.inference]
    if settings is None:
        return None
    if settings.organization_trail is not None:
        # imported here: only stacks that use Cloud Control pay for the aws-native package
        import pulumi_aws_native as aws_native

        arn = settings.organization_trail.trail_arn
        found = aws_native.cloudtrail.get_trail_output(trail_name=arn, opts=pulumi.InvokeOptions(parent=parent))
        return found.apply(lambda trail: check_organization_trail({
            "s3BucketName": trail.s3_bucket_name, "isLogging": trail.is_logging,
            "isMultiRegionTrail": trail.is_multi_region_trail,
            "isOrganizationTrail": trail.is_organization_trail,
            "enableLogFileValidation": trail.enable_log_file_validation}, arn))
    name = trail_name(stack.environment)
    trail = AuditTrail(name, settings.trail, AuditTrailContext(
        trail_name=name, account_id=stack.account_id, region=stack.region, partition=stack.partition.name,
        data_bucket_arns=[b.arn for b in buckets if b is not None], access_log_bucket=platform.access_logs.bucket_name,
        kms=stack.kms, governance=governance), opts=child(parent))
    return trail.trail_arn
