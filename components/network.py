"""Network: the private VPC the platform's SageMaker workloads run in, or a VPC you bring.

Managed mode builds a VPC across `az_count` availability zones with one private subnet (and its
own route table) per zone, VPC flow logs of all traffic to a KMS-encrypted log group, interface
endpoints for every AWS API the workloads call (private DNS on) and an S3 gateway endpoint, so
nothing needs a route to the internet. Public subnets, an internet gateway and one NAT gateway per
zone exist only when `public_subnets` asks for them.

Subnet layout (deterministic, so adding zones or public subnets never moves a private subnet):
private subnet i is the i-th 1/8 of the VPC CIDR (a /19 of a /16); the last quarter of the VPC is
kept for public subnets, public subnet i being the i-th 1/32 of the VPC (a /21 of a /16).

Bring-your-own mode (`NetworkArgs.existing(...)`) creates nothing and exposes the same outputs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.aws import LOG_RETENTION_DAYS
from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement
from emlops.components.settings import SECURITY_GROUP_ID, SUBNET_ID, VPC_ID
from emlops.components.options import child, merge_tags, type_token

__all__ = ["INTERFACE_ENDPOINTS", "LOG_RETENTION_DAYS", "Network", "NetworkArgs", "check_cidr_block",
           "check_public_room", "subnet_cidrs"]

# Interface endpoints: child-name key -> service (`com.amazonaws.<region>.<service>`).
INTERFACE_ENDPOINTS: dict[str, str] = {
    "sagemaker-api": "sagemaker.api",
    "sagemaker-runtime": "sagemaker.runtime",
    "sagemaker-featurestore-runtime": "sagemaker.featurestore-runtime",
    "sts": "sts",
    "logs": "logs",
    "monitoring": "monitoring",
    "ecr-api": "ecr.api",
    "ecr-dkr": "ecr.dkr",
    "kms": "kms",
    "events": "events",
}
MIN_AZS, MAX_AZS = 2, 6
DEFAULT_CIDR = "10.0.0.0/16"
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$")
_KEY_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,46}[A-Za-z0-9])?$")


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


def _check_ids(values: Sequence[str], label: str, pattern: re.Pattern, example: str) -> None:
    if isinstance(values, str):
        raise ValueError(f"{label} must be a list, e.g. [{values!r}]")
    for value in values:
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"{label} entry {value!r} must look like {example!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{label} must be unique; got {', '.join(values)}")


@dataclass
class NetworkArgs:
    """Arguments of a `Network`: a managed VPC (the default) or an existing one (`NetworkArgs.existing`)."""

    cidr_block: str = DEFAULT_CIDR
    """(managed) VPC CIDR, a private RFC 1918 block of /16 to /24. Default: 10.0.0.0/16."""
    az_count: int = 2
    """(managed) Availability zones to span, 2-6 (production: 3). Default: 2."""
    availability_zones: Sequence[str] = ()
    """(managed) Zones to choose from (the first `az_count`, sorted). Default: the region's available zones."""
    public_subnets: bool = False
    """(managed) Public subnets, an internet gateway and one NAT gateway per zone. Default: false (private only)."""
    log_kms_key_arn: Optional[pulumi.Input[str]] = None
    """(managed, required) Key of the flow-log group; its policy must let `logs.<region>.amazonaws.com` use it.
    MlPlatform creates one and fills it in; `Network` checks it is there before creating anything."""
    flow_log_retention_days: int = 365
    """(managed) Days flow logs are kept (a CloudWatch Logs retention). Default: 365."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of the flow-log delivery role. Default: none."""
    protect: bool = False
    """Protect the flow-log group and retain it on delete. Default: false."""
    vpc_id: Optional[str] = None
    """(bring your own) An existing VPC; with it nothing is created. Default: none (managed mode)."""
    private_subnet_ids: Sequence[str] = ()
    """(bring your own) Its private subnets, at least two, in different zones. Default: none."""
    security_group_ids: Sequence[str] = ()
    """(bring your own) Security groups workloads should join (e.g. to reach your endpoints). Default: none."""
    vpc_cidr: Optional[str] = None
    """(bring your own) The VPC's CIDR, if rules need it. Default: unknown."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child (each also gets a `Name`). Default: none."""

    @classmethod
    def existing(cls, vpc_id: str, private_subnet_ids: Sequence[str], security_group_ids: Sequence[str] = (),
                 vpc_cidr: Optional[str] = None, tags: Optional[Mapping[str, str]] = None) -> "NetworkArgs":
        """Bring your own VPC: nothing is created; the component only exposes these ids."""
        return cls(vpc_id=vpc_id, private_subnet_ids=private_subnet_ids, security_group_ids=security_group_ids,
                   vpc_cidr=vpc_cidr, tags=dict(tags or {}))

    @property
    def managed(self) -> bool:
        return self.vpc_id is None

    def __post_init__(self) -> None:
        if self.managed:
            self._check_managed()
        else:
            self._check_existing()

    def _check_managed(self) -> None:
        if self.private_subnet_ids or self.security_group_ids or self.vpc_cidr:
            raise ValueError("private_subnet_ids, security_group_ids and vpc_cidr describe an existing network; "
                             "give vpc_id too (NetworkArgs.existing)")
        check_cidr_block(self.cidr_block)
        check_public_room(self.cidr_block, self.public_subnets)
        if not MIN_AZS <= self.az_count <= MAX_AZS:
            raise ValueError(f"az_count ({self.az_count}) must be {MIN_AZS}-{MAX_AZS}")
        zones = self.availability_zones
        if isinstance(zones, str):
            raise ValueError(f"availability_zones must be a list, e.g. [{zones!r}]")
        for zone in zones:
            if not isinstance(zone, str) or not _ZONE.match(zone):
                raise ValueError(f"availability zone {zone!r} must be a zone name like 'eu-west-1a'")
        if len(set(zones)) != len(zones):
            raise ValueError(f"availability_zones must be unique; got {', '.join(zones)}")
        if zones and len(zones) < self.az_count:
            raise ValueError(f"availability_zones has {len(zones)} zones; az_count ({self.az_count}) needs at least "
                             f"{self.az_count}")
        if isinstance(self.log_kms_key_arn, str) and not _KEY_ARN.match(self.log_kms_key_arn):
            raise ValueError(f"log_kms_key_arn {self.log_kms_key_arn!r} must be a KMS key ARN "
                             "(arn:aws:kms:<region>:<account>:key/<id>)")
        if self.flow_log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"flow_log_retention_days ({self.flow_log_retention_days}) must be a CloudWatch Logs "
                             f"retention: {', '.join(map(str, LOG_RETENTION_DAYS))}")

    def check_log_key(self) -> None:
        """A managed network needs its flow-log key (given or filled in by the platform) to be created."""
        if self.managed and self.log_kms_key_arn is None:
            raise ValueError("log_kms_key_arn is required: flow logs go to a KMS-encrypted log group")

    def _check_existing(self) -> None:
        if not isinstance(self.vpc_id, str) or not VPC_ID.match(self.vpc_id):
            raise ValueError(f"vpc_id {self.vpc_id!r} must be a VPC id like 'vpc-0123456789abcdef0'")
        _check_ids(self.private_subnet_ids, "private_subnet_ids", SUBNET_ID, "subnet-0123456789abcdef0")
        if len(self.private_subnet_ids) < 2:
            raise ValueError(f"private_subnet_ids needs at least two subnets in different availability zones "
                             f"(got {len(self.private_subnet_ids)})")
        _check_ids(self.security_group_ids, "security_group_ids", SECURITY_GROUP_ID, "sg-0123456789abcdef0")
        if self.vpc_cidr is not None:
            network = _network(self.vpc_cidr, "vpc_cidr")
            if not 16 <= network.prefixlen <= 28:
                raise ValueError(f"vpc_cidr {self.vpc_cidr!r} must be /16 to /28 (the sizes AWS allows for a VPC)")
        given = {"cidr_block": self.cidr_block != DEFAULT_CIDR, "az_count": self.az_count != 2,
                 "availability_zones": bool(self.availability_zones), "public_subnets": self.public_subnets,
                 "log_kms_key_arn": self.log_kms_key_arn is not None,
                 "flow_log_retention_days": self.flow_log_retention_days != 365}
        managed_only = [label for label, is_given in given.items() if is_given]
        if managed_only:
            raise ValueError(f"an existing network (vpc_id) creates nothing; drop {', '.join(managed_only)}")


