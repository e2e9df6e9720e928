"""Network: its settings (a stack file's `network` section) and checks, every child of a managed VPC and its inputs,
bring-your-own."""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Callable

import pulumi
import pulumi_aws as aws
import pytest
from pydantic import ValidationError

from emlops.catalog.aws import LOG_RETENTION_DAYS
from emlops.components.network import INTERFACE_ENDPOINTS, Network
from emlops.components.network_args import (
    ManagedNetworkSettings, NetworkContext, NetworkSettings, check_cidr_block, check_public_room, subnet_cidrs,
)
from emlops.components.settings import AtKey, Governance
from emlops.catalog.requests import SUPPORTED_TYPES, to_api_request, validate_request
from emlops.offline.mocks import AwsIdentity
from emlops.offline.plan import Plan
from emlops.program.platform import PlatformConfig
from tests.conftest import ACCOUNT, policy_statements as statements, REGION, run_components

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:Network"
ROLE_COMPONENT = "emlops:index:ServiceRole"
VPC, DEFAULT_SG = "aws:ec2/vpc:Vpc", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SUBNET, ROUTE_TABLE = "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable"
ASSOCIATION, ROUTE = "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/route:Route"
IGW, EIP, NAT = "aws:ec2/internetGateway:InternetGateway", "aws:ec2/eip:Eip", "aws:ec2/natGateway:NatGateway"
SG, ENDPOINT = "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/vpcEndpoint:VpcEndpoint"
LOG_GROUP, FLOW_LOG = "aws:cloudwatch/logGroup:LogGroup", "aws:ec2/flowLog:FlowLog"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
BYO_VPC = "vpc-0123456789abcdef0"
BYO_SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
BYO_SGS = ["sg-0123456789abcdef0"]
USER_TAGS = {"owner": "ml-platform", "cost-center": "cc-1234"}
# What EC2 accepts in security group (and rule) descriptions.
EC2_DESCRIPTION = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}$")
SERVICES = ["sagemaker.api", "sagemaker.runtime", "sagemaker.featurestore-runtime", "sts", "logs", "monitoring",
            "ecr.api", "ecr.dkr", "kms", "events"]


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    assert not isinstance(caught.value, ValidationError)
    return str(caught.value)


def managed(**section: Any) -> NetworkSettings:
    """Settings from a stack file's `network: {managed: section}`."""
    return NetworkSettings.model_validate({"managed": section})


def own(**changes: Any) -> NetworkSettings:
    """Settings from a stack file's `network` section bringing a VPC."""
    return NetworkSettings.model_validate({"vpc_id": BYO_VPC, "private_subnet_ids": BYO_SUBNETS, **changes})


def context(**changes: Any) -> NetworkContext:
    return NetworkContext(**{"log_kms_key_arn": KEY_ARN, **changes})


def network_plan(name: str = "net", identity: AwsIdentity | None = None, governance: Governance = Governance(),
                 **section: Any) -> Plan:
    def program() -> None:
        network = Network(name, managed(**section), context(governance=governance))
        export(network)
    return run_components(program, **({"identity": identity} if identity else {}))


def export(network: Network) -> None:
    for attribute in ("vpc_id", "vpc_cidr", "private_subnet_ids", "security_group_ids", "endpoint_security_group_id",
                      "availability_zones", "public_subnet_ids", "private_route_table_ids", "flow_log_group_arn"):
        pulumi.export(attribute, getattr(network, attribute))


@functools.cache
def two_az_plan() -> Plan:
    return network_plan(governance=Governance(USER_TAGS))


