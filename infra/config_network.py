"""Stack config section: a managed network (`network.managed`), the VPC emlops builds for the stack.

`NetworkConfig` (infra/config_models.py) holds either this section or a VPC you bring (`vpc_id`,
`private_subnet_ids`); PlatformConfig adds the production rules (3 zones, private subnets only).
`managed_network_args` gives the `NetworkArgs` whose key, boundary, protection and tags MlPlatform
fills in (it creates the flow-log key, which CloudWatch Logs of the stack's region may use).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.settings import Settings, check_log_retention

from emlops.components.network import (
    DEFAULT_CIDR, MAX_AZS, MIN_AZS, NetworkArgs, check_cidr_block, check_public_room,
)


class ManagedNetworkConfig(Settings):
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
        return check_log_retention(value)

    @model_validator(mode="after")
    def _room_for_public_subnets(self) -> "ManagedNetworkConfig":
        check_public_room(self.cidr_block, self.public_subnets)
        return self


def managed_network_args(config: ManagedNetworkConfig, *, log_kms_key_arn: Optional[pulumi.Input[str]] = None,
                         permissions_boundary_arn: Optional[str] = None, protect: bool = False,
                         tags: Optional[Mapping[str, str]] = None) -> NetworkArgs:
    """The `NetworkArgs` of a validated `network.managed` section; without `log_kms_key_arn` (MlPlatform
    creates the key and fills it in) the arguments are checked when the key is filled in."""
    return NetworkArgs(cidr_block=config.cidr_block, az_count=config.az_count, public_subnets=config.public_subnets,
                       flow_log_retention_days=config.flow_log_retention_days, log_kms_key_arn=log_kms_key_arn,
                       permissions_boundary_arn=permissions_boundary_arn, protect=protect, tags=dict(tags or {}))
