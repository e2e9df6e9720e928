"""What a `Network` takes: its settings (a stack file's `network` section) and its context.

Either `managed` (a VPC emlops builds) or a VPC you bring (`vpc_id`, `private_subnet_ids`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.settings import (SECURITY_GROUP_ID, AtKey, Governance, Settings, check_log_retention,
                                        error_message)

MIN_AZS, MAX_AZS = 2, 6
DEFAULT_CIDR = "10.0.0.0/16"
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$")
KMS_KEY_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$")


def _network(value: str, label: str) -> ipaddress.IPv4Network:
    label = f"{label} " if label else ""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        network = None
    if not isinstance(network, ipaddress.IPv4Network) or "/" not in value:
        raise ValueError(f"{label}{value!r} must be an IPv4 CIDR block like '10.0.0.0/16'")
    if str(network) != value:
        raise ValueError(f"{label}{value!r} has host bits set; use the network address {str(network)!r}")
    return network


def check_cidr_block(value: str, label: str = "cidr_block") -> ipaddress.IPv4Network:
    """A managed VPC's CIDR: a private (RFC 1918) IPv4 block of /16 to /24 (`label` prefixes the messages)."""
    network = _network(value, label)
    label = f"{label} " if label else ""
    if not any(network.subnet_of(private) for private in _RFC1918):
        raise ValueError(f"{label}{value!r} is not private; use a block inside 10.0.0.0/8, 172.16.0.0/12 or "
                         "192.168.0.0/16 (RFC 1918)")
    if not 16 <= network.prefixlen <= 24:
        raise ValueError(f"{label}{value!r} must be /16 to /24")
    return network


def check_public_room(cidr_block: str, public_subnets: bool) -> None:
    """Public subnets are 1/32 of the VPC each, and AWS subnets are /28 or larger."""
    prefix = check_cidr_block(cidr_block).prefixlen
    if public_subnets and prefix + 5 > 28:
        raise ValueError(f"public subnets need a cidr_block of /23 or larger (got /{prefix}): each is 1/32 of the "
                         "VPC and AWS subnets are at least /28")


def subnet_cidrs(cidr_block: str, az_count: int, public: bool) -> tuple[list[str], list[str]]:
    """(private, public) subnet CIDRs, one per zone; public is empty unless asked (see the module doc)."""
    vpc = check_cidr_block(cidr_block)
    private = list(vpc.subnets(new_prefix=vpc.prefixlen + 3))[:az_count]
    public_range = list(vpc.subnets(new_prefix=vpc.prefixlen + 2))[3]
    publics = list(public_range.subnets(new_prefix=vpc.prefixlen + 5))[:az_count] if public else []
    return [str(n) for n in private], [str(n) for n in publics]


class ManagedNetworkSettings(Settings):
    """A VPC emlops builds: private subnets in each zone, flow logs, VPC endpoints; public subnets only if asked."""

    cidr_block: str = Field(DEFAULT_CIDR, description="VPC CIDR, a private (RFC 1918) block of /16 to /24. "
                            f"Default: {DEFAULT_CIDR}.")
    az_count: int = Field(2, ge=MIN_AZS, le=MAX_AZS, description=f"Availability zones to span ({MIN_AZS}-{MAX_AZS}; "
                          "production needs 3). Default: 2.")
    public_subnets: bool = Field(False, description="Public subnets, an internet gateway and one NAT gateway per "
                                 "zone, for workloads that must reach the internet. Default: false.")
    flow_log_retention_days: int = Field(365, description="Days VPC flow logs are kept (a CloudWatch Logs "
                                         "retention). Default: 365.")
    availability_zones: list[str] = Field(default_factory=list, description="Zones to choose from (the first "
                                          "`az_count`, sorted). Default: the region's available zones.")

    @field_validator("availability_zones")
    @classmethod
    def _zones(cls, zones: list[str]) -> list[str]:
        for zone in zones:
            if not _ZONE.match(zone):
                raise ValueError(f"{zone!r} is not a zone name like 'eu-west-1a'")
        if len(set(zones)) != len(zones):
            raise ValueError(f"must be unique; got {', '.join(zones)}")
        return zones

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
    def _room_for_public_subnets(self) -> "ManagedNetworkSettings":
        check_public_room(self.cidr_block, self.public_subnets)
        if self.availability_zones and len(self.availability_zones) < self.az_count:
            raise ValueError(f"availability_zones has {len(self.availability_zones)} zones; az_count "
                             f"({self.az_count}) needs at least {self.az_count}")
        return self



