"""Network: the private VPC the platform's SageMaker workloads run in, or a VPC you bring.

Managed mode builds a VPC across `az_count` availability zones with one private subnet (and its
own route table) per zone, VPC flow logs of all traffic to a KMS-encrypted log group, interface
endpoints for every AWS API the workloads call (private DNS on) and an S3 gateway endpoint, so
nothing needs a route to the internet; each endpoint's policy admits this account's principals acting on this
account's resources only (plus AWS's own where a service needs them, and the accounts in
`resource_account_ids`), and workloads send HTTPS to the endpoints only (`endpoint_egress`). Public subnets, an internet gateway and one NAT gateway per
zone exist only when `public_subnets` asks for them.

Subnet layout (deterministic, so adding zones or public subnets never moves a private subnet):
private subnet i is the i-th 1/8 of the VPC CIDR (a /19 of a /16); the last quarter of the VPC is
kept for public subnets, public subnet i being the i-th 1/32 of the VPC (a /21 of a /16).

Bring-your-own mode (`vpc_id` and `private_subnet_ids`) creates nothing and exposes the same outputs.
Its settings (`NetworkSettings`) and context (`NetworkContext`) are in network_args.py.
"""

from __future__ import annotations

import re
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement
from emlops.components.network_args import (KMS_KEY_ARN, ManagedNetworkSettings, NetworkContext, NetworkSettings,
                                            subnet_cidrs)
from emlops.components.network_access import EndpointEgress, endpoint_policy
from emlops.components.options import child, type_token
from emlops.components.outputs import concat

__all__ = ["INTERFACE_ENDPOINTS", "Network", "NetworkContext", "NetworkSettings"]

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
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,46}[A-Za-z0-9])?$")


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
    endpoint_egress: Optional[EndpointEgress]
    """Where workloads send HTTPS (managed): the endpoints' group and the S3 gateway's prefix list; None for an
    existing VPC (its endpoints are not known here)."""
    availability_zones: list[str]
    """The zones of `private_subnet_ids` (managed); empty (unknown) for an existing VPC."""
    public_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    flow_log_group_arn: Optional[pulumi.Output[str]]

    def __init__(self, name: str, settings: NetworkSettings, context: NetworkContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        if not _NAME.match(name):
            raise ValueError(f"network name {name!r} must be 1-48 letters, digits and '-', starting and ending with "
                             "a letter or digit")
        if settings.is_managed and context.log_kms_key_arn is None:
            raise ValueError("log_kms_key_arn is required: flow logs go to a KMS-encrypted log group")
        if isinstance(context.log_kms_key_arn, str) and not KMS_KEY_ARN.match(context.log_kms_key_arn):
            raise ValueError(f"log_kms_key_arn {context.log_kms_key_arn!r} must be a KMS key ARN "
                             "(arn:aws:kms:<region>:<account>:key/<id>)")
        if not settings.is_managed and context.log_kms_key_arn is not None:
            raise ValueError("a network you bring creates nothing: drop log_kms_key_arn")
        governance = context.governance
        # Every child's arguments are built (and so checked) before anything is registered.
        role_args = ServiceRoleArgs(
            services=["vpc-flow-logs.amazonaws.com"],
            description=f"Delivers the VPC flow logs of {name} to their log group",
            permissions_boundary_arn=governance.permissions_boundary_arn, path=governance.role_path,
            tags=dict(governance.with_tags({"Name": f"{name}-flow-logs-delivery"}).tags),
        ) if settings.is_managed else None
        super().__init__(type_token("Network"), name, None, opts)
        self.managed = settings.is_managed
        self.public_subnet_ids, self.private_route_table_ids, self.flow_log_group_arn = [], [], None
        self.endpoint_security_group_id, self.endpoint_egress = None, None
        if settings.is_managed:
            self._build(name, settings.managed, context, role_args)
        else:
            self.vpc_id = settings.vpc_id
            self.vpc_cidr = settings.vpc_cidr
            self.private_subnet_ids = list(settings.private_subnet_ids)
            self.security_group_ids = list(settings.security_group_ids)
            self.availability_zones = []
        self.register_outputs({
            "vpcId": self.vpc_id,
            "vpcCidr": self.vpc_cidr,
            "privateSubnetIds": self.private_subnet_ids,
            "securityGroupIds": self.security_group_ids,
            "endpointSecurityGroupId": self.endpoint_security_group_id,
            "availabilityZones": self.availability_zones,
        })

    def _build(self, name: str, args: ManagedNetworkSettings, context: NetworkContext,
               role_args: ServiceRoleArgs) -> None:
        def tags(child_name: str) -> dict[str, str]:
            return dict(context.governance.with_tags({"Name": child_name}).tags)

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

        self._flow_logs(name, args, context, role_args, vpc, tags)
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
        aws_facts = aws_context(self)
        region, accounts = aws_facts.region, list(context.resource_account_ids)
        subnet_ids = [s.id for s in private_subnets]
        # Every endpoint has a policy: this account's principals reach this account's resources (and AWS's own
        # where a service needs them), so nothing leaves for another account's bucket, key or repository.
        for key, service in INTERFACE_ENDPOINTS.items():
            aws.ec2.VpcEndpoint(
                f"{name}-endpoint-{key}", vpc_id=vpc.id, vpc_endpoint_type="Interface",
                service_name=concat("com.amazonaws.", region, f".{service}"),
                private_dns_enabled=True, subnet_ids=subnet_ids, security_group_ids=[endpoint_sg.id],
                policy=endpoint_policy(service, aws_facts, accounts),
                tags=tags(f"{name}-endpoint-{key}"), opts=child(self))
        s3 = aws.ec2.VpcEndpoint(
            f"{name}-endpoint-s3", vpc_id=vpc.id, vpc_endpoint_type="Gateway",
            service_name=concat("com.amazonaws.", region, ".s3"),
            route_table_ids=[t.id for t in route_tables], policy=endpoint_policy("s3", aws_facts, accounts),
            tags=tags(f"{name}-endpoint-s3"), opts=child(self))

        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.private_subnet_ids = subnet_ids
        self.security_group_ids = []
        self.endpoint_security_group_id = endpoint_sg.id
        self.endpoint_egress = EndpointEgress(endpoint_sg.id, s3.prefix_list_id)
        self.availability_zones = zones
        self.private_route_table_ids = [t.id for t in route_tables]

    def _zones(self, args: ManagedNetworkSettings) -> list[str]:
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

    def _flow_logs(self, name: str, args: ManagedNetworkSettings, context: NetworkContext, role_args: ServiceRoleArgs,
                   vpc: aws.ec2.Vpc, tags) -> None:
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", name=f"/emlops/vpc-flow-logs/{name}", kms_key_id=context.log_kms_key_arn,
            retention_in_days=args.flow_log_retention_days, tags=tags(f"{name}-flow-logs"),
            opts=child(self, protect=context.governance.protect))
        role = ServiceRole(f"{name}-flow-logs-delivery", role_args, opts=child(self))
        # The group exists (created above): delivery only needs its streams, in this group only.
        policy = role.add_policy("write-log-group", [Statement(
            actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=[group.arn, concat(group.arn, ":log-stream:*")])])
        aws.ec2.FlowLog(
            f"{name}-flow-log", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
            log_destination=group.arn, iam_role_arn=role.arn, tags=tags(f"{name}-flow-log"),
            opts=child(self, depends_on=[policy]))
        self.flow_log_group_arn = group.arn
