"""Network guardrails: VPC endpoint policies and egress to the endpoints. Each rule fails a raw resource with the bad
setting (`BAD`) and passes the Network component, the platform's security groups and the shipped stacks."""

from __future__ import annotations

import functools
import json

import pulumi_aws as aws
import pytest

from emlops.components.network import Network, NetworkContext, NetworkSettings
from emlops.components.network_access import https_only_security_group
from emlops.guardrails import RULES, Settings
from emlops.guardrails import network as network_rules
from emlops.offline.plan import Plan
from emlops.review.check import evaluate
from tests.conftest import ACCOUNT, SHIPPED_STACKS, run_components

DEV = Settings(production=False, environment="dev")
VPC = "vpc-0123456789abcdef0"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
OPEN = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]})

BAD: dict[str, list[tuple[str, str]]] = {
    "vpc-endpoint-policy-own-account": [
        ("endpoint-without-policy", "has no endpoint policy: any principal reaches any account's resources through it"),
        ("endpoint-open-policy", "statement 1 admits any principal: condition it on aws:PrincipalAccount"),
        ("endpoint-open-policy", "statement 1 lets s3:* reach any account's resources: condition it on "
                                 "aws:ResourceAccount"),
    ],
    "ec2-egress-to-vpc-endpoints": [
        ("anywhere-sg", "security group anywhere-sg sends tcp/443 to 0.0.0.0/0 although its VPC reaches AWS through "
                        "endpoints"),
        ("anywhere-sg", "security group anywhere-sg sends all ports to 0.0.0.0/0 although its VPC reaches AWS "
                        "through endpoints"),
    ],
}


def findings(plan: Plan, rule: str, settings: Settings = DEV) -> list[tuple[str, str]]:
    return [(v.name, v.message) for v in evaluate(plan, settings, [RULES[rule]])]


@functools.cache
def bad_plan() -> Plan:
    def program() -> None:
        aws.ec2.VpcEndpoint("endpoint-without-policy", vpc_id=VPC, vpc_endpoint_type="Interface",
                            service_name="com.amazonaws.eu-west-1.sts")
        aws.ec2.VpcEndpoint("endpoint-open-policy", vpc_id=VPC, vpc_endpoint_type="Gateway",
                            service_name="com.amazonaws.eu-west-1.s3", policy=OPEN)
        aws.ec2.SecurityGroup("anywhere-sg", vpc_id=VPC, description="jobs", egress=[
            {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]},
            {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}])
    return run_components(program)


@pytest.mark.parametrize("rule", sorted(BAD))
def test_a_non_compliant_resource_is_reported_with_its_message(rule):
    assert findings(bad_plan(), rule) == BAD[rule]


def test_the_network_component_and_its_workload_groups_comply():
    def program() -> None:
        network = Network("ml", NetworkSettings.model_validate({"managed": {"az_count": 2}}),
                          NetworkContext(log_kms_key_arn=KEY, resource_account_ids=["444444444444"]))
        https_only_security_group(network, "jobs", network.vpc_id, "Jobs of", {}, egress_to=network.endpoint_egress)
    plan = run_components(program)
    assert [(v.rule, v.name, v.message) for v in evaluate(plan, DEV, network_rules.POLICIES)] == []


def test_a_vpc_without_endpoints_may_send_https_anywhere():
    """A VPC you bring: its endpoints (and so where HTTPS should go) are not known to the stack."""
    plan = run_components(lambda: https_only_security_group(
        aws.ec2.Vpc("byo", cidr_block="10.0.0.0/16"), "jobs", VPC, "Jobs of", {}))
    assert findings(plan, "ec2-egress-to-vpc-endpoints") == []


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_shipped_stacks_comply(stack, shipped_plan):
    settings = Settings(production=stack in ("prod", "shared"), environment=stack)
    assert [(v.rule, v.name, v.message) for v in evaluate(shipped_plan(stack), settings,
                                                          network_rules.POLICIES)] == []