class NetworkSettings(Settings):
    """The VPC the platform's workloads run in: one emlops builds (`managed`) or one you bring (`vpc_id` and
    `private_subnet_ids`); exactly one of the two."""

    managed: Optional[ManagedNetworkSettings] = Field(
        None, description="A VPC emlops builds: private subnets per zone, flow logs, VPC endpoints. "
        "Default: none (give vpc_id and private_subnet_ids instead).")
    vpc_id: Optional[str] = Field(None, pattern=r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$",
                                  description="(bring your own) VPC id. Default: none (use managed).",
                                  json_schema_extra=error_message("must be a VPC id like 'vpc-0123456789abcdef0'"))
    private_subnet_ids: Optional[list[str]] = Field(
        None, min_length=2, description="(bring your own) Private subnets in at least two AZs. Default: none.")
    security_group_ids: list[str] = Field(
        default_factory=list, max_length=5, description="(bring your own) Security groups workloads join besides "
        "their own (e.g. to reach your endpoints). Default: none.")
    vpc_cidr: Optional[str] = Field(None, description="(bring your own) The VPC's CIDR, if rules need it. "
                                    "Default: unknown.")

    @field_validator("security_group_ids")
    @classmethod
    def _groups(cls, values: list[str]) -> list[str]:
        for value in values:
            if not SECURITY_GROUP_ID.match(value):
                raise ValueError(f"{value!r} is not a security group id like 'sg-0123456789abcdef0'")
        if len(set(values)) != len(values):
            raise ValueError("security group ids must be unique")
        return values

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            network = _network(value, "")
            if not 16 <= network.prefixlen <= 28:
                raise ValueError(f"{value!r} must be /16 to /28 (the sizes AWS allows for a VPC)")
        return value

    @field_validator("private_subnet_ids")
    @classmethod
    def _subnets(cls, values: Optional[list[str]]) -> Optional[list[str]]:
        for value in values or ():
            if not re.fullmatch(r"subnet-([0-9a-f]{8}|[0-9a-f]{17})", value):
                raise ValueError(f"{value!r} is not a subnet id like 'subnet-0123456789abcdef0'")
        if values is not None and len(set(values)) != len(values):
            raise ValueError("subnet ids must be unique")
        return values

    @model_validator(mode="after")
    def _managed_or_your_own(self) -> "NetworkSettings":
        own = self.vpc_id is not None or self.private_subnet_ids is not None
        if self.managed is not None and (self.security_group_ids or self.vpc_cidr):
            raise ValueError("security_group_ids and vpc_cidr describe a network you bring; drop them with managed")
        if self.managed is not None and own:
            given = " and ".join(k for k in ("vpc_id", "private_subnet_ids") if getattr(self, k) is not None)
            raise AtKey("managed", f"give either managed (a VPC emlops builds) or vpc_id and private_subnet_ids "
                        f"(your own VPC), not both; drop {given} or managed")
        if self.managed is None and not own:
            raise ValueError("give managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your own VPC)")
        if own and self.vpc_id is None:
            raise AtKey("vpc_id", "field required with private_subnet_ids (the VPC of your subnets)")
        if own and self.private_subnet_ids is None:
            raise AtKey("private_subnet_ids", "field required with vpc_id (your VPC's private subnets, in at "
                        "least two availability zones)")
        return self

    @property
    def zone_count(self) -> int:
        """Availability zones the private subnets span (a managed VPC's az_count, else the subnets given)."""
        return self.managed.az_count if self.managed else len(self.private_subnet_ids or ())

    @property
    def is_managed(self) -> bool:
        return self.managed is not None


@dataclass(frozen=True)
class NetworkContext:
    """What the platform supplies to a `Network`."""

    log_kms_key_arn: Optional[pulumi.Input[str]] = None
    """(managed, required) Key of the flow-log group; its policy must let `logs.<region>.amazonaws.com` use it."""
    governance: Governance = field(default_factory=Governance)
    """Tags (each child also gets a `Name`), the flow-log role's permissions boundary, protection of the log group."""
    resource_account_ids: Sequence[str] = ()
    """(managed) Accounts besides the VPC's own whose resources workloads reach through the endpoints, e.g. a shared
    registry's bucket, key and image repositories. Default: none."""