@functools.cache
def three_az_public_plan() -> Plan:
    return network_plan(az_count=3, public_subnets=True, flow_log_retention_days=731, governance=Governance(
        permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/boundary", protect=True))


def vpc_id(plan: Plan) -> str:
    return plan.outputs["vpc_id"]


# -- settings (a stack file's `network` section) ------------------------------------------------------

RETENTIONS = ", ".join(map(str, LOG_RETENTION_DAYS))
NOT_PRIVATE = "is not private; use a block inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918)"


def settings_error(section: dict[str, Any]) -> tuple[tuple, str, str | None]:
    """(location, message, deeper key of an AtKey) of the one error validating a `network` section."""
    with pytest.raises(ValidationError) as caught:
        NetworkSettings.model_validate(section)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    error = errors[0].get("ctx", {}).get("error")
    return tuple(errors[0]["loc"]), errors[0]["msg"], error.path if isinstance(error, AtKey) else None


@pytest.mark.parametrize("changes, loc, message", [
    ({"cidr_block": "10.0.0.0"}, ("cidr_block",),
     "Value error, '10.0.0.0' must be an IPv4 CIDR block like '10.0.0.0/16'"),
    ({"cidr_block": "ten/16"}, ("cidr_block",), "Value error, 'ten/16' must be an IPv4 CIDR block like '10.0.0.0/16'"),
    ({"cidr_block": "fd00::/48"}, ("cidr_block",),
     "Value error, 'fd00::/48' must be an IPv4 CIDR block like '10.0.0.0/16'"),
    ({"cidr_block": "10.0.0.1/16"}, ("cidr_block",),
     "Value error, '10.0.0.1/16' has host bits set; use the network address '10.0.0.0/16'"),
    ({"cidr_block": "8.8.0.0/16"}, ("cidr_block",), f"Value error, '8.8.0.0/16' {NOT_PRIVATE}"),
    ({"cidr_block": "100.64.0.0/16"}, ("cidr_block",), f"Value error, '100.64.0.0/16' {NOT_PRIVATE}"),
    ({"cidr_block": "172.15.0.0/16"}, ("cidr_block",), f"Value error, '172.15.0.0/16' {NOT_PRIVATE}"),
    ({"cidr_block": "10.0.0.0/15"}, ("cidr_block",), "Value error, '10.0.0.0/15' must be /16 to /24"),
    ({"cidr_block": "10.0.0.0/25"}, ("cidr_block",), "Value error, '10.0.0.0/25' must be /16 to /24"),
    ({"cidr_block": "10.0.0.0/24", "public_subnets": True}, (),
     "Value error, public subnets need a cidr_block of /23 or larger (got /24): each is 1/32 of the VPC and AWS "
     "subnets are at least /28"),
    ({"az_count": 1}, ("az_count",), "Input should be greater than or equal to 2"),
    ({"az_count": 7}, ("az_count",), "Input should be less than or equal to 6"),
    ({"availability_zones": "eu-west-1a"}, ("availability_zones",), "Input should be a valid list"),
    ({"availability_zones": ["eu-west-1a", "euw1-az2"]}, ("availability_zones",),
     "Value error, 'euw1-az2' is not a zone name like 'eu-west-1a'"),
    ({"availability_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1a"]}, ("availability_zones",),
     "Value error, must be unique; got eu-west-1a, eu-west-1b, eu-west-1a"),
    ({"az_count": 3, "availability_zones": ["eu-west-1a", "eu-west-1b"]}, (),
     "Value error, availability_zones has 2 zones; az_count (3) needs at least 3"),
    ({"flow_log_retention_days": 10}, ("flow_log_retention_days",),
     f"Value error, 10 is not a CloudWatch Logs retention; allowed: {RETENTIONS}"),
    ({"nat": True}, ("nat",), "Extra inputs are not permitted"),
    ({"log_kms_key_arn": KEY_ARN}, ("log_kms_key_arn",), "Extra inputs are not permitted"),
])
def test_managed_settings_reject_with_a_message(changes, loc, message):
    assert settings_error({"managed": changes}) == (("managed", *loc), message, None)


def test_check_cidr_block_names_the_key_it_checks():
    assert error_of(lambda: check_cidr_block("8.8.0.0/16")) == f"cidr_block '8.8.0.0/16' {NOT_PRIVATE}"
    assert error_of(lambda: check_cidr_block("10.0.0.0/8", label="vpc")) == "vpc '10.0.0.0/8' must be /16 to /24"
    assert error_of(lambda: check_public_room("192.168.0.0/24", True)) == (
        "public subnets need a cidr_block of /23 or larger (got /24): each is 1/32 of the VPC and AWS subnets are at "
        "least /28")
    check_public_room("192.168.0.0/24", False)
    check_public_room("192.168.0.0/23", True)


def test_managed_settings_defaults_and_descriptions():
    settings = ManagedNetworkSettings.model_validate({})
    assert (settings.cidr_block, settings.az_count, settings.public_subnets, settings.flow_log_retention_days,
            settings.availability_zones) == ("10.0.0.0/16", 2, False, 365, [])
    descriptions = {name: f.description for name, f in ManagedNetworkSettings.model_fields.items()}
    assert {name: d.rsplit("Default: ", 1)[1] for name, d in descriptions.items()} == {
        "cidr_block": "10.0.0.0/16.", "az_count": "2.", "public_subnets": "false.", "flow_log_retention_days": "365.",
        "availability_zones": "the region's available zones."}
    assert (managed().is_managed, managed().zone_count, managed(az_count=3).zone_count) == (True, 2, 3)


def test_the_stack_file_embeds_the_settings():
    assert PlatformConfig.model_fields["network"].annotation == NetworkSettings | None


BOTH = ("Value error, give either managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your own VPC), "
        "not both")
SUBNET_LIKE = "is not a subnet id like 'subnet-0123456789abcdef0'"
VPC_PATTERN = "must be a VPC id like 'vpc-0123456789abcdef0'"


@pytest.mark.parametrize("section, loc, message, at", [
    ({}, (), "Value error, give managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your own VPC)", None),
    ({"managed": {}, "vpc_id": BYO_VPC}, (), f"{BOTH}; drop vpc_id or managed", "managed"),
    ({"managed": {}, "vpc_id": BYO_VPC, "private_subnet_ids": BYO_SUBNETS}, (),
     f"{BOTH}; drop vpc_id and private_subnet_ids or managed", "managed"),
    ({"managed": {}, "private_subnet_ids": BYO_SUBNETS}, (), f"{BOTH}; drop private_subnet_ids or managed", "managed"),
    ({"managed": {}, "vpc_cidr": "10.0.0.0/16"}, (),
     "Value error, security_group_ids and vpc_cidr describe a network you bring; drop them with managed", None),
    ({"managed": {}, "security_group_ids": BYO_SGS}, (),
     "Value error, security_group_ids and vpc_cidr describe a network you bring; drop them with managed", None),
    ({"vpc_id": BYO_VPC}, (), "Value error, field required with vpc_id (your VPC's private subnets, in at least two "
     "availability zones)", "private_subnet_ids"),
    ({"private_subnet_ids": BYO_SUBNETS}, (),
     "Value error, field required with private_subnet_ids (the VPC of your subnets)", "vpc_id"),
    ({"public_subnets": True, "vpc_id": BYO_VPC, "private_subnet_ids": BYO_SUBNETS}, ("public_subnets",),
     "Extra inputs are not permitted", None),
])
def test_managed_or_your_own_network_not_both(section, loc, message, at):
    assert settings_error(section) == (loc, message, at)


@pytest.mark.parametrize("changes, loc, message", [
    ({"vpc_id": "vpc-123"}, ("vpc_id",), VPC_PATTERN),
    ({"vpc_id": "vpc-0123456789ABCDEF0"}, ("vpc_id",), VPC_PATTERN),
    ({"private_subnet_ids": "subnet-0123456789abcdef0"}, ("private_subnet_ids",), "Input should be a valid list"),
    ({"private_subnet_ids": BYO_SUBNETS[:1]}, ("private_subnet_ids",),
     "List should have at least 2 items after validation, not 1"),
    ({"private_subnet_ids": [BYO_SUBNETS[0], "subnet-xyz"]}, ("private_subnet_ids",),
     f"Value error, 'subnet-xyz' {SUBNET_LIKE}"),
    ({"private_subnet_ids": [BYO_SUBNETS[0], "sg-0123456789abcdef0"]}, ("private_subnet_ids",),
     f"Value error, 'sg-0123456789abcdef0' {SUBNET_LIKE}"),
    ({"private_subnet_ids": [BYO_SUBNETS[0], BYO_SUBNETS[0]]}, ("private_subnet_ids",),
     "Value error, subnet ids must be unique"),
    ({"security_group_ids": ["subnet-0123456789abcdef0"]}, ("security_group_ids",),
     "Value error, 'subnet-0123456789abcdef0' is not a security group id like 'sg-0123456789abcdef0'"),
    ({"security_group_ids": BYO_SGS * 2}, ("security_group_ids",), "Value error, security group ids must be unique"),
    ({"security_group_ids": [f"sg-0123456789abcdef{i}" for i in range(6)]}, ("security_group_ids",),
     "List should have at most 5 items after validation, not 6"),
    ({"vpc_cidr": "10.0.0.0"}, ("vpc_cidr",), "Value error, '10.0.0.0' must be an IPv4 CIDR block like '10.0.0.0/16'"),
    ({"vpc_cidr": "10.0.0.7/16"}, ("vpc_cidr",),
     "Value error, '10.0.0.7/16' has host bits set; use the network address '10.0.0.0/16'"),
    ({"vpc_cidr": "10.0.0.0/29"}, ("vpc_cidr",),
     "Value error, '10.0.0.0/29' must be /16 to /28 (the sizes AWS allows for a VPC)"),
])
def test_your_own_network_settings_reject_with_a_message(changes, loc, message):
    assert settings_error({"vpc_id": BYO_VPC, "private_subnet_ids": BYO_SUBNETS, **changes}) == (loc, message, None)


# -- context ----------------------------------------------------------------------------------------

def test_a_managed_network_without_its_log_key_is_refused_before_anything_is_created():
    # outside a Pulumi program, registering the component would fail: this error comes before any registration
    assert error_of(lambda: Network("ml", managed(), context(log_kms_key_arn=None))) == (
        "log_kms_key_arn is required: flow logs go to a KMS-encrypted log group")


def test_your_own_network_refuses_a_log_key_before_anything_is_created():
    assert error_of(lambda: Network("ml", own(), context())) == (
        "a network you bring creates nothing: drop log_kms_key_arn")


@pytest.mark.parametrize("name", ["net_1", "", "-net", "net-", "a" * 49, "réseau"])
def test_network_name_is_checked_before_anything_is_created(name):
    assert error_of(lambda: Network(name, managed(), context())) == (
        f"network name {name!r} must be 1-48 letters, digits and '-', starting and ending with a letter or digit")


def test_more_zones_than_the_region_has_fails_with_a_message():
    # the mocks answer eu-west-1a/b/c, as AWS does for the region
    assert error_of(lambda: network_plan(az_count=4)) == (
        "az_count (4) is more than the 3 available zones (eu-west-1a, eu-west-1b, eu-west-1c); lower az_count")


# -- subnet layout ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cidr, count, public, private_cidrs, public_cidrs", [
    ("10.0.0.0/16", 2, False, ["10.0.0.0/19", "10.0.32.0/19"], []),
    ("10.0.0.0/16", 3, True, ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"],
     ["10.0.192.0/21", "10.0.200.0/21", "10.0.208.0/21"]),
    ("172.16.0.0/20", 6, True,
     ["172.16.0.0/23", "172.16.2.0/23", "172.16.4.0/23", "172.16.6.0/23", "172.16.8.0/23", "172.16.10.0/23"],
     ["172.16.12.0/25", "172.16.12.128/25", "172.16.13.0/25", "172.16.13.128/25", "172.16.14.0/25",
      "172.16.14.128/25"]),
    ("192.168.10.0/23", 2, True, ["192.168.10.0/26", "192.168.10.64/26"], ["192.168.11.128/28", "192.168.11.144/28"]),
    ("192.168.10.0/24", 6, False, [f"192.168.10.{32 * i}/27" for i in range(6)], []),
])
def test_subnets_are_carved_deterministically_private_first(cidr, count, public, private_cidrs, public_cidrs):
    assert subnet_cidrs(cidr, count, public) == (private_cidrs, public_cidrs)