class Network(pulumi.ComponentResource):
    """A private multi-AZ VPC with flow logs and VPC endpoints, or an existing VPC (see the module doc).

    The outputs have the same meaning in both modes: plain strings for an existing VPC, Outputs of
    the created resources for a managed one.
    """

    managed: bool
    vpc_id: pulumi.Input[str]
    vpc_cidr: Optional[pulumi.Input[str]]
    private_subnet_ids: list[pulumi.Input[str]]
    """One per zone, in zone order (a Python list of known length, so callers can check and index it)."""
    security_group_ids: list[pulumi.Input[str]]
    """Extra groups compute should join: the given ones for an existing VPC, none for a managed one."""
    endpoint_security_group_id: Optional[pulumi.Output[str]]
    """The interface endpoints' group (managed); None for an existing VPC."""
    availability_zones: list[str]
    """The zones of `private_subnet_ids` (managed); empty (unknown) for an existing VPC."""
    public_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    flow_log_group_arn: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        if not _NAME.match(name):
            raise ValueError(f"network name {name!r} must be 1-48 letters, digits and '-', starting and ending with "
                             "a letter or digit")
        args.check_log_key()
        # Every child's arguments are built (and so checked) before anything is registered.
        role_args = ServiceRoleArgs(
            services=["vpc-flow-logs.amazonaws.com"],
            description=f"Delivers the VPC flow logs of {name} to their log group",
            permissions_boundary_arn=args.permissions_boundary_arn,
            tags=merge_tags(args.tags, {"Name": f"{name}-flow-logs-delivery"}),
        ) if args.managed else None
        super().__init__(type_token("Network"), name, None, opts)
        self.managed = args.managed
        self.public_subnet_ids, self.private_route_table_ids, self.flow_log_group_arn = [], [], None
        self.endpoint_security_group_id = None
        if args.managed:
            self._build(name, args, role_args)
        else:
            self.vpc_id = args.vpc_id
            self.vpc_cidr = args.vpc_cidr
            self.private_subnet_ids = list(args.private_subnet_ids)
            self.security_group_ids = list(args.security_group_ids)
            self.availability_zones = []
        self.register_outputs({
            "vpcId": self.vpc_id,
            "vpcCidr": self.vpc_cidr,
            "privateSubnetIds": self.private_subnet_ids,
            "securityGroupIds": self.security_group_ids,
            "endpointSecurityGroupId": self.endpoint_security_group_id,
            "availabilityZones": self.availability_zones,
        })

    def _build(self, name: str, args: NetworkArgs, role_args: ServiceRoleArgs) -> None:
        def tags(child_name: str) -> dict[str, str]:
            return merge_tags(args.tags, {"Name": child_name})

        private_cidrs, public_cidrs = subnet_cidrs(args.cidr_block, args.az_count, args.public_subnets)
        zones = self._zones(args)
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr_block, enable_dns_support=True,
                          enable_dns_hostnames=True, tags=tags(name), opts=child(self))
        # Managing the default group removes all its rules: nothing can use it to talk to anything.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags=tags(f"{name}-default-sg"),
                                     opts=child(self))
        private_subnets, route_tables = [], []
        for i, (cidr, zone) in enumerate(zip(private_cidrs, zones, strict=True), start=1):
            subnet_name = f"{name}-private-{i}"
            subnet = aws.ec2.Subnet(subnet_name, vpc_id=vpc.id, cidr_block=cidr, availability_zone=zone,
                                    map_public_ip_on_launch=False, tags=tags(subnet_name), opts=child(self))
            table = aws.ec2.RouteTable(f"{subnet_name}-rt", vpc_id=vpc.id, tags=tags(f"{subnet_name}-rt"),
                                       opts=child(self))
            aws.ec2.RouteTableAssociation(f"{subnet_name}-rta", subnet_id=subnet.id, route_table_id=table.id,
                                          opts=child(self))
            private_subnets.append(subnet)
            route_tables.append(table)
        if args.public_subnets:
            self._public(name, vpc, public_cidrs, zones, route_tables, tags)

        self._flow_logs(name, args, role_args, vpc, tags)
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            vpc_id=vpc.id,
            description=f"Interface VPC endpoints of {name}: HTTPS from the VPC only",
            ingress=[{"description": "HTTPS from the VPC to the AWS service endpoints", "protocol": "tcp",
                      "from_port": 443, "to_port": 443, "cidr_blocks": [args.cidr_block]}],
            egress=[],
            revoke_rules_on_delete=True,
            tags=tags(f"{name}-endpoints-sg"),
            opts=child(self),
        )
        region = aws_context(self).region
        subnet_ids = [s.id for s in private_subnets]
        for key, service in INTERFACE_ENDPOINTS.items():
            aws.ec2.VpcEndpoint(
                f"{name}-endpoint-{key}", vpc_id=vpc.id, vpc_endpoint_type="Interface",
                service_name=pulumi.Output.concat("com.amazonaws.", region, f".{service}"),
                private_dns_enabled=True, subnet_ids=subnet_ids, security_group_ids=[endpoint_sg.id],
                tags=tags(f"{name}-endpoint-{key}"), opts=child(self))
        aws.ec2.VpcEndpoint(
            f"{name}-endpoint-s3", vpc_id=vpc.id, vpc_endpoint_type="Gateway",
            service_name=pulumi.Output.concat("com.amazonaws.", region, ".s3"),
            route_table_ids=[t.id for t in route_tables], tags=tags(f"{name}-endpoint-s3"), opts=child(self))

        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.private_subnet_ids = subnet_ids
        self.security_group_ids = []
        self.endpoint_security_group_id = endpoint_sg.id
        self.availability_zones = zones
        self.private_route_table_ids = [t.id for t in route_tables]

    def _zones(self, args: NetworkArgs) -> list[str]:
        if args.availability_zones:
            return sorted(args.availability_zones)[:args.az_count]
        # Asked (and checked) before any child exists; only the region's own zones, since Local Zones and
        # Wavelength Zones need opting in.
        names = sorted(aws.get_availability_zones(
            state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOptions(parent=self)).names)
        if len(names) < args.az_count:
            raise ValueError(f"az_count ({args.az_count}) is more than the {len(names)} available zones "
                             f"({', '.join(names)}); lower az_count")
        return names[:args.az_count]

    def _public(self, name: str, vpc: aws.ec2.Vpc, cidrs: list[str], zones: list[str],
                private_tables: list[aws.ec2.RouteTable], tags) -> None:
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags(f"{name}-igw"), opts=child(self))
        table = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id, tags=tags(f"{name}-public-rt"),
                                   opts=child(self))
        aws.ec2.Route(f"{name}-public-internet", route_table_id=table.id, destination_cidr_block="0.0.0.0/0",
                      gateway_id=gateway.id, opts=child(self))
        for i, (cidr, zone, private_table) in enumerate(zip(cidrs, zones, private_tables, strict=True), start=1):
            subnet_name = f"{name}-public-{i}"
            # No public IPs on launch: only the NAT gateways' Elastic IPs face the internet.
            subnet = aws.ec2.Subnet(subnet_name, vpc_id=vpc.id, cidr_block=cidr, availability_zone=zone,
                                    map_public_ip_on_launch=False, tags=tags(subnet_name), opts=child(self))
            aws.ec2.RouteTableAssociation(f"{subnet_name}-rta", subnet_id=subnet.id, route_table_id=table.id,
                                          opts=child(self))
            address = aws.ec2.Eip(f"{name}-nat-{i}-eip", domain="vpc", tags=tags(f"{name}-nat-{i}-eip"),
                                  opts=child(self, depends_on=[gateway]))
            # (a VPC Elastic IP's id is its allocation id)
            nat = aws.ec2.NatGateway(f"{name}-nat-{i}", allocation_id=address.id, subnet_id=subnet.id,
                                     connectivity_type="public", tags=tags(f"{name}-nat-{i}"),
                                     opts=child(self, depends_on=[gateway]))
            # Each zone's private subnet leaves through its own zone's NAT (no cross-zone dependency).
            aws.ec2.Route(f"{name}-private-{i}-internet", route_table_id=private_table.id,
                          destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id, opts=child(self))
            self.public_subnet_ids.append(subnet.id)

    def _flow_logs(self, name: str, args: NetworkArgs, role_args: ServiceRoleArgs, vpc: aws.ec2.Vpc, tags) -> None:
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", name=f"/emlops/vpc-flow-logs/{name}", kms_key_id=args.log_kms_key_arn,
            retention_in_days=args.flow_log_retention_days, tags=tags(f"{name}-flow-logs"),
            opts=child(self, protect=args.protect))
        role = ServiceRole(f"{name}-flow-logs-delivery", role_args, opts=child(self))
        # The group exists (created above): delivery only needs its streams, in this group only.
        policy = role.add_policy("write-log-group", [Statement(
            actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=[group.arn, pulumi.Output.concat(group.arn, ":log-stream:*")])])
        aws.ec2.FlowLog(
            f"{name}-flow-log", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
            log_destination=group.arn, iam_role_arn=role.arn, tags=tags(f"{name}-flow-log"),
            opts=child(self, depends_on=[policy]))
        self.flow_log_group_arn = group.arn
