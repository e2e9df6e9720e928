"""Builds the stack's platform from its validated config: one explicit AWS provider, one MlPlatform."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.platform import MlPlatform, MlPlatformArgs
from infra.config import PlatformConfig


def build_platform(config: PlatformConfig) -> MlPlatform:
    """Create the stack's AWS provider (pinned to the stack's account and region) and platform."""
    args = MlPlatformArgs(
        environment=config.environment,
        tags=config.tags.as_dict(),
        production=config.production,
        permissions_boundary_arn=config.permission_boundary_arn,
        kms_deletion_window_days=config.kms.deletion_window_days,
        noncurrent_version_retention_days=config.storage.noncurrent_version_retention_days,
        access_log_retention_days=config.storage.access_log_retention_days,
    )
    # allowed_account_ids makes a mis-selected credential fail before it touches the wrong account.
    provider = aws.Provider(
        f"aws-{pulumi.get_stack()}",
        region=config.region,
        allowed_account_ids=[config.account_id],
    )
    return MlPlatform(config.environment, args, opts=pulumi.ResourceOptions(providers=[provider]))