def test_more_zones_or_public_subnets_never_move_a_private_subnet():
    two, _ = subnet_cidrs("10.0.0.0/16", 2, False)
    six, public = subnet_cidrs("10.0.0.0/16", 6, True)
    assert six[:2] == two
    assert not any(p.split("/")[0] in {s.split("/")[0] for s in six} for p in public)


# -- a managed two-zone VPC (the default) -----------------------------------------------------------

def interface_children(name: str) -> list[tuple[str, str]]:
    return [(ENDPOINT, f"{name}-endpoint-{key}") for key in INTERFACE_ENDPOINTS]


def private_children(name: str, count: int) -> list[tuple[str, str]]:
    return [child for i in range(1, count + 1) for child in (
        (SUBNET, f"{name}-private-{i}"), (ROUTE_TABLE, f"{name}-private-{i}-rt"),
        (ASSOCIATION, f"{name}-private-{i}-rta"))]


def test_default_network_is_private_only_with_its_children_named_after_it():
    plan = two_az_plan()
    component = plan.get("net", COMPONENT)
    assert component.parent == plan.get("emlops-test", STACK).urn
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (VPC, "net-vpc"), (DEFAULT_SG, "net-default-sg"), *private_children("net", 2),
        (LOG_GROUP, "net-flow-logs"), (ROLE_COMPONENT, "net-flow-logs-delivery"), (FLOW_LOG, "net-flow-log"),
        (SG, "net-endpoints-sg"), *interface_children("net"), (ENDPOINT, "net-endpoint-s3")]
    assert [(r.type, r.name) for r in plan.children(plan.get("net-flow-logs-delivery").urn)] == [
        (ROLE, "net-flow-logs-delivery-role"), (ROLE_POLICY, "net-flow-logs-delivery-write-log-group")]
    assert plan.type_counts() == {
        STACK: 1, COMPONENT: 1, VPC: 1, DEFAULT_SG: 1, SUBNET: 2, ROUTE_TABLE: 2, ASSOCIATION: 2, LOG_GROUP: 1,
        ROLE_COMPONENT: 1, ROLE: 1, ROLE_POLICY: 1, FLOW_LOG: 1, SG: 1, ENDPOINT: 11}
    # no internet: no gateway, NAT, Elastic IP, public subnet or route
    assert not any(plan.by_type(t) for t in (IGW, NAT, EIP, ROUTE))


