"""Catalogue entries of EC2 networking: the VPC, subnets, routes, gateways, security groups and endpoints.

EC2 ids are a prefix per resource type and 17 hex digits (`sg-0123456789abcdef0`), and EC2 ARNs
name the resource by that id. EC2 create calls take tags as TagSpecifications (with a resource
type), which the provider builds from `tags`; the DNS and public-IP switches are Modify*Attribute
calls the provider makes after creating; a security group's rules are Authorize*/Revoke* calls, and
an internet gateway is attached to its VPC by AttachInternetGateway: none of those map onto the create
request.
"""

from __future__ import annotations

from emlops.catalog.resource_type import RANDOM_HEX, CreateRequest, Naming, ResourceType, digest

_ARN = "arn:{partition}:ec2:{region}:{account}:"
_TAGS = frozenset({"tags"})

VPC = ResourceType(
    "aws:ec2/vpc:Vpc", taggable=True, arn=_ARN + "vpc/{id}", physical_id="vpc-" + RANDOM_HEX,
    create=CreateRequest("ec2", "CreateVpc", ignore=_TAGS | {"enableDnsSupport", "enableDnsHostnames"}),
)
SUBNET = ResourceType(
    "aws:ec2/subnet:Subnet", taggable=True, arn=_ARN + "subnet/{id}", physical_id="subnet-" + RANDOM_HEX,
    create=CreateRequest("ec2", "CreateSubnet", ignore=_TAGS | {"mapPublicIpOnLaunch"}),
)
ROUTE_TABLE = ResourceType(
    "aws:ec2/routeTable:RouteTable", taggable=True, arn=_ARN + "route-table/{id}",
    physical_id="rtb-" + RANDOM_HEX, create=CreateRequest("ec2", "CreateRouteTable", ignore=_TAGS),
)
ROUTE_TABLE_ASSOCIATION = ResourceType(
    "aws:ec2/routeTableAssociation:RouteTableAssociation", physical_id="rtbassoc-" + RANDOM_HEX,
    create=CreateRequest("ec2", "AssociateRouteTable"),
)
ROUTE = ResourceType("aws:ec2/route:Route", create=CreateRequest("ec2", "CreateRoute"))
INTERNET_GATEWAY = ResourceType(
    "aws:ec2/internetGateway:InternetGateway", taggable=True, arn=_ARN + "internet-gateway/{id}",
    physical_id="igw-" + RANDOM_HEX, create=CreateRequest("ec2", "CreateInternetGateway", ignore=_TAGS | {"vpcId"}),
)
EIP = ResourceType(
    "aws:ec2/eip:Eip", taggable=True, arn=_ARN + "elastic-ip/{id}", physical_id="eipalloc-" + RANDOM_HEX,
    create=CreateRequest("ec2", "AllocateAddress", ignore=_TAGS),
)
NAT_GATEWAY = ResourceType(
    "aws:ec2/natGateway:NatGateway", taggable=True, physical_id="nat-" + RANDOM_HEX,
    create=CreateRequest("ec2", "CreateNatGateway", ignore=_TAGS),
)
SECURITY_GROUP = ResourceType(
    "aws:ec2/securityGroup:SecurityGroup", taggable=True,
    # EC2's GroupName in a VPC: up to 255 of a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*
    naming=Naming(auto=True, max_length=255, pattern=r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+"), arn=_ARN + "security-group/{id}",
    physical_id="sg-" + RANDOM_HEX, replace_on_change=("name", "namePrefix", "description", "vpcId"),
    create=CreateRequest("ec2", "CreateSecurityGroup", {"name": "GroupName"},
                         ignore=_TAGS | {"ingress", "egress", "revokeRulesOnDelete"}),
)
DEFAULT_SECURITY_GROUP = ResourceType(
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", taggable=True, arn=_ARN + "security-group/{id}",
    physical_id="sg-" + RANDOM_HEX,
)
VPC_ENDPOINT = ResourceType(
    "aws:ec2/vpcEndpoint:VpcEndpoint", taggable=True, arn=_ARN + "vpc-endpoint/{id}",
    physical_id="vpce-" + RANDOM_HEX,
    create=CreateRequest("ec2", "CreateVpcEndpoint", {"policy": "PolicyDocument"}, ignore=_TAGS),
    # a gateway endpoint's AWS-managed prefix list (one per service and region, e.g. pl-6da54004 for S3)
    outputs=lambda fields: {"prefixListId": "pl-" + digest(fields["serviceName"], 8)}
    if fields.get("vpcEndpointType") == "Gateway" else {},
)
FLOW_LOG = ResourceType(
    "aws:ec2/flowLog:FlowLog", taggable=True, arn=_ARN + "vpc-flow-log/{id}", physical_id="fl-" + RANDOM_HEX)
LAUNCH_TEMPLATE = ResourceType(
    "aws:ec2/launchTemplate:LaunchTemplate", taggable=True,
    naming=Naming(auto=True, max_length=128, min_length=3, pattern=r"[a-zA-Z0-9().\-/_]+"), arn=_ARN + "launch-template/{id}",
    physical_id="lt-" + RANDOM_HEX, outputs={"latestVersion": 1, "defaultVersion": 1},
)

# -- in a team's own code -----------------------------------------------------------------------------

SECURITY_GROUP_RULE = ResourceType("aws:ec2/securityGroupRule:SecurityGroupRule")
SECURITY_GROUP_INGRESS_RULE = ResourceType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                                           taggable=True)
