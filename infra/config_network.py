"""Stack config section proposal: a managed network (`network.managed`), beside the bring-your-own one.

The existing `NetworkConfig` (infra/config_models.py) describes a VPC you bring (`vpc_id`,
`private_subnet_ids`). This section describes the VPC emlops builds for the stack instead.

Integration (for `infra/config.py` and `infra/program.py`), e.g.:

    # stack file: either
    network: {managed: {az_count: 3}}
    # or
    network: {vpc_id: vpc-..., private_subnet_ids: [subnet-..., subnet-...]}

    # NetworkConfig gains `managed: Optional[ManagedNetworkConfig] = None`, with vpc_id and
    # private_subnet_ids optional and a validator: exactly one of `managed` or (`vpc_id` and
    # `private_subnet_ids`); PlatformConfig requires `az_count >= 3` in production.

    # program / platform
    Network(f"{environment}-network", managed_network_args(
        config.network.managed, log_kms_key_arn=<key whose policy lets logs.<region>.amazonaws.com use it>,
        permissions_boundary_arn=config.permission_boundary_arn, protect=config.production, tags=tags),
        opts=...)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from components.network import (
    DEFAULT_CIDR, LOG_RETENTION_DAYS, MAX_AZS, MIN_AZS, NetworkArgs, check_cidr_block, check_public_room,
)
from infra.config_models import _Section


class ManagedNetworkConfig(_Section):
    """A VPC emlops builds: private subnets in each zone, flow logs, VPC endpoints; public subnets only if asked."""

    cidr_block: str = Field(DEFAULT_CIDR, description="VPC CIDR, a private (RFC 1918) block of /16 to /24. "
                            f"Default: {DEFAULT_CIDR}.")
    az_count: int = Field(2, ge=MIN_AZS, le=MAX_AZS, description=f"Availability zones to span ({MIN_AZS}-{MAX_AZS}; "
                          "production needs 3). Default: 2.")
    public_subnets: bool = Field(False, description="Public subnets, an internet gateway and one NAT gateway per "
                                 "zone, for workloads that must reach the internet. Default: false.")
    flow_log_retention_days: int = Field(365, description="Days VPC flow logs are kept (a CloudWatch Logs "
                                         "retention). Default: 365.")

    @field_validator("cidr_block")
    @classmethod
    def _cidr(cls, value: str) -> str:
        check_cidr_block(value, label="")
        return value

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"{value} is not a CloudWatch Logs retention; allowed: {allowed}")
        return value

    @model_validator(mode="after")
    def _room_for_public_subnets(self) -> "ManagedNetworkConfig":
        check_public_room(self.cidr_block, self.public_subnets)
        return self


def managed_network_args(config: ManagedNetworkConfig, *, log_kms_key_arn: pulumi.Input[str],
                         permissions_boundary_arn: Optional[str] = None, protect: bool = False,
                         tags: Optional[Mapping[str, str]] = None) -> NetworkArgs:
    """The `NetworkArgs` of a validated `network.managed` section and the platform's logs key."""
    return NetworkArgs(cidr_block=config.cidr_block, az_count=config.az_count, public_subnets=config.public_subnets,
                       flow_log_retention_days=config.flow_log_retention_days, log_kms_key_arn=log_kms_key_arn,
                       permissions_boundary_arn=permissions_boundary_arn, protect=protect, tags=dict(tags or {}))