def test_vpc_resolves_dns_and_its_default_security_group_allows_nothing():
    plan = two_az_plan()
    assert plan.get("net-vpc").inputs == {
        "cidrBlock": "10.0.0.0/16", "enableDnsSupport": True, "enableDnsHostnames": True,
        "tags": {**USER_TAGS, "Name": "net"}}
    # no ingress or egress given: the provider removes every rule of the default group
    assert plan.get("net-default-sg").inputs == {"vpcId": vpc_id(plan), "tags": {**USER_TAGS, "Name": "net-default-sg"}}


def test_each_zone_has_a_private_subnet_with_its_own_route_table():
    plan = two_az_plan()
    for i, (cidr, zone) in enumerate((("10.0.0.0/19", "eu-west-1a"), ("10.0.32.0/19", "eu-west-1b")), start=1):
        assert plan.get(f"net-private-{i}").inputs == {
            "vpcId": vpc_id(plan), "cidrBlock": cidr, "availabilityZone": zone, "mapPublicIpOnLaunch": False,
            "tags": {**USER_TAGS, "Name": f"net-private-{i}"}}
        assert plan.get(f"net-private-{i}-rt").inputs == {
            "vpcId": vpc_id(plan), "tags": {**USER_TAGS, "Name": f"net-private-{i}-rt"}}
        assert plan.get(f"net-private-{i}-rta").inputs == {
            "subnetId": plan.outputs["private_subnet_ids"][i - 1],
            "routeTableId": plan.outputs["private_route_table_ids"][i - 1]}
    assert len(set(plan.outputs["private_route_table_ids"])) == 2


def test_outputs_of_a_managed_network():
    plan = two_az_plan()
    outputs = plan.outputs
    assert outputs["vpc_cidr"] == "10.0.0.0/16"
    assert outputs["availability_zones"] == ["eu-west-1a", "eu-west-1b"]
    assert outputs["security_group_ids"] == []
    assert outputs["public_subnet_ids"] == []
    assert len(outputs["private_subnet_ids"]) == 2
    assert re.fullmatch(r"sg-[0-9a-f]{17}", outputs["endpoint_security_group_id"])
    assert outputs["flow_log_group_arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/emlops/vpc-flow-logs/net"


def test_interface_endpoints_for_every_api_the_workloads_call_with_private_dns():
    plan = two_az_plan()
    assert list(INTERFACE_ENDPOINTS.values()) == SERVICES
    interface = [r for r in plan.by_type(ENDPOINT) if r.inputs["vpcEndpointType"] == "Interface"]
    assert [r.inputs["serviceName"] for r in interface] == [f"com.amazonaws.{REGION}.{s}" for s in SERVICES]
    for resource, key in zip(interface, INTERFACE_ENDPOINTS, strict=True):
        assert resource.inputs == {
            "vpcId": vpc_id(plan), "vpcEndpointType": "Interface", "serviceName": resource.inputs["serviceName"],
            "privateDnsEnabled": True, "subnetIds": plan.outputs["private_subnet_ids"],
            "securityGroupIds": [plan.outputs["endpoint_security_group_id"]],
            "policy": resource.inputs["policy"], "tags": {**USER_TAGS, "Name": f"net-endpoint-{key}"}}
        prefix = {"ecr.api": "ecr", "ecr.dkr": "ecr", "monitoring": "cloudwatch"}.get(
            INTERFACE_ENDPOINTS[key], INTERFACE_ENDPOINTS[key].split(".")[0])
        assert json.loads(resource.inputs["policy"])["Statement"] == [OWN_ACCOUNT(f"{prefix}:*")] + (
            [PULL_IMAGES] if prefix == "ecr" else [])


def OWN_ACCOUNT(action: str) -> dict:  # noqa: N802 - a constant shape, parameterised by the service
    """An endpoint policy's first statement: this account's principals on this account's resources (and requests
    naming no resource, e.g. List* or GetCallerIdentity)."""
    return {"Sid": "OwnAccountResources", "Effect": "Allow", "Principal": "*", "Action": [action], "Resource": ["*"],
            "Condition": {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT]},
                          "StringEqualsIfExists": {"aws:ResourceAccount": [ACCOUNT]}}}


# pulls of any account's images (AWS keeps its own in its accounts): nothing in a pull carries data out
PULL_IMAGES = {"Sid": "PullImages", "Effect": "Allow", "Principal": "*",
               "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
               "Resource": ["*"], "Condition": {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT]}}}


def test_s3_gateway_endpoint_is_on_every_private_route_table():
    plan = two_az_plan()
    gateway = plan.get("net-endpoint-s3")
    assert gateway.inputs == {
        "vpcId": vpc_id(plan), "vpcEndpointType": "Gateway", "serviceName": f"com.amazonaws.{REGION}.s3",
        "routeTableIds": plan.outputs["private_route_table_ids"], "policy": gateway.inputs["policy"],
        "tags": {**USER_TAGS, "Name": "net-endpoint-s3"}}
    # this account's buckets, and the AWS-owned bucket ECR serves image layers from
    assert json.loads(gateway.inputs["policy"])["Statement"] == [OWN_ACCOUNT("s3:*"), {
        "Sid": "AwsEcrImageLayers", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/*"],
        "Condition": {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT]}}}]


def test_endpoint_security_group_allows_only_https_from_the_vpc():
    plan = two_az_plan()
    sg = plan.get("net-endpoints-sg")
    assert sg.inputs == {
        "name": sg.inputs["name"], "vpcId": vpc_id(plan), "revokeRulesOnDelete": True,
        "description": "Interface VPC endpoints of net: HTTPS from the VPC only",
        "ingress": [{"description": "HTTPS from the VPC to the AWS service endpoints", "protocol": "tcp",
                     "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.0.0.0/16"]}],
        "egress": [], "tags": {**USER_TAGS, "Name": "net-endpoints-sg"}}
    assert re.fullmatch(r"net-endpoints-sg-[0-9a-f]{7}", sg.inputs["name"])
    for text in (sg.inputs["description"], sg.inputs["ingress"][0]["description"]):
        assert EC2_DESCRIPTION.match(text)


def test_flow_logs_of_all_traffic_go_to_the_encrypted_log_group():
    plan = two_az_plan()
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/emlops/vpc-flow-logs/net"
    group = plan.get("net-flow-logs")
    assert group.inputs == {"name": "/emlops/vpc-flow-logs/net", "kmsKeyId": KEY_ARN, "retentionInDays": 365,
                            "tags": {**USER_TAGS, "Name": "net-flow-logs"}}
    assert (group.protect, group.retain_on_delete) == (False, False)
    role = plan.get("net-flow-logs-delivery-role")
    flow_log = plan.get("net-flow-log")
    assert flow_log.inputs == {
        "vpcId": vpc_id(plan), "trafficType": "ALL", "logDestinationType": "cloud-watch-logs",
        "logDestination": group_arn, "iamRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{role.inputs['name']}",
        "tags": {**USER_TAGS, "Name": "net-flow-log"}}
    # the role can write before the flow log starts delivering
    assert plan.get("net-flow-logs-delivery-write-log-group").urn in flow_log.dependencies


def test_flow_log_delivery_role_writes_only_to_its_log_group():
    plan = two_az_plan()
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/emlops/vpc-flow-logs/net"
    assert statements(plan, "net-flow-logs-delivery-write-log-group") == [{
        "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
        "Resource": [group_arn, f"{group_arn}:log-stream:*"]}]
    role = plan.get("net-flow-logs-delivery-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": ["vpc-flow-logs.amazonaws.com"]}, "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]
    assert role.inputs["description"] == "Delivers the VPC flow logs of net to their log group"
    assert role.inputs["tags"] == {**USER_TAGS, "Name": "net-flow-logs-delivery"}


def test_every_taggable_resource_carries_the_tags_and_a_name():
    plan = two_az_plan()
    taggable = [r for r in plan.resources if r.custom and "tags" in r.inputs]
    untagged = {r.type for r in plan.resources if r.custom and "tags" not in r.inputs}
    assert untagged == {ASSOCIATION, ROLE_POLICY}  # neither takes tags
    assert len(taggable) == 21
    # each Name is the child's own name; the VPC is named after the component, the role after its ServiceRole
    names = {"net-vpc": "net", "net-flow-logs-delivery-role": "net-flow-logs-delivery"}
    for resource in taggable:
        assert resource.inputs["tags"] == {**USER_TAGS, "Name": names.get(resource.name, resource.name)}


def test_managed_network_inputs_are_valid_create_requests():
    for plan in (two_az_plan(), three_az_public_plan()):
        checked = [r for r in plan.resources if r.type in SUPPORTED_TYPES]
        assert {r.type for r in checked} >= {VPC, SUBNET, ROUTE_TABLE, ASSOCIATION, SG, ENDPOINT}
        for resource in checked:
            assert validate_request(to_api_request(resource.type, resource.inputs)) == [], resource.name


# -- three zones, public subnets and NAT gateways ---------------------------------------------------

def test_three_zones_with_public_subnets_get_a_gateway_and_a_nat_per_zone():
    plan = three_az_public_plan()
    component = plan.get("net", COMPONENT)
    public = [(IGW, "net-igw"), (ROUTE_TABLE, "net-public-rt"), (ROUTE, "net-public-internet")] + [
        child for i in (1, 2, 3) for child in (
            (SUBNET, f"net-public-{i}"), (ASSOCIATION, f"net-public-{i}-rta"), (EIP, f"net-nat-{i}-eip"),
            (NAT, f"net-nat-{i}"), (ROUTE, f"net-private-{i}-internet"))]
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (VPC, "net-vpc"), (DEFAULT_SG, "net-default-sg"), *private_children("net", 3), *public,
        (LOG_GROUP, "net-flow-logs"), (ROLE_COMPONENT, "net-flow-logs-delivery"), (FLOW_LOG, "net-flow-log"),
        (SG, "net-endpoints-sg"), *interface_children("net"), (ENDPOINT, "net-endpoint-s3")]
    counts = plan.type_counts()
    assert (counts[SUBNET], counts[ROUTE_TABLE], counts[ASSOCIATION], counts[IGW], counts[EIP], counts[NAT],
            counts[ROUTE], counts[ENDPOINT]) == (6, 4, 6, 1, 3, 3, 4, 11)


def test_public_subnets_route_to_the_internet_and_each_private_subnet_to_its_zones_nat():
    plan = three_az_public_plan()
    outputs = plan.outputs
    assert outputs["availability_zones"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    zones = outputs["availability_zones"]
    assert [plan.get(f"net-private-{i}").inputs["cidrBlock"] for i in (1, 2, 3)] == [
        "10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]
    public_table = plan.get("net-public-rt")
    assert public_table.inputs == {"vpcId": vpc_id(plan), "tags": {"Name": "net-public-rt"}}
    assert plan.get("net-igw").inputs == {"vpcId": vpc_id(plan), "tags": {"Name": "net-igw"}}
    internet = plan.get("net-public-internet")
    assert internet.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    assert set(internet.inputs) == {"routeTableId", "destinationCidrBlock", "gatewayId"}
    assert plan.get("net-igw").urn in internet.dependencies
    for i, cidr in enumerate(("10.0.192.0/21", "10.0.200.0/21", "10.0.208.0/21"), start=1):
        subnet = plan.get(f"net-public-{i}")
        assert subnet.inputs == {"vpcId": vpc_id(plan), "cidrBlock": cidr, "availabilityZone": zones[i - 1],
                                 "mapPublicIpOnLaunch": False, "tags": {"Name": f"net-public-{i}"}}
        assert plan.get(f"net-public-{i}-rta").inputs == {
            "subnetId": outputs["public_subnet_ids"][i - 1], "routeTableId": internet.inputs["routeTableId"]}
        assert plan.get(f"net-nat-{i}-eip").inputs == {"domain": "vpc", "tags": {"Name": f"net-nat-{i}-eip"}}
        nat = plan.get(f"net-nat-{i}")
        assert nat.inputs == {"allocationId": nat.inputs["allocationId"], "connectivityType": "public",
                              "subnetId": outputs["public_subnet_ids"][i - 1], "tags": {"Name": f"net-nat-{i}"}}
        assert re.fullmatch(r"eipalloc-[0-9a-f]{17}", nat.inputs["allocationId"])
        assert plan.get(f"net-nat-{i}-eip").urn in nat.dependencies
        assert plan.get("net-igw").urn in nat.dependencies
        route = plan.get(f"net-private-{i}-internet")
        assert route.inputs == {"routeTableId": outputs["private_route_table_ids"][i - 1],
                                "destinationCidrBlock": "0.0.0.0/0", "natGatewayId": route.inputs["natGatewayId"]}
        assert set(route.dependencies) == {plan.get(f"net-private-{i}-rt").urn, nat.urn}
    # the S3 gateway stays on the private tables only
    assert plan.get("net-endpoint-s3").inputs["routeTableIds"] == outputs["private_route_table_ids"]


def test_interface_endpoints_span_every_private_subnet():
    plan = three_az_public_plan()
    subnets = plan.outputs["private_subnet_ids"]
    assert len(subnets) == 3
    assert all(r.inputs["subnetIds"] == subnets for r in plan.by_type(ENDPOINT)
               if r.inputs["vpcEndpointType"] == "Interface")


def test_production_protects_the_flow_logs_and_bounds_the_delivery_role():
    plan = three_az_public_plan()
    group = plan.get("net-flow-logs")
    assert (group.protect, group.retain_on_delete, group.inputs["retentionInDays"]) == (True, True, 731)
    assert [r.name for r in plan.resources if r.protect] == ["net-flow-logs"]
    assert plan.get("net-flow-logs-delivery-role").inputs["permissionsBoundary"] == (
        f"arn:aws:iam::{ACCOUNT}:policy/boundary")


def test_given_zones_are_sorted_and_the_first_az_count_used():
    plan = network_plan(az_count=2, availability_zones=["eu-west-1c", "eu-west-1a", "eu-west-1b"])
    assert [plan.get(f"net-private-{i}").inputs["availabilityZone"] for i in (1, 2)] == ["eu-west-1a", "eu-west-1b"]
    assert plan.outputs["availability_zones"] == ["eu-west-1a", "eu-west-1b"]


def test_six_zones_in_a_small_vpc():
    zones = [f"us-east-1{letter}" for letter in "abcdef"]
    plan = network_plan(az_count=6, availability_zones=zones, cidr_block="172.16.0.0/20", public_subnets=True,
                        identity=AwsIdentity(ACCOUNT, "us-east-1"))
    assert [plan.get(f"net-private-{i}").inputs["cidrBlock"] for i in range(1, 7)] == [
        f"172.16.{2 * i}.0/23" for i in range(6)]
    assert [plan.get(f"net-public-{i}").inputs["availabilityZone"] for i in range(1, 7)] == zones
    assert plan.type_counts()[NAT] == 6
    assert plan.get("net-endpoints-sg").inputs["ingress"][0]["cidrBlocks"] == ["172.16.0.0/20"]


def test_service_names_and_zones_follow_the_parents_provider():
    def program() -> None:
        provider = aws.Provider("west", region="us-west-2")
        export(Network("net", managed(), context(), opts=pulumi.ResourceOptions(providers=[provider])))
    plan = run_components(program)
    provider_ref = plan.get("west", "pulumi:providers:aws").urn
    assert [r.inputs["serviceName"] for r in plan.by_type(ENDPOINT)] == [
        f"com.amazonaws.us-west-2.{s}" for s in SERVICES + ["s3"]]
    assert plan.outputs["availability_zones"] == ["us-west-2a", "us-west-2b"]
    assert {r.provider for r in plan.resources if r.custom and r.type != "pulumi:providers:aws"} == {provider_ref}


# -- bring your own ---------------------------------------------------------------------------------

def test_existing_network_creates_nothing_and_exposes_the_same_outputs():
    def program() -> None:
        export(Network("net", own(security_group_ids=BYO_SGS, vpc_cidr="10.20.0.0/16"),
                       NetworkContext(governance=Governance(USER_TAGS))))
    plan = run_components(program)
    assert [(r.type, r.name) for r in plan.resources] == [(STACK, "emlops-test"), (COMPONENT, "net")]
    assert plan.outputs == {
        "vpc_id": BYO_VPC, "vpc_cidr": "10.20.0.0/16", "private_subnet_ids": BYO_SUBNETS,
        "security_group_ids": BYO_SGS, "availability_zones": [], "public_subnet_ids": [],
        "private_route_table_ids": []}


def test_existing_network_outputs_are_plain_values_for_existing_components():
    settings = own()
    assert (settings.is_managed, settings.zone_count, settings.vpc_cidr, settings.security_group_ids) == (
        False, 2, None, [])

    captured: dict[str, Network] = {}
    run_components(lambda: captured.setdefault("net", Network("net", settings, NetworkContext())))
    network = captured["net"]
    assert (network.managed, network.vpc_id, network.vpc_cidr, network.private_subnet_ids,
            network.security_group_ids, network.endpoint_security_group_id, network.availability_zones) == (
        False, BYO_VPC, None, BYO_SUBNETS, [], None, [])


def test_a_full_access_boundary_is_rejected_before_anything_is_created():
    # outside a Pulumi program, registering the component would fail: this error comes before any registration
    boundary = "arn:aws:iam::aws:policy/AmazonEC2FullAccess"
    governance = Governance(permissions_boundary_arn=boundary)
    assert error_of(lambda: Network("net", managed(), context(governance=governance))) == (
        "a *FullAccess managed policy cannot serve as a permissions boundary")
